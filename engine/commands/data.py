"""`oneprot data build INPUTS... --out STORE`, `data stats STORE [--json]`, `data resplit STORE`,
`data check-leakage STORE`."""

from __future__ import annotations

import argparse
import json
import sys
import time

from engine.data.build import DEFAULT_MAX_FILE_MB, build_store
from engine.data.plddt import DEFAULT_MASK_BELOW, PLDDT_MODES
from engine.data.sequence import DEFAULT_MAX_LENGTH
from engine.data.splits import DEFAULT_COVERAGE, DEFAULT_IDENTITY, SPLIT_METHODS, SplitRule
from engine.data.store import ProteinStore
from engine.errors import OneProtError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    sub = parser.add_subparsers(dest="action", metavar="ACTION")
    b = sub.add_parser("build", help="build a store from PDB/mmCIF/FASTA/UniProt/Stockholm files or folders")
    b.add_argument("inputs", nargs="+", help="files or folders (searched recursively)")
    b.add_argument("--out", required=True, help="store folder to write (replaced atomically)")
    b.add_argument("--max-file-mb", type=float, default=DEFAULT_MAX_FILE_MB, help="skip files above this size")
    b.add_argument("--max-length", type=int, default=DEFAULT_MAX_LENGTH, help="reject longer sequences")
    _split_args(b)
    b.add_argument("--ligands", metavar="DIR", default=None,
                   help="folder of <stem>_ligand.sdf|.mol2 files for structures without one beside them")
    b.add_argument("--plddt", choices=PLDDT_MODES, default="auto",
                   help="confidence of predicted models: auto (ModelCIF table, or B-factors of files that name a "
                        "predictor), bfactor (every file's CA B-factor), off")
    b.add_argument("--plddt-mask", type=float, default=DEFAULT_MASK_BELOW,
                   help="3Di letters of residues below this pLDDT become '#' (SaProt); 0 masks none")
    b.add_argument("--min-plddt", type=float, default=None, help="leave out predicted chains with lower mean pLDDT")
    b.add_argument("--predict-pockets", action="store_true",
                   help="give ligand-free structures fpocket-rs's best predicted pocket")
    b.add_argument("--workers", type=int, default=None,
                   help="parsing processes (default: the cores, for 16 or more files to parse)")
    b.add_argument("--shard", default=None, metavar="I/N",
                   help="build only shard I of N (0-based) for a job array; join them with `data merge`")
    b.add_argument("--quiet", action="store_true", help="print only the summary")
    s = sub.add_parser("stats", help="print a store's statistics")
    s.add_argument("store", help="store folder, or `demo` for the bundled store")
    s.add_argument("--json", action="store_true", help="machine-readable JSON")
    u = sub.add_parser("import-upstream", help="store from upstream OneProt's published h5/CSV files")
    u.add_argument("folder", help="folder with seqstruc.h5, pockets_100_residues.h5, {train,val,test}_*.csv/.txt")
    u.add_argument("--out", required=True, help="store folder to write (replaced atomically)")
    u.add_argument("--saprot-h5", default=None, help="the HDF5 file holding the SaProt strings of *_saprot.txt ids")
    m = sub.add_parser("merge", help="merge shard stores (`build --shard I/N`) into one store, clustered once")
    m.add_argument("shards", nargs="+", help="shard store folders")
    m.add_argument("--out", required=True, help="merged store folder (written atomically)")
    _split_args(m)
    r = sub.add_parser("resplit", help="re-cluster an existing store and re-assign its splits (atomically)")
    r.add_argument("store", help="store folder (rewritten in place)")
    r.add_argument("--keep-clusters", action="store_true",
                   help="keep the store's clusters and only deal them to splits again (no re-clustering)")
    r.add_argument("--keep-held-out", action="store_true",
                   help="with --keep-clusters: valid and test clusters stay, only train clusters move")
    _split_args(r)
    c = sub.add_parser("check-leakage", help="count test proteins >= the split identity to any train protein")
    c.add_argument("store", help="store folder, or `demo`")
    c.add_argument("--identity", type=float, default=None, help="default: the store's split identity")
    c.add_argument("--coverage", type=float, default=None, help="default: the store's split coverage (0 if none)")
    c.add_argument("--definition", choices=("alignment", "shorter"), default=None,
                   help="identical positions / alignment length or / shorter length (default: the store's)")
    c.add_argument("--against", choices=("train", "valid"), default="train", help="split to compare test with")
    c.add_argument("--threads", type=int, default=None, help="mmseqs threads (default: all cores)")
    c.add_argument("--json", action="store_true", help="machine-readable JSON")


def _split_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--identity", type=float, default=DEFAULT_IDENTITY, help="clustering identity for splits")
    p.add_argument("--coverage", type=float, default=DEFAULT_COVERAGE,
                   help="MMseqs2 path: minimum aligned fraction of both sequences")
    p.add_argument("--split-method", choices=SPLIT_METHODS, default="auto",
                   help="auto: MMseqs2 when the mmseqs binary is present, else the own clustering")
    p.add_argument("--seed", type=int, default=0, help="seed for dealing clusters to splits")
    p.add_argument("--stratify", action="store_true",
                   help="deal each family label's clusters, and those of proteins with a structure, across the "
                        "splits first (rarest first), so scarce kinds reach valid and test")
    p.add_argument("--strata-fractions", default=None, metavar="TRAIN,VALID,TEST",
                   help="with --stratify: the strata's shares (default: the proteins' 0.8,0.1,0.1)")
    p.add_argument("--threads", type=int, default=None, help="mmseqs threads (default: all cores)")


def run(args: argparse.Namespace) -> int:
    if args.action == "build":
        return _build(args)
    if args.action == "stats":
        from engine.cli import print_summary

        print_summary(ProteinStore.open(args.store).stats(), args.json)
        return 0
    if args.action == "import-upstream":
        from engine.data.upstream_import import import_upstream

        path, rep = import_upstream(args.folder, args.out, saprot_h5=args.saprot_h5)
        for line in rep["problems"][:50]:
            print(f"  {line}")
        print(f"wrote {path}: {rep['proteins']} proteins, upstream splits {rep['splits']}; "
              f"{len(rep['problems'])} problems")
        return 0
    if args.action == "merge":
        from engine.data.shards import merge_stores

        t0 = time.time()
        path = merge_stores(args.shards, args.out, _split_rule(args), threads=args.threads,
                            log=lambda s: print(s, file=sys.stderr))
        stats = ProteinStore.open(path).stats()
        print(f"wrote {path}: {stats['proteins']} proteins, splits {stats['splits']} in {time.time() - t0:.1f} s")
        return 0
    if args.action == "resplit":
        from engine.data.resplit import resplit_store

        t0 = time.time()
        out = resplit_store(args.store, _split_rule(args), threads=args.threads,
                            log=lambda s: print(s, file=sys.stderr), keep_clusters=args.keep_clusters,
                            keep_held_out=args.keep_held_out)
        print(f"re-split {out['path']}: {out['clusters']} clusters, splits {out['splits']} "
              f"({out['split_method']['method']}) in {time.time() - t0:.1f} s")
        return 0
    if args.action == "check-leakage":
        from engine.data.resplit import check_leakage

        res = check_leakage(args.store, identity=args.identity, coverage=args.coverage,
                            definition=args.definition, against=args.against, threads=args.threads)
        if args.json:
            print(json.dumps(res, indent=2))
        else:
            print(f"{res['store']}: all {res['test_proteins']} test proteins vs {res[args.against + '_proteins']} "
                  f"{args.against} proteins ({res['tool']}); {res['leaking']} ({res['leaking_fraction']:.1%}) "
                  f"at >= {res['identity']:.0%} identity ({res['definition']} definition), "
                  f">= {res['coverage']:.0%} coverage; {res['seconds']} s")
            for e in res["examples"]:
                print(f"  {e['test']} ~ {e[args.against]}: {e['identity']:.2f}")
        return 0
    raise OneProtError("choose an action: build, stats, merge, import-upstream, resplit or check-leakage", "data")


def _split_rule(args: argparse.Namespace) -> SplitRule:
    """The --identity / --coverage / --split-method / --seed flags as one checked rule."""
    return SplitRule(identity=args.identity, coverage=args.coverage, method=args.split_method, seed=args.seed,
                     stratify=args.stratify, strata_fractions=_fractions(args.strata_fractions, "--strata-fractions"))


def _fractions(text: str | None, flag: str) -> tuple[float, float, float] | None:
    if text is None:
        return None
    try:
        vals = tuple(float(x) for x in text.split(","))
    except ValueError:
        raise OneProtError(f"expected three numbers such as 0.7,0.15,0.15, got {text!r}", flag) from None
    return vals  # SplitRule checks their count and sum


def _parse_shard(text: str) -> tuple[int, int]:
    try:
        i, n = (int(x) for x in text.split("/"))
    except ValueError:
        raise OneProtError(f"expected I/N such as 0/4, got {text!r}", "--shard") from None
    if not (n >= 1 and 0 <= i < n):
        raise OneProtError(f"need 0 <= I < N, got {text!r}", "--shard")
    return i, n


def _build(args: argparse.Namespace) -> int:
    split = _split_rule(args)  # checked before parsing, so a typo does not cost a long build
    shard = _parse_shard(args.shard) if args.shard else None
    if args.workers is not None and args.workers < 1:
        raise OneProtError(f"must be >= 1, got {args.workers}", "--workers")
    t0 = time.time()
    log = (lambda s: None) if args.quiet else (lambda s: print(s, file=sys.stderr))
    path, report = build_store(args.inputs, args.out, max_file_mb=args.max_file_mb, max_length=args.max_length,
                               split=split, log=log, predict_pockets=args.predict_pockets,
                               threads=args.threads, ligand_dir=args.ligands,
                               plddt=args.plddt, plddt_mask=args.plddt_mask, min_plddt=args.min_plddt,
                               workers=args.workers, shard=shard, progress=not args.quiet)
    for line in report.lines():
        print(line)
    stats = ProteinStore.open(path).stats()
    print(f"wrote {path}: {stats['proteins']} proteins, modalities {stats['modalities']}, "
          f"splits {stats['splits']} in {time.time() - t0:.1f} s")
    return 0
