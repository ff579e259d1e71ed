"""UniRep anchor on CPU: residues/s of the batched, packed mLSTM vs a per-sequence, per-step reference.

    python benchmarks/unirep_bench.py [--sizes 64,256,1900] [--n 64] [--max-length 256] [--threads 2] [--repeats 3]

Both go from the same valid-split sequences of the demo store (cut to --max-length residues) to
per-residue states of the packaged UniRep weights (engine/encoders/unirep.py):
  reference  one sequence at a time, one residue at a time, every input and recurrent product per step
             (weight normalisation done once), as a plain reading of the recurrence would run it;
  ours       the encoder's residue_states on length-sorted batches (the feature cache's batching):
             packed sequences, a layer's input products as one matrix product, only h-dependent
             products in the time loop.
Runs alternate reference/ours so both see the same machine load; medians are reported with the load
average. Also: a 500-residue query through OneProt.embed (encoder + head) after the model is built.
Writes benchmarks/results/unirep_bench_<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import time

import torch

from _common import write_result

from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.encoders.feature_cache import _plan_batches
from engine.encoders.unirep import UniRepEncoder
from engine.model import OneProt


@torch.no_grad()
def reference_states(enc: UniRepEncoder, seq: str) -> torch.Tensor:
    """(L, H) states of one sequence, one residue at a time through every cell."""
    tokens = enc.collate([seq])["tokens"][0]
    xs = [enc.embedding[t][None] for t in tokens.tolist()]  # (1, E) per position, start token first
    for cell in enc.mlstm:
        wmx, wmh, wx, wh = cell.normalised()
        H = cell.hidden
        h, c, outs = xs[0].new_zeros(1, H), xs[0].new_zeros(1, H), []
        for x in xs:
            m = (x @ wmx) * (h @ wmh)
            z = x @ wx + m @ wh + cell.b
            i, f, o, u = torch.sigmoid(z[:, :H]), torch.sigmoid(z[:, H:2 * H]), torch.sigmoid(z[:, 2 * H:3 * H]), \
                torch.tanh(z[:, 3 * H:])
            c = f * c + i * u
            h = o * torch.tanh(c)
            outs.append(h)
        xs = outs
    return torch.cat(xs[1:])


@torch.no_grad()
def batched_states(enc: UniRepEncoder, seqs: list[str]) -> list[torch.Tensor]:
    """Per-sequence (L, H) states from length-sorted batches, in input order."""
    order = sorted(range(len(seqs)), key=lambda i: -len(seqs[i]))
    out: list[torch.Tensor] = [None] * len(seqs)  # type: ignore[list-item]
    for batch in _plan_batches([len(seqs[i]) for i in order], 131_072, 1024):
        idx = [order[j] for j in batch]
        b = enc.collate([seqs[i] for i in idx])
        states, _ = enc.residue_states(b["tokens"], b["lengths"])
        for row, i in enumerate(idx):
            out[i] = states[row, : len(seqs[i])]
    return out


def timed(fn, *args):
    t = time.perf_counter()
    result = fn(*args)
    return time.perf_counter() - t, result


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", default="64,256,1900")
    ap.add_argument("--n", type=int, default=64, help="valid-split sequences")
    ap.add_argument("--ref-n", type=int, default=16, help="of those, how many the (slow) reference runs")
    ap.add_argument("--max-length", type=int, default=256)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--name", default=None, help="result file name (default unirep_bench_<date>)")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    store = ProteinStore.open("demo")
    seqs = [s[: args.max_length] for s in items_for(store, store.ids(split="valid", modality="sequence")[: args.n],
                                                      "sequence")]
    ref_seqs = seqs[: args.ref_n]
    query = (seqs[0] * 20)[:500]
    rows = []
    for size in [int(s) for s in args.sizes.split(",")]:
        t0 = time.perf_counter()
        model = OneProt({"encoders": {"sequence": {"type": "unirep", "size": size, "max_length": 2000}}, "dim": 128})
        build_s = time.perf_counter() - t0
        enc = model.encoders["sequence"].eval()
        ref_t, ours_t, ours_ref_t, query_t = [], [], [], []
        for _ in range(args.repeats):  # interleaved: both see the same load
            t, ref = timed(lambda: [reference_states(enc, s) for s in ref_seqs])
            ref_t.append(t)
            t, ours_small = timed(batched_states, enc, ref_seqs)
            ours_ref_t.append(t)
            t, _ = timed(batched_states, enc, seqs)
            ours_t.append(t)
            t, _ = timed(model.embed, "sequence", [query])
            query_t.append(t)
        diff = max(float((a - b).abs().max()) for a, b in zip(ref, ours_small))
        n_ref, n_all = sum(map(len, ref_seqs)), sum(map(len, seqs))
        rows.append((size, build_s, n_ref / statistics.median(ref_t), n_ref / statistics.median(ours_ref_t),
                     n_all / statistics.median(ours_t), statistics.median(query_t), diff, n_ref, n_all))
        print(rows[-1], flush=True)
    load = os.getloadavg()
    body = [
        f"Command: `python benchmarks/unirep_bench.py --sizes {args.sizes} --n {args.n} --ref-n {args.ref_n} "
        f"--max-length {args.max_length} --threads {args.threads} --repeats {args.repeats}`  ",
        f"torch threads: {args.threads}; load average at the end (1/5/15 min): {load[0]:.1f} / {load[1]:.1f} / "
        f"{load[2]:.1f} (the machine is shared: a load above the core count slows both columns)  ",
        f"Sequences: the first {args.n} valid-split proteins of the demo store, cut to {args.max_length} residues; "
        f"the reference runs the first {args.ref_n}. Medians of {args.repeats} interleaved repeats.",
        "",
        "| size | build (s) | reference res/s | ours res/s (same seqs) | speed-up | ours res/s (all) | "
        "500-residue query (s) | max abs diff |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for size, build_s, ref_rs, ours_small_rs, ours_rs, q, diff, n_ref, n_all in rows:
        body.append(f"| {size} | {build_s:.2f} | {ref_rs:,.0f} ({n_ref:,} res) | {ours_small_rs:,.0f} | "
                    f"{ours_small_rs / ref_rs:.1f}x | {ours_rs:,.0f} ({n_all:,} res) | {q:.3f} | {diff:.1e} |")
    body += ["", "500-residue query: `OneProt.embed('sequence', [seq])` (UniRep + a 128-d linear head) on a model "
             "already built (weights read, sha256 checked); build (s) is that first read."]
    name = args.name or f"unirep_bench_{dt.date.today().isoformat()}"
    print(write_result(name, "UniRep anchor on CPU: batched vs per-sequence, per-step reference", "\n".join(body)))


if __name__ == "__main__":
    main()
