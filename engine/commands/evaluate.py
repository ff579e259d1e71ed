"""`oneprot evaluate`: retrieval for every modality pair, baselines, evolution and probes; optional report."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

from engine.files import write_text_atomic


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.evaluate.relatives import TM_MAX as RELATIVES_TM_MAX
    from engine.evaluate.tmscore import MAX_PROTEINS

    p.add_argument("--checkpoint", default="demo", help="checkpoint folder or 'demo'")
    p.add_argument("--data", default="demo", help="store folder or 'demo'")
    p.add_argument("--split", default="test", choices=("train", "valid", "test"))
    p.add_argument("--protocol", default="ours", choices=("ours", "oneprot"),
                   help="ours (default): every split protein, ties against the model, duplicates, analytic chance, "
                        "with baselines, relatives, evolution and probes; oneprot: upstream's retrieval protocol "
                        "(seeded 1,000 pairs per ordered pair, argsort ranks, R@1/10/100/500, median rank)")
    p.add_argument("--baseline-checkpoint", help="a pre-alignment checkpoint to use as the unaligned baseline "
                   "(default: this checkpoint's encoders with seeded fresh projection heads)")
    p.add_argument("--modalities", help="comma-separated subset")
    p.add_argument("--max-queries", type=int, default=5000, help="per pair; a seeded sample beyond this")
    p.add_argument("--batch-tokens", type=int, default=16_384)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-probes", action="store_true")
    p.add_argument("--tmscore-max", type=int, default=MAX_PROTEINS, metavar="N",
                   help="TM-score baseline (pocket<->structure, TM-align on CA atoms; cost grows as N^2, ~20 s for "
                        f"N=92): a seeded sample of at most N proteins per pair (default {MAX_PROTEINS}; 0 skips it)")
    p.add_argument("--relatives-tm-max", type=int, default=RELATIVES_TM_MAX, metavar="N",
                   help="relatives metric, TM-score baseline (structure/pocket sides): a seeded sample of at most N "
                        f"queries per pair, each aligned against every target (default {RELATIVES_TM_MAX}; 0 skips it)")
    p.add_argument("--no-tmscore", action="store_true", help="skip both TM-score baselines (retrieval and relatives)")
    p.add_argument("--device", default="auto")
    p.add_argument("--report", metavar="DIR", help="write report.md, report.html and PNG plots here")
    p.add_argument("--out", metavar="FILE", help="also write the JSON result to this file")
    p.add_argument("--json", action="store_true", help="print the full JSON result (default: a table)")


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.commands.embed import pick_device
    from engine.data.store import ProteinStore
    from engine.errors import OneProtError
    from engine.evaluate.report import markdown_table, retrieval_table, upstream_table, write_report
    from engine.evaluate.run import evaluate

    out = _prepare_out(args.out) if args.out else None  # before the work: a bad path must not cost a run
    if args.tmscore_max < 0:
        raise OneProtError("must be 0 (skip) or a positive number of proteins", f"--tmscore-max {args.tmscore_max}")
    if args.relatives_tm_max < 0:
        raise OneProtError("must be 0 (skip) or a positive number of queries", f"--relatives-tm-max {args.relatives_tm_max}")
    tmscore_max = 0 if args.no_tmscore else args.tmscore_max
    device = pick_device(args.device)
    store = ProteinStore.open(args.data)
    model = load_checkpoint(args.checkpoint, map_location=device)
    baseline = load_checkpoint(args.baseline_checkpoint, map_location=device) if args.baseline_checkpoint else None
    mods = [m.strip() for m in args.modalities.split(",")] if args.modalities else None
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731 - stdout is reserved for the result
    result = evaluate(model, store, args.split, baseline_model=baseline, seed=args.seed, max_queries=args.max_queries,
                      modalities=mods, batch_tokens=args.batch_tokens, run_probes=not args.no_probes,
                      tmscore_max=tmscore_max, relatives_tm_max=0 if args.no_tmscore else args.relatives_tm_max,
                      protocol=args.protocol, log=log)
    result["checkpoint"] = str(args.checkpoint)
    result["model_hash"] = getattr(model, "checkpoint_meta", {}).get("model_hash")
    result["baseline_checkpoint"] = args.baseline_checkpoint
    # what a re-run needs to reproduce the figures (tests/engine/test_demo_bundle.py does)
    result["created"] = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    result["params"] = {"split": args.split, "protocol": args.protocol, "seed": args.seed,
                        "max_queries": args.max_queries, "tmscore_max": tmscore_max,
                        "relatives_tm_max": 0 if args.no_tmscore else args.relatives_tm_max, "modalities": mods,
                        "probes": not args.no_probes}
    text = json.dumps(result, indent=2)
    if out is not None:
        write_text_atomic(out, text)
    if args.report:
        log(f"report: {write_report(result, args.report)}")
    if args.json:
        print(text)
    else:
        print(markdown_table((upstream_table if args.protocol == "oneprot" else retrieval_table)(result)))
    return 0


def _prepare_out(path: str):
    """--out FILE: its folder is created; a folder or unwritable place fails now with a clear error."""
    from pathlib import Path

    from engine.errors import OneProtError

    out = Path(path)
    if out.is_dir():
        raise OneProtError("is a folder; give a file name for the JSON result", f"--out {path}")
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OneProtError(f"cannot create its folder ({error.strerror})", f"--out {path}") from None
    if not os.access(out.parent, os.W_OK):
        raise OneProtError("its folder is not writable", f"--out {path}")
    return out
