"""CPU floor for the one embedding path (OneProt.pooled, packed ESM): ours vs fair-esm fp32, medians.

    python benchmarks/cpu_embed.py [--repeats 3] [--n 32]

For the ESM-2 8M architecture and the project's small configs (random weights; one the 3Di-token
encoder), both methods go from strings to (N, D) mean-pooled vectors with the same network (the
encoder's own fair-esm ESM2 module): fair-esm as its extract.py does (BatchConverter, length-sorted
padded batches of <= 4,096 tokens, fp32), ours through `OneProt.pooled` (the encoder's packed method,
token budget 8,192, fp32 on CPU). Runs alternate baseline/ours so both see the same machine load; the
table reports medians and the ratio, and writes benchmarks/results/cpu_embed_<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import statistics
import subprocess
import time
from pathlib import Path

import numpy as np
import torch

from gpu_embed import SIZES, SMALL, build_oneprot, make_sequences, min_cosine

from engine.encoders.esm_arch import THREEDI_LETTERS
from engine.files import write_text_atomic
from engine.token_batching import token_budget_batches

RESULTS = Path(__file__).resolve().parent / "results"
BUDGET = 8192  # tokens per packed batch on the CPU


@torch.inference_mode()
def fair_esm_extract(model, alphabet, seqs: list[str], budget: int = 4096) -> torch.Tensor:
    """What esm/scripts/extract.py does for `--include mean`: padded batches, per-sequence means."""
    convert = alphabet.get_batch_converter()
    out = torch.zeros(len(seqs), model.embed_dim)
    last = len(model.layers)
    for batch in token_budget_batches([len(s) + 2 for s in seqs], budget, padded=True):
        _, _, tokens = convert([(str(i), seqs[i]) for i in batch])
        rep = model(tokens, repr_layers=[last])["representations"][last]
        for row, i in enumerate(batch):
            out[i] = rep[row, 1 : len(seqs[i]) + 1].mean(0)
    return out


def cpu_name() -> str:
    try:
        text = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            if line.startswith("Model name"):
                return line.split(":", 1)[1].strip()
    except (OSError, subprocess.CalledProcessError):
        pass
    return platform.processor() or "unknown CPU"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n", type=int, default=32, help="sequences per model")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (shared machine)")
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    configs = [("ESM-2 8M arch", SIZES["8M"], "sequence"), ("small-4x128", SMALL["small-4x128"], "sequence"),
               ("small-2x64 3Di alphabet", SMALL["small-2x64"], "structure_tokens")]
    rows = []
    for label, (layers, dim, heads), modality in configs:
        oneprot = build_oneprot(layers, dim, heads, "cpu", modality)
        model = oneprot.encoders[modality].esm
        alphabet = model.alphabet
        if modality == "sequence":
            seqs = make_sequences(args.n, 1, median=150, max_len=500)
        else:
            rng = np.random.default_rng(1)
            lengths = np.clip(rng.lognormal(np.log(150), 0.6, args.n).astype(int), 20, 500)
            seqs = ["".join(rng.choice(list(THREEDI_LETTERS), size=k)) for k in lengths]
        tokens = sum(len(s) + 2 for s in seqs)

        def embed(items):
            return torch.from_numpy(oneprot.pooled(modality, items, BUDGET))

        fair_times, ours_times = [], []
        reference = fair_esm_extract(model, alphabet, seqs[:4])  # warm-up both
        embed(seqs[:4])
        for _ in range(args.repeats):
            start = time.perf_counter()
            reference = fair_esm_extract(model, alphabet, seqs)
            fair_times.append(time.perf_counter() - start)
            start = time.perf_counter()
            ours = embed(seqs)
            ours_times.append(time.perf_counter() - start)
        fair_s, ours_s = statistics.median(fair_times), statistics.median(ours_times)
        row = dict(model=label, tokens=tokens, fair=tokens / fair_s, ours=tokens / ours_s,
                   ratio=fair_s / ours_s, cos=min_cosine(ours, reference),
                   diff=float((ours - reference).abs().max()))
        rows.append(row)
        print(f"{label:<26} fair-esm fp32 {row['fair']:>9,.0f} tok/s  ours {row['ours']:>9,.0f} tok/s"
              f"  ours/fair {row['ratio']:.2f}x  min cos {row['cos']:.6f}  max|diff| {row['diff']:.1e}",
              flush=True)
    md = [
        f"# CPU embedding: OneProt.pooled (packed ESM) vs fair-esm fp32 ({dt.date.today().isoformat()})",
        "",
        f"Machine: {cpu_name()}, {os.cpu_count()} CPUs shared with other jobs; torch "
        f"{torch.__version__}, {args.threads} thread(s). `python benchmarks/cpu_embed.py --repeats "
        f"{args.repeats} --n {args.n}`: {args.n} random sequences per model (log-normal lengths, "
        "median 150, max 500), random weights; fair-esm as extract.py (BatchConverter, padded "
        f"batches <= 4,096 tokens, fp32); ours = OneProt.pooled (the ESM encoder's packed method, "
        f"token budget {BUDGET:,}) fp32, end to end from strings. "
        f"Runs interleaved, medians of {args.repeats}. Floor: ours no slower than fair-esm fp32.",
        "",
        "| model | tokens | fair-esm fp32 tok/s | ours tok/s | ours / fair-esm | min cosine | max abs diff |",
        "|---|---|---|---|---|---|---|",
        *[f"| {r['model']} | {r['tokens']:,} | {r['fair']:,.0f} | {r['ours']:,.0f} | "
          f"{r['ratio']:.2f}x | {r['cos']:.6f} | {r['diff']:.1e} |" for r in rows],
        "",
    ]
    text = "\n".join(md)
    print("\n" + text)
    out = args.out or RESULTS / f"cpu_embed_{dt.date.today().isoformat()}.md"
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, text)
    print(f"wrote {out}")
    return 0 if all(r["ratio"] >= 1.0 and r["cos"] >= 0.999 for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
