"""The bundled demo checkpoint on a GPU: bf16 embeddings of the whole demo store against fp32 CPU ones.

    python scripts/gpu_demo_check.py --out gpu_demo_check.md

For every non-text modality it embeds every protein of the demo store on the CPU (fp32) and on the GPU
(bf16 autocast, the path `oneprot embed` takes), and reports the time of each, the per-protein cosine
between the two, and test-split R@10 (sequence <-> modality) from each set of vectors. The text encoder
is left out so the check runs where the bundled MiniLM package is not installed (a lent GPU machine):
its backbone is frozen and stored outside the checkpoint, so the other encoders load unchanged.
"""

from __future__ import annotations

import argparse
import datetime as dt
import platform
import sys
import time
from pathlib import Path

import numpy as np
import torch

from engine.checkpoint import CONFIG_FILE, WEIGHTS_FILE, load_state_into, read_json, read_weights
from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.evaluate.retrieval import evaluate_pair
from engine.model import ModelConfig, OneProt
from engine.paths import resolve_checkpoint, resolve_store

MODALITIES = ["sequence", "structure_tokens", "structure", "pocket"]


def load_without_text(name: str) -> OneProt:
    folder = resolve_checkpoint(name)
    config = read_json(folder / CONFIG_FILE)
    config["encoders"].pop("text", None)
    state = {k: v for k, v in read_weights(folder / WEIGHTS_FILE).items() if ".text." not in f".{k}"}
    model = OneProt(ModelConfig.from_dict(config), load_weights=False)
    load_state_into(model, state, str(folder / WEIGHTS_FILE))
    return model.eval()


def recall_at_10(q: np.ndarray, t: np.ndarray, keys: list[str]) -> float:
    """R@10 of row i of q finding row i of t, by the project's retrieval metric."""
    return evaluate_pair(q, t, keys, keys)["R@10"]


def timed_embed(model: OneProt, modality: str, items: list, device: str) -> tuple[np.ndarray, float]:
    if device == "cuda":
        torch.cuda.synchronize()
    t0 = time.perf_counter()
    out = model.embed(modality, items)
    if device == "cuda":
        torch.cuda.synchronize()
    return out, time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--checkpoint", default="demo")
    p.add_argument("--data", default="demo")
    p.add_argument("--out", type=Path, default=None, help="Markdown file to write")
    args = p.parse_args(argv)
    if not torch.cuda.is_available():
        print("needs CUDA", file=sys.stderr)
        return 2
    store = ProteinStore.open(resolve_store(args.data))
    cpu_model = load_without_text(args.checkpoint)
    gpu_model = load_without_text(args.checkpoint).to("cuda")
    test = set(store.ids(split="test"))  # report-only: GPU vs CPU agreement, no choice
    lines = [f"# Demo checkpoint on GPU: bf16 vs fp32 CPU ({dt.date.today()})", "",
             f"GPU: {torch.cuda.get_device_name()}; CPU: {platform.processor() or platform.machine()} x "
             f"{torch.get_num_threads()} threads; torch {torch.__version__}", "",
             "| modality | proteins | CPU fp32 s | GPU bf16 s | speed-up | cosine min / median | "
             "test R@10 seq->m CPU / GPU | test R@10 m->seq CPU / GPU |", "|---|---|---|---|---|---|---|---|"]
    vectors: dict[str, dict[str, np.ndarray]] = {}
    for m in MODALITIES:
        ids = store.ids(modality=m)
        items = items_for(store, ids, m)
        gpu_model.embed(m, items[:64])  # warm-up (kernels, autocast caches)
        cpu, t_cpu = timed_embed(cpu_model, m, items, "cpu")
        gpu, t_gpu = timed_embed(gpu_model, m, items, "cuda")
        cos = (cpu * gpu).sum(1) / (np.linalg.norm(cpu, axis=1) * np.linalg.norm(gpu, axis=1))
        vectors[m] = {"ids": ids, "cpu": cpu, "gpu": gpu}
        row = [m, str(len(ids)), f"{t_cpu:.2f}", f"{t_gpu:.2f}", f"{t_cpu / t_gpu:.1f}x",
               f"{cos.min():.4f} / {np.median(cos):.4f}"]
        if m != "sequence":
            seq = vectors["sequence"]
            pos = {pid: i for i, pid in enumerate(seq["ids"])}
            both = [i for i, pid in enumerate(ids) if pid in test and pid in pos]
            si = [pos[ids[i]] for i in both]
            keys = [ids[i] for i in both]
            r = {d: (recall_at_10(seq[d][si], vectors[m][d][both], keys),
                     recall_at_10(vectors[m][d][both], seq[d][si], keys))
                 for d in ("cpu", "gpu")}
            row += [f"{r['cpu'][0]:.3f} / {r['gpu'][0]:.3f} (n={len(both)})", f"{r['cpu'][1]:.3f} / {r['gpu'][1]:.3f}"]
        else:
            row += ["", ""]
        lines.append("| " + " | ".join(row) + " |")
        print(lines[-1], flush=True)
    text = "\n".join(lines) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
