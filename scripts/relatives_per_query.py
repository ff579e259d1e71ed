"""Per-query same-family precision@10 of one ordered pair (e.g. structure->sequence) for several checkpoints on the
valid split, with the query's family: shows how few queries (and families) a relatives figure rests on, and
whether checkpoints differ on the same queries. The test split is refused: this is for choosing.

    python scripts/relatives_per_query.py --checkpoints A,B --pair structure->sequence --data demo

Same rule as engine/evaluate/relatives.py (family-labelled queries with another labelled target of their family,
own protein excluded, ties counted against the method), through its relatives_scores, one query at a time.
"""

from __future__ import annotations

import argparse
import sys
from collections import Counter

import numpy as np


def main(argv: list[str] | None = None) -> int:
    """Print a markdown table: one row per query, one column per checkpoint (and 3-mer composition)."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--checkpoints", required=True, help="comma-separated checkpoint folders")
    ap.add_argument("--pair", default="structure->sequence")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    if args.split == "test":
        print("the test split is for reporting only; choose on valid", file=sys.stderr)
        return 2
    import torch

    from engine.checkpoint import load_checkpoint
    from engine.data.items import items_for
    from engine.data.store import ProteinStore
    from engine.evaluate import baselines as B
    from engine.evaluate.relatives import relatives_scores

    torch.set_num_threads(args.threads)
    a, b = args.pair.split("->")
    store = ProteinStore.open(args.data)
    fam = store.proteins.set_index("id")["family"]

    def labelled(m):
        return [i for i in store.ids(split=args.split, modality=m) if isinstance(fam.get(i), str) and fam.get(i)]

    qids, tids = labelled(a), labelled(b)
    count = Counter(fam[t] for t in tids)
    qids = [q for q in qids if count[fam[q]] - (q in tids) > 0]
    qitems, titems = items_for(store, qids, a), items_for(store, tids, b)
    qf, tf = [fam[q] for q in qids], [fam[t] for t in tids]

    def per_query(scores):
        return [relatives_scores(scores[i:i + 1], qf[i:i + 1], tf, qids[i:i + 1], tids)["P@10"]
                for i in range(len(qids))]

    cols = {}
    for path in args.checkpoints.split(","):
        model = load_checkpoint(path)
        cols[path] = per_query(model.embed(a, qitems) @ model.embed(b, titems).T)
    ka = B.kmer_vectors([B.residue_letters(x) for x in qitems], B.AMINO)
    kb = B.kmer_vectors([B.residue_letters(x) for x in titems], B.AMINO)
    cols["3-mer composition"] = per_query(ka @ kb.T)
    names = list(cols)
    print(f"{args.pair}, {args.split} split: {len(qids)} queries in {len(set(qf))} families, {len(tids)} targets\n")
    print("| query | family | same-family targets | " + " | ".join(names) + " |")
    print("|---|---|---|" + "---|" * len(names))
    for i, q in enumerate(qids):
        print(f"| {q} | {qf[i]} | {count[qf[i]] - (q in tids)} | "
              + " | ".join(f"{cols[n][i]:.1f}" for n in names) + " |")
    print("| mean | | | " + " | ".join(f"{np.mean(cols[n]):.3f}" for n in names) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
