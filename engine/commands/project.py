"""`oneprot project`: 2-D UMAP of one or several modalities of an embeddings folder (cached, seeded)."""

from __future__ import annotations

import argparse
import json


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.cli import add_embeddings_option

    add_embeddings_option(p)
    p.add_argument("--modalities", help="comma-separated (default: all, projected jointly)")
    p.add_argument("--out", required=True, help="output table: .parquet or .csv (id, modality, x, y + labels)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--n-neighbors", type=int, default=15)
    p.add_argument("--min-dist", type=float, default=0.1)
    p.add_argument("--no-cache", action="store_true")
    p.add_argument("--json", action="store_true")


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from engine.embed import EmbeddingSet
    from engine.errors import OneProtError
    from engine.paths import CACHE_DIR
    from engine.projection import project

    eset = EmbeddingSet.open(args.embeddings)
    mods = [m.strip() for m in args.modalities.split(",")] if args.modalities else eset.modalities
    vectors = {m: eset.vectors(m) for m in mods}
    ids = {m: eset.ids(m) for m in mods}
    proj = project(vectors, ids, seed=args.seed, n_neighbors=args.n_neighbors, min_dist=args.min_dist,
                   cache_dir=None if args.no_cache else CACHE_DIR)
    table = pd.DataFrame({"id": proj.ids, "modality": proj.modalities, "x": proj.coords[:, 0], "y": proj.coords[:, 1]})
    if len(eset.labels):
        table = table.merge(eset.labels, on="id", how="left")
    out = str(args.out)
    if out.endswith(".csv"):
        table.to_csv(out, index=False)
    elif out.endswith(".parquet"):
        table.to_parquet(out, index=False)
    else:
        raise OneProtError("output must end in .parquet or .csv", "--out")
    summary = {"out": out, "points": len(table), "modalities": mods, "cached": proj.cached, "params": proj.params}
    print(json.dumps(summary, indent=2) if args.json else f"wrote {len(table)} points to {out} (cached: {proj.cached})")
    return 0
