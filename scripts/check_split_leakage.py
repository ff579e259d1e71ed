#!/usr/bin/env python
"""Estimate split leakage of a store: for sampled test proteins, the best identity to any train protein.

The 50 train proteins sharing the most reduced-alphabet 5-mers with the test protein (at least 3)
are aligned (5x the clustering's own candidate cap), with the same identity definition as
engine.data.splits. Prints how many sampled test proteins reach the clustering threshold.
Usage: python scripts/check_split_leakage.py demo [--n 200] [--seed 0]
"""

from __future__ import annotations

import argparse
import random
import sys

import numpy as np


from engine.data.splits import _kmers, identity
from engine.data.store import ProteinStore


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    store = ProteinStore.open(args.store)
    p = store.proteins
    threshold = float(store.manifest.get("split_method", {}).get("identity", 0.5))
    train = p[p["split"] == "train"]["sequence"].tolist()
    index: dict[int, list[int]] = {}
    for i, s in enumerate(train):
        for k in _kmers(s).tolist():
            index.setdefault(k, []).append(i)
    test = p[p["split"] == "test"]["sequence"].tolist()
    sample = random.Random(args.seed).sample(test, min(args.n, len(test)))
    best = []
    for s in sample:
        lists = [index[k] for k in _kmers(s).tolist() if k in index]
        if not lists:
            best.append(0.0)
            continue
        hits = np.bincount(np.concatenate([np.asarray(x) for x in lists]), minlength=len(train))
        cand = np.flatnonzero(hits >= 3)
        cand = cand[np.argsort(-hits[cand], kind="stable")][:50]
        best.append(max((identity(s, train[c]) for c in cand), default=0.0))
    best_arr = np.asarray(best)
    leaks = int((best_arr >= threshold).sum())
    print(f"{args.store}: {len(sample)} sampled test proteins vs {len(train)} train proteins; "
          f"best identity median {np.median(best_arr):.2f}, 90th pct {np.percentile(best_arr, 90):.2f}; "
          f"{leaks} ({leaks / len(sample):.1%}) at >= {threshold:.0%} identity")
    return 0


if __name__ == "__main__":
    sys.exit(main())
