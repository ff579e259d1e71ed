"""`oneprot data build INPUTS... --out STORE` and `oneprot data stats STORE [--json]`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.data.build import DEFAULT_MAX_FILE_MB, build_store
from engine.data.sequence import DEFAULT_MAX_LENGTH
from engine.data.splits import DEFAULT_IDENTITY
from engine.data.store import ProteinStore
from engine.errors import OneProtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    b = sub.add_parser("build", help="build a store from PDB/mmCIF/FASTA/UniProt/Stockholm files or folders")
    b.add_argument("inputs", nargs="+", help="files or folders (searched recursively)")
    b.add_argument("--out", required=True, help="store folder to write (replaced atomically)")
    b.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_MB, help="skip files above this size")
    b.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH, help="reject longer sequences")
    b.add_argument("--identity", type=float, default=DEFAULT_IDENTITY, help="clustering identity for splits")
    b.add_argument("--seed", type=int, default=0, help="seed for dealing clusters to splits")
    b.add_argument("--predict-pockets", action="store_true",
                   help="give ligand-free structures fpocket-rs's best predicted pocket")
    b.add_argument("--quiet", action="store_true", help="print only the summary")
    s = sub.add_parser("stats", help="print a store's statistics")
    s.add_argument("store", help="store folder, or `demo` for the bundled store")
    s.add_argument("--json", action="store_true", help="machine-readable JSON")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return _build(args)
    if args.action == "stats":
        stats = ProteinStore.open(args.store).stats()
        if args.json:
            print(json.dumps(stats, indent=2))
        else:
            for k, v in stats.items():
                print(f"{k}: {v}")
        return 0
    raise OneProtError("choose an action: build or stats", "data")


def _build(args: argparse.Namespace) -> int:
    if not 0 < args.identity <= 1:
        raise OneProtError(f"must be in (0, 1], got {args.identity}", "--identity")
    t0 = time.time()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    path, report = build_store(args.inputs, args.out, max_file_mb=args.max_file_mb, max_length=args.max_length,
                               identity=args.identity, seed=args.seed, log=log,
                               predict_pockets=args.predict_pockets)
    for line in report.lines():
        print(line)
    stats = ProteinStore.open(path).stats()
    print(f"wrote {path}: {stats['proteins']} proteins, modalities {stats['modalities']}, "
          f"splits {stats['splits']} in {time.time() - t0:.1f} s")
    return 0
