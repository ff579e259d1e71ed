"""`oneprot calibrate`: the significance table of an embeddings folder (E-value null, probability) and its check."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.cli import add_embeddings_option

    add_embeddings_option(p)
    p.add_argument("--data", default="demo", help="the store the embeddings were made from (splits, clusters, families)")
    p.add_argument("--out", help="folder for significance.json (default: beside the embeddings)")
    p.add_argument("--report", help="also write the calibration check here (.md table or .json)")
    p.add_argument("-k", type=int, default=10, help="top hits per query judged when fitting the probability")
    p.add_argument("--min-bin", type=int, default=None,
                   help="hits per bin of the probability map (default: engine.significance.MIN_BIN_HITS)")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--json", action="store_true", help="print the check as JSON")


def run(args: argparse.Namespace) -> int:
    from engine.data.store import ProteinStore
    from engine.embed import EmbeddingSet
    from engine.files import write_text_atomic
    from engine.significance import MIN_BIN_HITS, REPORT_DEALS, build_table, report_markdown

    eset = EmbeddingSet.open(args.embeddings)
    store = ProteinStore.open(args.data)

    def progress(qm, tm, r):
        print(f"calibrate: {qm} -> {tm}: probability {'reported' if r['calibrated'] else 'not reported'} "
              f"(passed out of fold on valid in {r['fit_deals_passed']} of {REPORT_DEALS} deals), "
              f"{r['unrelated_significant_share']:.3f} of unrelated queries with E <= 0.05", file=sys.stderr, flush=True)

    table, report = build_table(eset, store, k=args.k, folds=args.folds, seed=args.seed, progress=progress,
                                min_bin=args.min_bin or MIN_BIN_HITS)
    if args.out:
        Path(args.out).mkdir(parents=True, exist_ok=True)
    path = table.save(args.out or eset.path)
    if args.report:
        out = Path(args.report)
        text = json.dumps(report, indent=1) if out.suffix == ".json" else report_markdown(report, table.meta)
        write_text_atomic(out, text)
    if args.json:
        print(json.dumps({"table": str(path), "pairs": report}, indent=1))
    else:
        print(f"wrote {path}")
    return 0
