"""CPU training step of the ESM-2-architecture encoders: packed (padding-free) vs fair-esm's padded forward.

    python benchmarks/esm_train_step.py [--data demo] [--repeats 8] [--threads 2]

Two workloads from the demo recipe, each timed both ways in this process on the same batches
(forward + backward, interleaved so both see the same machine load):
- alignment: the sequence encoder (demo preset: 3 layers, 96-d, attention pooling, 256 residues)
  on batches of 24 train sequences that carry text (the largest pair pool), pooled output;
- masked LM: pretraining batches of 32 random 128-residue crops, cross-entropy on masked positions.
The baseline is fair-esm's `ESM2.forward` on padded batches (`EsmTokenEncoder.residue_states`, and
`model(tokens)["logits"]`); the packed path is what training runs on CPU since 2026-11-26
(`EsmTokenEncoder.packed_residue_states`, `engine.pretrain._packed_logits`). Writes
benchmarks/results/esm_train_step.md.
"""

from __future__ import annotations

import argparse
import statistics
import time

from _common import write_result


def _time(fn, batches) -> float:
    fn(batches[0])  # warm
    times = []
    for b in batches[1:]:
        t = time.perf_counter()
        fn(b)
        times.append(time.perf_counter() - t)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    import numpy as np
    import torch
    import torch.nn.functional as F

    from engine.data.store import ProteinStore
    from engine.modality import Modality
    from engine.presets import get_preset
    from engine.pretrain import IGNORE, _crop, _packed_logits, collate_letters, corpus, mask_tokens
    from engine.encoders.sequence import SequenceEncoder

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="demo")
    ap.add_argument("--repeats", type=int, default=8)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    preset = get_preset("demo")
    cfg = dict(preset.model.encoders["sequence"])
    enc = SequenceEncoder(cfg).train()
    store = ProteinStore.open(args.data)
    seq_of = dict(zip(store.proteins["id"], store.proteins["sequence"]))
    ids = store.ids(split="train", modality="text")
    rng = np.random.default_rng(0)
    align = [[seq_of[i] for i in rng.choice(ids, 24, replace=False)] for _ in range(args.repeats + 1)]

    def step_fair(seqs):
        enc.zero_grad()
        states, mask = enc.residue_states(enc.collate(seqs)["tokens"])
        enc.pool(states, mask).square().sum().backward()

    def step_packed(seqs):
        enc.zero_grad()
        states, mask = enc.packed_residue_states(enc.collate(seqs)["tokens"])
        enc.pool(states, mask).square().sum().backward()

    pcfg = preset.pretrain["sequence"]
    texts = corpus(store, Modality.SEQUENCE, "train")
    mlm = [collate_letters([_crop(texts[j], pcfg.max_length, rng) for j in rng.choice(len(texts), pcfg.batch_size)],
                           enc.alphabet) for _ in range(args.repeats + 1)]
    model = enc.esm

    def mlm_fair(tokens):
        model.zero_grad()
        inputs, labels = mask_tokens(tokens, enc.alphabet, 0.15, torch.Generator().manual_seed(0))
        logits = model(inputs)["logits"]
        F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE).backward()

    def mlm_packed(tokens):
        model.zero_grad()
        inputs, labels = mask_tokens(tokens, enc.alphabet, 0.15, torch.Generator().manual_seed(0))
        logits, flat = _packed_logits(model, inputs, labels, enc.alphabet.padding_idx)
        F.cross_entropy(logits, flat, ignore_index=IGNORE).backward()

    rows = []
    for name, fair, packed, batches, what in (
        ("alignment step, sequence encoder", step_fair, step_packed, align, "24 train sequences (<= 256 residues)"),
        ("masked-LM pretraining step", mlm_fair, mlm_packed, mlm, f"{pcfg.batch_size} crops of <= {pcfg.max_length} residues"),
    ):
        t_fair, t_packed = [], []
        for _ in range(2):  # interleaved rounds
            t_fair.append(_time(fair, batches))
            t_packed.append(_time(packed, batches))
        f, p = min(t_fair), min(t_packed)
        rows.append(f"| {name} | {what} | {f:.3f} | {p:.3f} | {f / p:.2f}x |")
        print(rows[-1], flush=True)
    body = (
        f"Command: `python benchmarks/esm_train_step.py --data {args.data} --repeats {args.repeats} "
        f"--threads {args.threads}`; torch threads {args.threads}; demo preset sequence encoder "
        f"(3 layers, 96-d, 6 heads, attention pooling), random weights; forward + backward, median seconds "
        f"per step (best of 2 interleaved rounds of {args.repeats} steps).\n\n"
        "| workload | batch | fair-esm padded (s) | packed (s) | speed-up |\n|---|---|---|---|---|\n"
        + "\n".join(rows) + "\n"
    )
    print(write_result("esm_train_step", "ESM-2 encoder training step on CPU: packed vs padded", body))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
