"""Time one training step of the `paper` preset per modality, at full size with random weights, on one device.

What runs is the trainer's own step (engine.train.Trainer.compute_gradients + optimizer_step): the frozen
ESM-2 650M sequence anchor (attention1d pooling) plus, per modality, the 3Di ESM-2 35M (fine-tuned), the
all-atom ProNet (structure), the backbone ProNet on 100 pocket residues, or the frozen BiomedBERT-shaped
text encoder with its MLP head; fp32, Adam, gradient clip 1.0, the L1 term, ProNet's augmentations.
Batches are upstream's per-GPU sizes: 32 pairs (16 for 3Di). Inputs are synthetic: chains of --length
residues with side chains, 3Di strings, pockets, texts truncated at 512 tokens (a BERT-base-shaped
tokenizer and model written to a temp folder: no download). Weights are random; speed does not depend on them.

    python benchmarks/paper_train_step.py            # full size, needs a GPU (about 1-2 minutes on an H200)
    python benchmarks/paper_train_step.py --tiny     # toy sizes on CPU: checks the script end to end

Prints a table (seconds per step, pairs/s, peak GPU memory per modality) and writes it, with the
machine and date, to $OUT/paper_train_step.md (+ .json) when OUT is set, else to
benchmarks/results/paper_train_step_<device>_<date>.md.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from _common import RESULTS, machine
from engine.files import write_text_atomic

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREEDI = "acdefghiklmnpqrstvwy"
BATCH = {"structure_tokens": 16, "structure": 32, "pocket": 32, "text": 32}  # upstream's per-GPU batches


def bert_folder(root: Path, tiny: bool) -> Path:
    """A BERT-base-shaped (BiomedBERT: 30,522 tokens, 12 x 768) random model and WordPiece tokenizer."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = root / "bert"
    folder.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + [f"w{i}" for i in range(30522 - 5)]
    (folder / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    cfg = (BertConfig(vocab_size=len(words), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=64) if tiny else BertConfig(vocab_size=len(words)))
    BertModel(cfg).save_pretrained(folder)
    return folder


def synthetic_store(root: Path, n: int, length: int, text_words: int, seed: int = 0) -> Path:
    """n proteins of `length` residues with every modality (side chains included), all in the train split."""
    from engine.data.store import write_store
    from engine.modality import Pocket, ProteinRecord

    rng = np.random.default_rng(seed)
    records = []
    for i in range(n):
        ca = np.cumsum(rng.normal(0, 2.2, (length, 3)), 0).astype(np.float32)
        coords = np.stack([ca + rng.normal(0, 0.8, ca.shape) for _ in range(4)], 1).astype(np.float32)
        coords[:, 1] = ca
        side = (ca[:, None] + rng.normal(0, 1.5, (length, 6, 3))).astype(np.float32)
        lining = sorted(rng.choice(length, size=min(12, length), replace=False).tolist())
        rec = ProteinRecord(
            id=f"B{i:04d}", sequence="".join(rng.choice(list(AMINO), length)),
            text=" ".join(f"w{int(w)}" for w in rng.integers(0, 30000, text_words)), coords=coords,
            structure_tokens="".join(rng.choice(list(THREEDI), length)).upper(),
            pockets=[Pocket(residues=lining, center=ca[lining].mean(0))])
        rec.extra["side_chains"] = side
        records.append(rec)
    return write_store(records, root / "store", {r.id: "train" for r in records}, {r.id: i for i, r in enumerate(records)})


def build_preset(bert: Path, tiny: bool):
    """The paper preset with random weights (full size, or toy sizes with --tiny)."""
    from engine.presets import get_preset

    preset = get_preset("paper")
    enc = preset.model.encoders
    enc["sequence"].update(weights=None, layers=33, dim=1280, heads=20)  # ESM-2 650M's shape
    enc["structure_tokens"].update(weights=None, layers=12, dim=480, heads=20)  # ESM-2 35M's shape
    enc["text"]["model"] = str(bert)
    if tiny:
        for m in ("sequence", "structure_tokens"):
            enc[m].update(layers=1, dim=32, heads=2)
        for m in ("structure", "pocket"):
            enc[m].update(hidden_channels=16, num_blocks=1, mid_emb=8, out_channels=32)
        preset.model.dim = 32
    return preset


def run(args) -> dict:
    from engine.data.store import ProteinStore
    from engine.model import OneProt
    from engine.train import Trainer

    device = torch.device("cuda" if torch.cuda.is_available() and not args.cpu else "cpu")
    if device.type == "cpu" and not args.tiny:
        raise SystemExit("full size needs a GPU; use --tiny on CPU")
    batches = {m: (4 if args.tiny else b) for m, b in BATCH.items()}
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        bert = bert_folder(root, args.tiny)
        store = ProteinStore.open(synthetic_store(root, max(batches.values()), args.length, args.text_words))
        preset = build_preset(bert, args.tiny)
        torch.manual_seed(0)
        model = OneProt(preset.model, load_weights=False)
        setup_s = time.perf_counter() - t0
        trainer = Trainer(model, store, preset.train, root / "run", progress=False, device=device)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        rows = {}
        for m, b in batches.items():
            ids = store.ids(modality=m)[:b]
            if device.type == "cuda":
                torch.cuda.synchronize()
                torch.cuda.reset_peak_memory_stats()
            times = []
            for step in range(args.warmup + args.steps):
                if device.type == "cuda":
                    torch.cuda.synchronize()
                s = time.perf_counter()
                metrics = trainer.compute_gradients(m, ids)
                trainer.optimizer_step()
                trainer.step += 1
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if step >= args.warmup:
                    times.append(time.perf_counter() - s)
            sec = float(np.median(times))
            rows[m] = {"batch": b, "seconds_per_step": round(sec, 4), "pairs_per_s": round(b / sec, 1),
                       "peak_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if device.type == "cuda" else None,
                       "loss": round(metrics["loss"], 4)}
    name = torch.cuda.get_device_name() if device.type == "cuda" else "cpu"
    return {"device": name, "tiny": args.tiny, "length": args.length, "steps": args.steps, "warmup": args.warmup,
            "trainable_parameters": trainable, "setup_s": round(setup_s, 1),
            "total_s": round(time.perf_counter() - t0, 1), "rows": rows}


def table(result: dict) -> str:
    lines = ["| modality (+ sequence anchor) | pairs / step | s / step (median) | pairs / s | peak GPU memory |",
             "|---|---:|---:|---:|---:|"]
    for m, r in result["rows"].items():
        peak = f"{r['peak_gib']} GiB" if r["peak_gib"] is not None else "n/a (CPU)"
        lines.append(f"| {m} | {r['batch']} | {r['seconds_per_step']} | {r['pairs_per_s']} | {peak} |")
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tiny", action="store_true", help="toy sizes (runs on CPU in seconds)")
    ap.add_argument("--cpu", action="store_true", help="force CPU")
    ap.add_argument("--length", type=int, default=None, help="residues per chain (default 300; 40 with --tiny)")
    ap.add_argument("--text-words", type=int, default=600, help="words per text (truncated at 512 tokens)")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per modality")
    ap.add_argument("--warmup", type=int, default=1)
    args = ap.parse_args()
    args.length = args.length or (40 if args.tiny else 300)
    if args.tiny:
        args.text_words = min(args.text_words, 60)
    torch.set_num_threads(max(1, min(4, os.cpu_count() or 1)))
    result = run(args)
    body = (f"`python benchmarks/paper_train_step.py{' --tiny' if args.tiny else ''}` on {result['device']}: "
            f"the `paper` preset{' at toy sizes' if args.tiny else ' at full size'} with random weights, fp32, "
            f"chains of {result['length']} residues, texts cut at 512 tokens; median of {result['steps']} steps "
            f"after {result['warmup']} warm-up. Each step = frozen sequence anchor + one modality, forward, "
            f"backward, Adam. Trainable parameters: {result['trainable_parameters']:,}. "
            f"Set-up {result['setup_s']} s, total {result['total_s']} s.\n\n{table(result)}\n")
    print(table(result))
    out_dir = os.environ.get("OUT")
    stamp = time.strftime("%Y-%m-%d", time.gmtime())
    dev = result["device"].lower().replace(" ", "-")
    path = (Path(out_dir) / "paper_train_step.md") if out_dir else RESULTS / f"paper_train_step_{dev}_{stamp}.md"
    path.parent.mkdir(parents=True, exist_ok=True)
    header = f"# paper preset: one training step per modality\n\nMachine: {machine()}  \nDate: {stamp}\n\n"
    write_text_atomic(path, header + body)
    write_text_atomic(path.with_suffix(".json"), json.dumps(result, indent=2))
    print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
