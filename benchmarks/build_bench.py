"""`oneprot data build` at scale: parsing throughput with 1 and 2 workers, peak memory as the store grows,
MMseqs2 vs own clustering time. Every section can be skipped, so each runs alone.

1. Throughput: `--files` structure files (tmtools' 2gtl.pdb and the test fixtures, copied under new names),
   built with a fresh parse cache by 1 and by 2 workers (own clustering, so parsing dominates).
2. Memory: for each of `--sizes` chains, a child process makes that many records by re-using the parsed
   chains under new ids and writes a store (peak RSS of that child: the in-memory build path), a
   second child merges it as 4 shards (peak RSS: the shard path, tables in memory, arrays streamed),
   a third opens the merged store and reads 100 proteins' coordinates (peak RSS: memory-mapped arrays).
3. Build memory: for each of `--build-sizes` chains, that many one-chain registry files (the test fixtures,
   hard-linked under new names, so every chain gets its own id) are built by `oneprot data build --workers 1
   --threads 1` in a fresh process with a fresh parse cache: peak RSS (VmHWM) of the build process (mmseqs runs
   in its own processes, not counted: it sees only the distinct sequences, 3 here), wall time. The parse cache is keyed by file path, size and mtime, not content, so
   every copy is parsed for real.
4. Clustering: `--cluster-n` sequences (comma list) by MMseqs2 and by the own clustering: the demo store's sequences,
   and beyond its size mutated copies of them (20% of residues substituted, seeded), so copies join their
   original's cluster as related proteins would.
Usage: python benchmarks/build_bench.py [--files 48] [--workers 1,2] [--sizes 1000,10000]
       [--build-sizes 1000,10000] [--cluster-n 2000[,20000,...]] [--out NAME]      (0 or '' skips a section)
Throughput alone (1 vs 2 workers): python benchmarks/build_bench.py --files 48 --sizes '' --build-sizes '' --cluster-n 0
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_result

ROOT = Path(__file__).resolve().parent.parent
FIX = ROOT / "tests" / "fixtures" / "data"
SOURCES = ["1a5z_A.cif.gz", "d1cih__.pdb.gz", "pocket_toy.pdb"]


def _throughput_sources() -> list[Path]:
    """Registry structures to copy: tmtools' 2gtl.pdb (large, many chains) when installed, and the fixtures."""
    out = [FIX / n for n in SOURCES]
    try:
        import tmtools

        big = Path(tmtools.__file__).parent / "data" / "2gtl.pdb"
        if big.is_file():
            out.insert(0, big)
    except ImportError:
        pass
    return out


def _rss_mb(field: str = "VmRSS") -> float:
    # VmHWM, not ru_maxrss: Linux keeps ru_maxrss across exec, so a child would report its parent's peak
    with open("/proc/self/status") as fh:
        return float(next(ln for ln in fh if ln.startswith(field + ":")).split()[1]) / 1024


def _throughput(n_files: int, workers: int, tmp: Path) -> dict:
    from engine.data.build import build_store
    from engine.data.splits import SplitRule

    d = tmp / f"in{workers}"
    d.mkdir()
    sources = _throughput_sources()
    for k in range(n_files):
        src = sources[k % len(sources)]
        shutil.copy(src, d / f"s{k:06d}_{src.name}")
    t0 = time.perf_counter()
    _, report = build_store([d], tmp / f"store{workers}", cache_dir=tmp / f"cache{workers}", workers=workers,
                            split=SplitRule(method="own"))
    sec = time.perf_counter() - t0
    return {"workers": workers, "files": n_files, "seconds": round(sec, 1), "files_per_s": round(n_files / sec, 2),
            "proteins": sum(report.used.values())}


def _build_inputs(n: int, tmp: Path) -> Path:
    """n one-chain structure files: the fixtures hard-linked (copied where links fail) under new names."""
    src, d = tmp / "src", tmp / f"in{n}"
    src.mkdir(exist_ok=True)
    d.mkdir()
    sources = []
    for name in SOURCES:  # private copies, so no link points into the checkout
        shutil.copy(FIX / name, src / name)
        sources.append(src / name)
    for k in range(n):
        s = sources[k % len(sources)]
        try:
            os.link(s, d / f"c{k:07d}_{s.name}")
        except OSError:
            shutil.copy(s, d / f"c{k:07d}_{s.name}")
    return d


_BUILD_CHILD = """
import sys, time
from engine.cli import main
t0 = time.perf_counter()
rc = main(sys.argv[1:])
sec = time.perf_counter() - t0
hwm = next(l for l in open('/proc/self/status') if l.startswith('VmHWM:')).split()[1]
print('BENCH', rc, round(sec, 1), round(int(hwm) / 1024, 1))
"""


def _build_memory(n: int, tmp: Path) -> dict:
    """Peak RSS of `oneprot data build` on n one-chain files, in a fresh process with a fresh parse cache."""
    d = tmp / f"build{n}"
    d.mkdir()
    inputs = _build_inputs(n, d)
    env = {**os.environ, "ONEPROT_CACHE": str(d / "cache"), "OMP_NUM_THREADS": "1"}
    cmd = ["data", "build", str(inputs), "--out", str(d / "store"), "--workers", "1", "--threads", "1", "--quiet"]
    out = subprocess.run([sys.executable, "-c", _BUILD_CHILD, *cmd], capture_output=True, text=True, env=env)
    line = next((ln for ln in out.stdout.splitlines() if ln.startswith("BENCH ")), None)
    if out.returncode or line is None:
        raise SystemExit(f"build of {n} chains failed:\n{out.stdout[-2000:]}\n{out.stderr[-2000:]}")
    _, rc, sec, peak = line.split()
    from engine.data.store import ProteinStore

    st = ProteinStore.open(d / "store")
    row = {"chains": n, "proteins": len(st), "with_structure": len(st.ids(modality="structure")),
           "seconds": float(sec), "peak_rss_mb": float(peak),
           "store_mb": round(sum(f.stat().st_size for f in (d / "store").rglob("*") if f.is_file()) / 1e6, 1),
           "cache_mb": round(sum(f.stat().st_size for f in (d / "cache").rglob("*") if f.is_file()) / 1e6, 1),
           "loadavg_after": [round(x, 2) for x in os.getloadavg()]}
    shutil.rmtree(d)
    return row


def _child(mode: str, n: int, tmp: str) -> None:
    """Run in a subprocess: one stage of the memory measurement; prints peak RSS in MB."""
    from engine.data.build import parse_file
    from engine.data.store import ProteinStore, write_store

    tmp_p = Path(tmp)
    base = []
    if mode in ("write", "shards"):
        for name in SOURCES:
            recs, _ = parse_file(FIX / name, "structure", 1000)
            base += [r for r in recs if r.coords is not None]
    before = _rss_mb()  # resident after imports and set-up (the CCD table loaded by ligand pockets is large)
    if mode in ("write", "shards"):
        if mode == "write":
            recs = []
            for k in range(n):
                b = base[k % len(base)]
                recs.append(type(b)(id=f"p{k}", sequence=b.sequence, coords=b.coords, residue_numbers=b.residue_numbers,
                                    structure_tokens=b.structure_tokens, extra={"side_chains": b.extra.get("side_chains")}))
            write_store(recs, tmp_p / "full", {}, {})
        else:  # 4 shard stores of n/4 chains each, written one after another (as 4 array jobs would)
            for s in range(4):
                recs = []
                for k in range(s, n, 4):
                    b = base[k % len(base)]
                    recs.append(type(b)(id=f"p{k}", sequence=b.sequence, coords=b.coords,
                                        residue_numbers=b.residue_numbers, structure_tokens=b.structure_tokens,
                                        extra={"side_chains": b.extra.get("side_chains")}))
                write_store(recs, tmp_p / f"shard{s}", {}, {}, manifest_extra={"shard": [s, 4]})
                del recs
    elif mode == "merge":
        from engine.data.shards import merge_stores
        from engine.data.splits import SplitRule

        merge_stores([tmp_p / f"shard{s}" for s in range(4)], tmp_p / "merged", SplitRule(method="own"))
    elif mode == "open":
        st = ProteinStore.open(tmp_p / "merged")
        ids = st.ids(modality="structure")
        for pid in ids[:: max(1, len(ids) // 100)][:100]:
            st.coords(pid)
    print(f"{_rss_mb('VmHWM'):.1f} {before:.1f} {_rss_mb():.1f}")


def _peak(mode: str, n: int, tmp: Path) -> str:
    """'peak (resident before the work -> after)' in MB for one stage run in a fresh process."""
    env = {**os.environ, "ONEPROT_MMSEQS": "off", "OMP_NUM_THREADS": "1"}
    out = subprocess.run([sys.executable, __file__, "--child", mode, str(n), str(tmp)], capture_output=True,
                         text=True, check=True, env=env)
    peak, before, after = out.stdout.strip().splitlines()[-1].split()
    return f"{peak} ({before} -> {after})"


def _cluster_times(n: int, methods: tuple[str, ...] = ("mmseqs", "own")) -> dict:
    import numpy as np

    from engine.data import mmseqs
    from engine.data.splits import cluster_for_splits
    from engine.data.store import ProteinStore

    seqs = ProteinStore.open("demo").proteins["sequence"].tolist()
    demo = len(seqs)
    rng = np.random.default_rng(0)
    amino = np.array(list("ACDEFGHIKLMNPQRSTVWY"))
    for k in range(max(0, n - demo)):  # mutated copies beyond the store's size
        s = np.array(list(seqs[k % demo]))
        flip = rng.random(len(s)) < 0.2
        s[flip] = rng.choice(amino, size=int(flip.sum()))
        seqs.append("".join(s))
    seqs = seqs[:n]
    out = {"sequences": len(seqs), "from_store": min(n, demo), "mutated_copies": max(0, n - demo)}
    for method in methods:
        if method.startswith("mmseqs") and mmseqs.mmseqs_binary() is None:
            out[method] = "mmseqs not installed"
            continue
        t0 = time.perf_counter()
        if method == "mmseqs-cluster":  # easy-cluster alone, without the all-vs-all member linkage
            clusters = mmseqs.cluster(list(dict.fromkeys(seqs)), 0.5, threads=2)
        else:
            clusters, _ = cluster_for_splits(seqs, method=method, threads=2)
        out[method] = {"seconds": round(time.perf_counter() - t0, 1), "clusters": len(set(clusters))}
        print(f"clustering {len(seqs)}: {method} {out[method]}", flush=True)
    return out


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        _child(sys.argv[2], int(sys.argv[3]), sys.argv[4])
        return 0
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--files", type=int, default=48, help="files for the throughput runs (0: skip)")
    ap.add_argument("--workers", default="1,2", help="worker counts for the throughput runs")
    ap.add_argument("--sizes", default="1000,10000", help="chains for the write/shard/merge/open stages ('': skip)")
    ap.add_argument("--build-sizes", default="1000,10000", help="chains for `oneprot data build` peak RSS ('': skip)")
    ap.add_argument("--cluster-n", default="2000", help="sequences to cluster, comma list (0 or '': skip)")
    ap.add_argument("--cluster-methods", default="mmseqs,own",
                    help="mmseqs (the build's split clustering), mmseqs-cluster (easy-cluster alone), own")
    ap.add_argument("--out", default=f"build_bench_{time.strftime('%Y-%m-%d')}")
    args = ap.parse_args()
    res: dict = {"loadavg_before": [round(x, 2) for x in os.getloadavg()]}
    body = ""
    with tempfile.TemporaryDirectory(prefix="oneprot-build-bench-") as tmp:
        t = Path(tmp)
        if args.files:
            os.environ["ONEPROT_MMSEQS"] = "off"
            res["throughput"] = [_throughput(args.files, int(w), t) for w in args.workers.split(",") if w]
            del os.environ["ONEPROT_MMSEQS"]
            tp = res["throughput"]
            body += ("## Parsing throughput (build with a fresh parse cache, own clustering)\n"
                     "| workers | files | seconds | files/s |\n|---|---|---|---|\n"
                     + "".join(f"| {r['workers']} | {r['files']} | {r['seconds']} | {r['files_per_s']} |\n" for r in tp))
            if len(tp) > 1:
                body += f"\n{tp[-1]['workers']} workers / {tp[0]['workers']} worker: {tp[-1]['files_per_s'] / tp[0]['files_per_s']:.2f}x\n"
            body += "\n"
        if args.build_sizes:
            res["build_memory"] = []
            for n in [int(x) for x in args.build_sizes.split(",") if x]:
                res["build_memory"].append(_build_memory(n, t))
                print(res["build_memory"][-1], flush=True)
            body += ("## Memory of `oneprot data build --workers 1 --threads 1` as the input grows (fresh parse cache)\n"
                     "One-chain fixture files hard-linked under new names; the parse cache is keyed by file path, size "
                     "and mtime, not content, so every copy is parsed. mmseqs (own processes) is not counted.\n\n"
                     "| chains | proteins (with structure) | peak RSS, build process (MB) | "
                     "build seconds | store (MB) | parse cache (MB) | load after |\n|---|---|---|---|---|---|---|\n"
                     + "".join(f"| {r['chains']} | {r['proteins']} ({r['with_structure']}) | {r['peak_rss_mb']} | "
                               f"{r['seconds']} | {r['store_mb']} | {r['cache_mb']} | "
                               f"{r['loadavg_after']} |\n" for r in res["build_memory"]) + "\n")
        if args.sizes:
            res["memory_mb"] = []
            for n in [int(x) for x in args.sizes.split(",") if x]:
                d = t / f"mem{n}"
                d.mkdir()
                row = {"chains": n, "write_store_in_memory": _peak("write", n, d), "write_4_shards": _peak("shards", n, d),
                       "merge_4_shards": _peak("merge", n, d), "open_and_read_100": _peak("open", n, d)}
                row["store_mb_on_disk"] = round(sum(f.stat().st_size for f in (d / "merged").rglob("*") if f.is_file()) / 1e6, 1)
                res["memory_mb"].append(row)
                shutil.rmtree(d)
            body += ("## Memory (MB): peak RSS of the process doing each stage (resident before its work -> after)\n"
                     "| chains | write_store, all records in memory | write 4 shard stores | merge 4 shards | open merged + read 100 | store on disk (MB) |\n"
                     "|---|---|---|---|---|---|\n"
                     + "".join(f"| {r['chains']} | {r['write_store_in_memory']} | {r['write_4_shards']} | {r['merge_4_shards']} | "
                               f"{r['open_and_read_100']} | {r['store_mb_on_disk']} |\n" for r in res["memory_mb"]) + "\n")
        sizes = [int(x) for x in str(args.cluster_n).split(",") if x.strip() and int(x) > 0]
        if sizes:
            methods = tuple(m.strip() for m in args.cluster_methods.split(",") if m.strip())
            res["clustering"] = [_cluster_times(n, methods) for n in sizes]
            rows = "".join(f"| {c['sequences']} | {c['from_store']} | {c['mutated_copies']} | "
                           + " | ".join(f"{c[m]['seconds']} s, {c[m]['clusters']} clusters" if isinstance(c[m], dict)
                                        else str(c[m]) for m in methods) + " |\n"
                           for c in res["clustering"])
            names = {"mmseqs": "MMseqs2 (easy-cluster + all-vs-all member linkage)",
                     "mmseqs-cluster": "MMseqs2 easy-cluster alone", "own": "own"}
            body += ("## Clustering for splits, 2 threads, 50% identity\n"
                     "| sequences | from the demo store | mutated copies | " + " | ".join(names.get(m, m) for m in methods)
                     + " |\n|---|---|---|" + "---|" * len(methods) + "\n" + rows)
    res["loadavg_after"] = [round(x, 2) for x in os.getloadavg()]
    head = (
        "Shared machine: 2 cores used by several sessions at once; load average (1, 5, 15 min) before "
        f"{res['loadavg_before']}, after {res['loadavg_after']}. Figures are indicative only.\n\n"
        f"Command: `python benchmarks/build_bench.py --files {args.files} --workers {args.workers} --sizes '{args.sizes}' "
        f"--build-sizes '{args.build_sizes}' --cluster-n {args.cluster_n} --cluster-methods {args.cluster_methods}`\n\n"
    )
    print(head + body)
    print(write_result(args.out, "Store build at scale", head + body))
    return 0


if __name__ == "__main__":
    sys.exit(main())
