"""The map's point table: UMAP coordinates joined with store labels, ready for plotting (no UI here)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pandas as pd

from engine.errors import OneProtError

HOVER_TEXT_CHARS = 160
MAX_CATEGORIES = 20  # beyond this, rare labels are pooled into "other" so colours stay distinguishable
_TABLES: dict[tuple, pd.DataFrame] = {}
_TABLES_LOCK = threading.Lock()
_KEY_LOCKS: dict[tuple, threading.Lock] = {}
_CATEGORIES: dict[tuple, list[str]] = {}


def label_table(store) -> pd.DataFrame:
    """One row per protein: id, name, short text and every colour-by label (ligand from its first pocket);
    computed once per store (the map and the store-wide colour order both read it)."""
    key = ("labels", str(store.path), len(store), id(store))
    with _TABLES_LOCK:
        if key in _CATEGORIES:
            return _CATEGORIES[key]
    out = _label_table(store)
    with _TABLES_LOCK:
        _CATEGORIES[key] = out
    return out


def _label_table(store) -> pd.DataFrame:
    p = store.proteins
    text = p["text"].fillna("").astype(str)
    short = text.str.slice(0, HOVER_TEXT_CHARS).where(text.str.len() <= HOVER_TEXT_CHARS,
                                                     text.str.slice(0, HOVER_TEXT_CHARS - 1) + "…")
    out = pd.DataFrame({
        "id": p["id"].astype(str), "name": p["name"].fillna("").astype(str).str.slice(0, 80), "text": short,
    })
    for col in ("family", "ec", "organism", "source", "split"):
        out[col] = p[col].fillna("").astype(str).replace("", "unlabelled")
    # plain Python over the column: pandas' .str.split costs ~0.2 s per 21k rows, on every cold start's first page
    out["source"] = [s.split(":", 1)[0] for s in out["source"].tolist()]  # "theseus:ldh/1abc.pdb" -> "theseus"
    out["ec"] = [".".join(e.split(".")[:2]) for e in out["ec"].tolist()]  # EC class.subclass: few enough colours
    out["ligand"] = _ligands(store, p)
    return out


def _ligands(store, p: pd.DataFrame) -> list[str]:
    """Ligand code of each protein's first pocket ("none" without one), from one read of the pocket table.

    Reads the store's documented pockets.parquet layout in one go: a per-protein `store.pockets(id)`
    filters the whole table each time, which costs seconds on a store with thousands of pockets.
    """
    f = Path(store.path) / "pockets.parquet"
    first: dict[str, str] = {}
    if f.is_file():
        t = pd.read_parquet(f, columns=["protein_id", "pocket_index", "ligand_code"])
        t = t.sort_values("pocket_index").drop_duplicates("protein_id")
        first = {pid: code for pid, code in zip(t["protein_id"], t["ligand_code"].fillna("")) if code}
    return [first.get(pid, "none") for pid in p["id"].tolist()]


def point_table(resources, modalities: list[str], version: int = 0, compute: bool = True,
                write_to: Path | None = None, close_gap: bool = True) -> pd.DataFrame | None:
    """x, y, modality, labels for each (protein, modality) point; cached per resources/modalities/version.

    With compute=False, returns None instead of running UMAP when the projection is not cached yet.
    `write_to` stores a computed map there instead of the user cache (explorer.prepare, at build time).
    `close_gap` centres each modality before a joint projection (engine.projection.centre_modalities).
    """
    mods = [m for m in modalities if m in resources.modalities()]
    if not mods:
        raise OneProtError(f"the embeddings hold none of {modalities}; have: {', '.join(resources.modalities())}",
                           "map modalities")
    close_gap = bool(close_gap) and len(mods) > 1  # one modality has no gap to close
    key = (id(resources), tuple(mods), version, close_gap)
    with _TABLES_LOCK:
        if key in _TABLES:
            return _TABLES[key]
        key_lock = _KEY_LOCKS.setdefault(key, threading.Lock())
    with key_lock:  # a second session asking for the same map waits for the first projection
        with _TABLES_LOCK:
            if key in _TABLES:
                return _TABLES[key]
        table = _build_point_table(resources, mods, compute, write_to, close_gap)
        if table is not None:
            with _TABLES_LOCK:
                _TABLES[key] = table
        return table


def _build_point_table(resources, mods: list[str], compute: bool = True, write_to: Path | None = None,
                       close_gap: bool = False) -> pd.DataFrame | None:
    from engine.projection import cached_projection, centre_modalities, project

    emb = resources.embeddings
    vectors, ids = {m: emb.vectors(m) for m in mods}, {m: list(emb.ids(m)) for m in mods}
    if close_gap:
        vectors = centre_modalities(vectors)
    # maps shipped with the embeddings (explorer.prepare, at build time) are read; new ones go to the user cache
    shipped = shipped_projections(emb.path)
    proj = cached_projection(vectors, ids, cache_dir=shipped) if shipped is not None else None
    if proj is None:
        how = project if compute else cached_projection
        proj = how(vectors, ids, cache_dir=write_to or projection_cache(emb.path))
    if proj is None:
        return None
    pts = pd.DataFrame({"x": proj.coords[:, 0], "y": proj.coords[:, 1], "id": proj.ids, "modality": proj.modalities})
    labels = label_table(resources.store)
    table = pts.merge(labels, on="id", how="left")
    for col in labels.columns:
        if col != "id":
            table[col] = table[col].fillna("unlabelled")
    table["point"] = np.arange(len(table))
    return table


def shipped_projections(embeddings_path: Path) -> Path | None:
    """The embeddings folder when it ships maps (`projections/`, made by explorer.prepare), else None."""
    return Path(embeddings_path) if (Path(embeddings_path) / "projections").is_dir() else None


def projection_cache(embeddings_path: Path) -> Path:
    """Where the app writes maps it computes: the per-user cache, never the embeddings (checkout) folder."""
    from engine.paths import CACHE_DIR

    return CACHE_DIR


def store_categories(store, color_by: str) -> list[str]:
    """The colour categories of a label over the WHOLE store, most frequent first (at most MAX_CATEGORIES - 1).

    Every view colours by this one list, so a label value has one colour everywhere (a map of sequences,
    one of structures, the live map, the exported PNG), not a colour that depends on what the view shows.
    """
    key = (str(store.path), len(store), color_by)
    with _TABLES_LOCK:
        if key in _CATEGORIES:
            return _CATEGORIES[key]
    if color_by == "modality":
        from engine.modality import Modality

        cats = [m.value for m in Modality]
    else:
        col = label_table(store)[color_by]
        cats = col[col != "unlabelled"].value_counts().index[: MAX_CATEGORIES - 1].tolist()
    with _TABLES_LOCK:
        _CATEGORIES[key] = cats
    return cats


def colour_column(table: pd.DataFrame, color_by: str, categories: list[str] | None = None) -> pd.Series:
    """The label to colour by, values outside `categories` (default: this table's most frequent) pooled as 'other'."""
    col = table[color_by].astype(str)
    top = categories if categories is not None else col[col != "unlabelled"].value_counts().index[: MAX_CATEGORIES - 1]
    return col.where(col.isin(top) | (col == "unlabelled"), "other")


def find_ids(table: pd.DataFrame, text: str, limit: int = 50) -> list[str]:
    """Protein ids whose id, name or family label contains `text` (case-insensitive); exact id matches first."""
    t = (text or "").strip().lower()
    if not t:
        return []
    ids = table["id"].str.lower()
    exact = table["id"][ids == t]
    hit = ids.str.contains(t, regex=False) | table["name"].str.lower().str.contains(t, regex=False)
    if "family" in table.columns:
        hit |= table["family"].astype(str).str.lower().str.contains(t, regex=False) & (table["family"] != "unlabelled")
    contains = table["id"][hit]
    out = list(dict.fromkeys(exact.tolist() + contains.tolist()))
    return out[:limit]
