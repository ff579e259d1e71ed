"""Re-assign the splits of an existing store, and check a store's test split for leakage.

`resplit_store` re-clusters the store's sequences (engine.data.splits.clusters_and_splits) and
rewrites only proteins.parquet and manifest.json; the other files are hard-linked (copied where
links are impossible) into a sibling folder that replaces the store in one rename, so a killed
re-split leaves the old store.

`check_leakage` aligns EVERY test protein against every train protein with MMseqs2 at its most
sensitive setting (-s 7.5, no cap on hits per query) and counts test proteins with a train
protein at >= the split identity, by the definition (and coverage) the store's manifest states.
Without the binary it falls back to the own k-mer candidates + Smith-Waterman (50 per query).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable

import numpy as np

from engine.data import mmseqs
from engine.data.splits import DEFAULT_IDENTITY, SplitRule, clusters_and_splits, protein_strata
from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.files import atomic_dir


def resplit_store(
    store: str | os.PathLike,
    rule: SplitRule = SplitRule(),
    threads: int | None = None,
    log: Callable[[str], None] = lambda s: None,
    keep_clusters: bool = False,
    keep_held_out: bool = False,
) -> dict:
    """Re-cluster (or, with keep_clusters, only re-deal) and re-split a store in place (atomically).

    keep_held_out (with keep_clusters): valid and test clusters stay where they are and only train clusters
    move, so no protein that was held out (and may have informed a choice on valid) changes split, and no
    protein a model was evaluated on moves into train. Returns the new split counts and method."""
    if keep_held_out and not keep_clusters:
        raise OneProtError("--keep-held-out needs --keep-clusters (a new clustering has no previous splits)",
                           "--keep-held-out")
    st = ProteinStore.open(store)
    path = st.path
    p = st.proteins.copy()
    manifest = dict(st.manifest)
    previous = manifest.get("split_method")
    kept = p["cluster"].tolist() if keep_clusters else None
    fixed = ({int(c): s for c, s in zip(p["cluster"], p["split"]) if s != "train"} if keep_held_out else None)
    clusters, p["split"], how = clusters_and_splits(p["sequence"].tolist(), rule, threads, log,
                                                    strata=protein_strata(p["family"], p["has_structure"]),
                                                    clusters=kept, fixed=fixed)
    if keep_held_out:
        how = {**how, "held_out_kept": True}
    if keep_clusters and previous:  # the clustering is the previous one: keep its description
        how = {**{k: v for k, v in previous.items() if k not in ("fractions", "seed", "stratified", "resplit",
                                                                  "previous_split_method")},
               **{k: v for k, v in how.items() if k not in ("method", "tool")}, "clusters_kept": True}
    p["cluster"] = np.asarray(clusters, dtype=np.int64)
    manifest["split_method"] = {**how, "resplit": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    if previous:
        manifest["previous_split_method"] = {k: v for k, v in previous.items() if k != "previous"}
    with atomic_dir(path) as tmp:
        for f in path.rglob("*"):
            rel = f.relative_to(path)
            if str(rel) in ("proteins.parquet", "manifest.json") or not f.is_file():
                continue
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            try:
                os.link(f, tmp / rel)  # unchanged arrays: no copy of the coordinates
            except OSError:
                shutil.copy2(f, tmp / rel)
        p.to_parquet(tmp / "proteins.parquet", index=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    counts = {s: int((p["split"] == s).sum()) for s in ("train", "valid", "test")}
    return {"path": str(path), "splits": counts, "clusters": int(len(set(clusters))), "split_method": manifest["split_method"]}


def _criteria(manifest: dict, identity: float | None, coverage: float | None, definition: str | None):
    sm = manifest.get("split_method", {}) or {}
    ident = float(identity if identity is not None else sm.get("identity") or DEFAULT_IDENTITY)
    if definition is None:
        definition = "alignment" if "alignment length" in str(sm.get("identity_definition", "")) else "shorter"
    if coverage is None:
        coverage = float(sm.get("coverage") or 0.0)
    return ident, float(coverage), definition


def check_leakage(
    store: str | os.PathLike,
    identity: float | None = None,
    coverage: float | None = None,
    definition: str | None = None,
    against: str = "train",
    threads: int | None = None,
    examples: int = 10,
) -> dict:
    """Test proteins with an `against`-split protein at >= identity (and coverage); all test proteins checked."""
    st = ProteinStore.open(store)
    ident, cov, definition = _criteria(st.manifest, identity, coverage, definition)
    if definition not in mmseqs.DEFINITIONS:
        raise OneProtError(f"unknown identity definition {definition!r}; choose {' or '.join(mmseqs.DEFINITIONS)}",
                           "--definition")
    p = st.proteins
    test = p[p["split"] == "test"]
    ref = p[p["split"] == against]
    if test.empty or ref.empty:
        raise OneProtError(f"store has {len(test)} test and {len(ref)} {against} proteins; nothing to compare",
                           str(st.path))
    t0 = time.time()
    if mmseqs.mmseqs_binary() is not None:
        # pre-cut at the criteria only where mmseqs' own identity is the one checked
        pre = (ident, cov) if definition == "alignment" else (0.0, 0.0)
        pairs = mmseqs.search(test["sequence"].tolist(), ref["sequence"].tolist(), threads=threads,
                              min_identity=pre[0], coverage=pre[1])
        hits = mmseqs.matching_pairs(pairs, ident, cov, definition)
        tool = f"mmseqs {mmseqs.mmseqs_version()} easy-search -s {mmseqs.SEARCH_SENSITIVITY}, max-seqs = all"
        top = hits.assign(ident=mmseqs.pair_identity(hits, definition)).sort_values(
            ["ident", "query"], ascending=[False, True], kind="stable").drop_duplicates("query")
        leak_q, leak_t = top["query"].to_numpy(np.int64), top["target"].to_numpy(np.int64)
        leak_i = top["ident"].to_numpy(np.float64)
    else:
        if cov > 0 or definition != "shorter":
            raise OneProtError("without the mmseqs binary only the own definition can be checked "
                               "(--definition shorter --coverage 0)", "mmseqs")
        leak_q, leak_t, leak_i = _own_check(test["sequence"].tolist(), ref["sequence"].tolist(), ident)
        tool = "own 5-mer candidates (50 per query) + parasail Smith-Waterman"
    order = np.argsort(-leak_i, kind="stable")[:examples]
    tid, rid = test["id"].tolist(), ref["id"].tolist()
    return {
        "store": str(st.path), "test_proteins": int(len(test)), f"{against}_proteins": int(len(ref)),
        "identity": ident, "coverage": cov, "definition": definition, "tool": tool,
        "leaking": int(len(leak_q)), "leaking_fraction": float(len(leak_q) / len(test)),
        "examples": [{"test": tid[int(leak_q[k])], against: rid[int(leak_t[k])], "identity": round(float(leak_i[k]), 3)}
                     for k in order],
        "seconds": round(time.time() - t0, 1),
    }


def _own_check(test: list[str], ref: list[str], ident: float):
    from engine.data.splits import _kmers, identity

    index: dict[int, list[int]] = {}
    for i, s in enumerate(ref):
        for k in _kmers(s).tolist():
            index.setdefault(k, []).append(i)
    q_out, t_out, i_out = [], [], []
    for qi, s in enumerate(test):
        lists = [index[k] for k in _kmers(s).tolist() if k in index]
        if not lists:
            continue
        hits = np.bincount(np.concatenate([np.asarray(x) for x in lists]), minlength=len(ref))
        cand = np.flatnonzero(hits >= 3)
        cand = cand[np.argsort(-hits[cand], kind="stable")][:50]
        scored = [(identity(s, ref[c]), c) for c in cand.tolist()]
        if scored:
            best, c = max(scored)
            if best >= ident:
                q_out.append(qi), t_out.append(c), i_out.append(best)
    return np.asarray(q_out, dtype=np.int64), np.asarray(t_out, dtype=np.int64), np.asarray(i_out, dtype=np.float64)
