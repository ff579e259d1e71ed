"""`oneprot data merge`: stores built as shards (`data build --shard I/N`) -> one store, clustered once.

The protein and pocket tables of the shards are concatenated (ids made unique the way one build
does: a repeated id gets `~2`, `~3`, ...), the clustering for splits runs once over all sequences,
and the per-residue arrays are copied shard by shard, one protein at a time, from the shards'
memory-mapped arrays into the new store's, so memory holds the tables but not the coordinates.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.splits import SplitRule, clusters_and_splits, protein_strata
from engine.data.store import FORMAT_VERSION, PROTEIN_COLUMNS, ProteinStore
from engine.data.store_arrays import ARRAYS_DIR, ArrayWriter
from engine.errors import OneProtError
from engine.files import atomic_dir


def merge_stores(
    shards: Sequence[str | os.PathLike],
    out: str | os.PathLike,
    rule: SplitRule = SplitRule(),
    threads: int | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> Path:
    """Merge stores into `out` (written atomically) with fresh clusters and splits over all of them."""
    if not shards:
        raise OneProtError("no shard stores given", "merge")
    stores = [ProteinStore.open(s) for s in shards]
    out = Path(out)
    if any(st.path.resolve() == out.resolve() for st in stores):
        raise OneProtError("the merged store must not replace one of its shards", str(out))
    seen_shards = [tuple(st.manifest["shard"]) for st in stores if "shard" in st.manifest]
    if len(set(seen_shards)) != len(seen_shards):
        raise OneProtError(f"the same shard given twice: {sorted(seen_shards)}", "merge")
    tables, pockets = [], []
    seen: dict[str, int] = {}
    for k, st in enumerate(stores):
        p = st.proteins.copy()
        new_ids = []
        for pid in p["id"].tolist():
            n = seen.get(pid, 0)
            seen[pid] = n + 1
            new_ids.append(f"{pid}~{n + 1}" if n else pid)
        rename = dict(zip(p["id"].tolist(), new_ids))
        p["_shard"], p["_orig"], p["id"] = k, p["id"], new_ids
        tables.append(p)
        pk = st._load_pockets().copy()
        pk["protein_id"] = pk["protein_id"].map(rename)
        pockets.append(pk)
    allp = pd.concat(tables, ignore_index=True)
    log(f"merging {len(stores)} stores: {len(allp)} proteins")
    clusters, allp["split"], how = clusters_and_splits(allp["sequence"].tolist(), rule, threads, log,
                                                       strata=protein_strata(allp["family"], allp["has_structure"]))
    allp["cluster"] = np.asarray(clusters, dtype=np.int64)

    struct = allp[allp["has_structure"].astype(bool)]
    arrays = [st._load_structures() for st in stores]
    n_res = int(struct["length"].sum())
    id_width = int(struct["id"].str.len().max()) if len(struct) else 1
    resnum_width = max((a["residue_numbers"].dtype.itemsize // 4 for a in arrays if a.get("residue_numbers") is not None),
                       default=1)
    any_side = any(a.get("side_chains") is not None for a in arrays)
    any_plddt = any(a.get("plddt") is not None for a in arrays)
    extra_cols = [c for c in allp.columns if c not in PROTEIN_COLUMNS and not c.startswith("_")]
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "proteins": int(len(allp)),
        "split_method": how,
        "merged_from": [str(st.path) for st in stores],
        "built_from": sum((st.manifest.get("built_from", []) for st in stores), []),
        "skipped_files": int(sum(st.manifest.get("skipped_files", 0) for st in stores)),
    }
    with atomic_dir(out) as tmp:
        allp[list(PROTEIN_COLUMNS) + extra_cols].to_parquet(tmp / "proteins.parquet", index=False)
        pd.concat(pockets, ignore_index=True).to_parquet(tmp / "pockets.parquet", index=False)
        if len(struct):
            w = ArrayWriter(tmp / ARRAYS_DIR, len(struct), n_res, id_width, resnum_width, any_side, any_plddt)
            for row in struct[["id", "_shard", "_orig"]].itertuples(index=False):
                st = stores[row._1]
                w.add(row.id, st.coords(row._2), st.residue_numbers(row._2), st.side_chains(row._2), st.plddt(row._2))
            w.close()
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return out
