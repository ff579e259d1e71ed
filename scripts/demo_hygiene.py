#!/usr/bin/env python
"""Apply the demo hygiene rule (engine/data/hygiene.py) to an existing store, without a full rebuild.

scripts/build_demo.py applies the same rule while it builds; this re-applies it to a store already on disk
(and, with --embeddings, drops the same proteins from an embeddings folder and refreshes its names), each
written atomically (temp folder, then rename). Prints what it left out and why.

Usage: python scripts/demo_hygiene.py assets/demo [--embeddings assets/embeddings/demo] [--dry-run]
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.hygiene import RULE_TEXT, apply_rule
from engine.data.store import ProteinStore, write_store
from engine.errors import OneProtError
from engine.files import atomic_dir


def clean_store(path: str | Path, dry_run: bool = False) -> tuple[dict[str, str], dict[str, str]]:
    """Re-write the store at `path` under the rule; returns ({dropped id: reason}, {kept id: name})."""
    store = ProteinStore.open(path)
    records = [store.record(pid) for pid in store.proteins["id"].tolist()]
    kept, dropped = apply_rule(records)
    names = {r.id: r.name for r in kept}
    if not dry_run:
        manifest = {k: v for k, v in store.manifest.items() if k not in ("format_version", "created", "proteins")}
        earlier = store.manifest.get("hygiene", {}).get("left_out", 0)  # re-applied: chains left out before count too
        manifest["hygiene"] = {"rule": RULE_TEXT, "left_out": earlier + len(dropped)}
        write_store(kept, store.path, {r.id: r.extra["split"] for r in kept},
                    {r.id: r.extra["cluster"] for r in kept}, manifest_extra=manifest)
    return dropped, names


def clean_embeddings(folder: str | Path, names: dict[str, str]) -> dict[str, int]:
    """Keep only ids present in `names` in an embeddings folder and refresh its label names; new counts."""
    folder = Path(folder)
    manifest = json.loads((folder / "manifest.json").read_text())
    if any(folder.glob("*.faiss")):  # an approximate index's rows cannot be dropped in place
        raise OneProtError("holds approximate (FAISS) indexes; re-embed with `oneprot embed` instead", str(folder))
    with atomic_dir(folder) as tmp:
        shutil.copytree(folder, tmp, dirs_exist_ok=True)
        for m, n in manifest["counts"].items():
            if not n:
                continue
            ids = (folder / f"{m}.ids.txt").read_text().split("\n")[:n]
            keep = np.array([i in names for i in ids], dtype=bool)
            vec = np.load(folder / f"{m}.npy")
            np.save(tmp / f"{m}.npy", vec[keep])
            (tmp / f"{m}.ids.txt").write_text("".join(f"{i}\n" for i, k in zip(ids, keep) if k))
            manifest["counts"][m] = int(keep.sum())
        labels = pd.read_parquet(folder / "labels.parquet")
        labels = labels[labels["id"].isin(names)].reset_index(drop=True)
        labels["name"] = labels["id"].map(names).fillna(labels["name"])
        labels.to_parquet(tmp / "labels.parquet", index=False)
        manifest["hygiene"] = RULE_TEXT
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest["counts"]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("store", help="store folder (or 'demo')")
    ap.add_argument("--embeddings", help="embeddings folder built from that store: drop the same ids there too")
    ap.add_argument("--dry-run", action="store_true", help="only list what the rule leaves out")
    args = ap.parse_args(argv)
    t0 = time.time()
    try:
        dropped, names = clean_store(args.store, args.dry_run)
        for pid, why in sorted(dropped.items()):
            print(f"left out {pid}: {why}")
        kinds = Counter(why.split(" (")[0].split(" '")[0] for why in dropped.values())
        print(f"{len(dropped)} structure chains left out ({dict(kinds)}); {len(names)} proteins kept")
        if args.embeddings and not args.dry_run:
            print(f"embeddings now hold {clean_embeddings(args.embeddings, names)}")
    except OneProtError as exc:
        print(f"demo_hygiene: error: {exc}", file=sys.stderr)
        return 1
    print(f"done in {time.time() - t0:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
