"""The map's point table: UMAP coordinates joined with store labels, ready for plotting (no UI here).

pandas is imported where a table is built: a page drawn from its first-page file (`first_page`, written
by explorer.prepare beside the shipped maps) needs neither pandas nor the store, which saves a cold
start about half a second on 2 cores.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import threading
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import OneProtError

if TYPE_CHECKING:
    import pandas as pd

HOVER_TEXT_CHARS = 160
MAX_CATEGORIES = 20  # beyond this, rare labels are pooled into "other" so colours stay distinguishable
STORE_LABELS = ("family", "ec", "organism", "source", "split")  # engine.data.store.LABEL_COLUMNS (no pandas here)
LABELS = (*STORE_LABELS, "ligand")  # the labels a map point carries (ligand: its first pocket's)
FIRST_PAGE = "first_page.json.gz"  # in <embeddings>/projections/, beside the shipped maps
FIRST_PAGE_FORMAT = 1
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
    import pandas as pd

    p = store.proteins
    text = p["text"].fillna("").astype(str)
    short = text.str.slice(0, HOVER_TEXT_CHARS).where(text.str.len() <= HOVER_TEXT_CHARS,
                                                     text.str.slice(0, HOVER_TEXT_CHARS - 1) + "…")
    out = pd.DataFrame({
        "id": p["id"].astype(str), "name": p["name"].fillna("").astype(str).str.slice(0, 80), "text": short,
    })
    for col in STORE_LABELS:
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
        import pandas as pd

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
    import pandas as pd

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


def pooled_labels(values: list[str], categories: list[str] | None = None) -> list[str]:
    """Label values, those outside `categories` (default: the most frequent of `values`) pooled as 'other'."""
    if categories is None:
        counts = Counter(v for v in values if v != "unlabelled")
        categories = [c for c, _ in counts.most_common(MAX_CATEGORIES - 1)]
    keep = set(categories) | {"unlabelled"}
    return [v if v in keep else "other" for v in values]


def find_ids(table: pd.DataFrame, text: str) -> list[str]:
    """Every protein id whose id, name or family label contains `text` (case-insensitive); exact id matches first."""
    t = (text or "").strip().lower()
    if not t:
        return []
    ids = table["id"].str.lower()
    exact = table["id"][ids == t]
    hit = ids.str.contains(t, regex=False) | table["name"].str.lower().str.contains(t, regex=False)
    if "family" in table.columns:
        hit |= table["family"].astype(str).str.lower().str.contains(t, regex=False) & (table["family"] != "unlabelled")
    contains = table["id"][hit]
    return list(dict.fromkeys(exact.tolist() + contains.tolist()))


# ---- the first page ------------------------------------------------------------------------------------
def coverage_counts(table: pd.DataFrame, resources) -> dict[str, int]:
    """What a map shows against what exists: points, proteins on it, proteins in the store, proteins embedded."""
    emb = resources.embeddings
    return {"points": len(table), "proteins": int(table["id"].nunique()), "store": len(resources.store),
            "embedded": len(set().union(*(emb.ids(m) for m in emb.modalities)))}


def first_page_key(store_path: Path, embeddings_path: Path) -> str:
    """Fingerprint of the store and embeddings a first-page file was made from (their manifests and table size)."""
    h = hashlib.sha256()
    for f in (Path(store_path) / "manifest.json", Path(embeddings_path) / "manifest.json"):
        h.update(f.read_bytes() if f.is_file() else b"-")
    table = Path(store_path) / "proteins.parquet"
    h.update(str(table.stat().st_size if table.is_file() else -1).encode())
    return h.hexdigest()


def write_first_page(resources, mods: list[str], close_gap: bool = True, max_points: int | None = None) -> Path | None:
    """Save what the first page draws of this map (points, hover texts, labels, the store's colour order per
    label, coverage counts) as `<embeddings>/projections/first_page.json.gz`: a page opened before the store
    draws from it (explorer.prepare writes it beside the shipped maps). A map of more than `max_points` is
    rasterized from the point table instead: no file then (an older one is removed), and None is returned."""
    from engine.files import atomic_file
    from explorer.backend import LABEL_CHOICES

    mods = [m for m in mods if m in resources.modalities()]  # as point_table keeps them
    table = point_table(resources, mods, 0, close_gap=close_gap)
    out = resources.embeddings.path / "projections" / FIRST_PAGE
    if max_points is not None and len(table) > max_points:
        out.unlink(missing_ok=True)
        return None
    columns = {c: table[c].astype(str).tolist() for c in ("id", "name", "modality", "text", *LABELS)}
    columns.update(x=table["x"].astype(float).tolist(), y=table["y"].astype(float).tolist())
    page = {"format": FIRST_PAGE_FORMAT, "key": first_page_key(resources.store.path, resources.embeddings.path),
            "modalities": mods, "close_gap": bool(close_gap) and len(mods) > 1, "columns": columns,
            "categories": {label: store_categories(resources.store, label) for label in LABEL_CHOICES},
            "coverage": coverage_counts(table, resources)}
    out.parent.mkdir(parents=True, exist_ok=True)
    data = json.dumps(page, separators=(",", ":")).encode()
    with atomic_file(out) as tmp, open(tmp, "wb") as raw:
        with gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as fh:  # the same bytes for the same page
            fh.write(data)
    return out


def first_page(store_path: Path, embeddings_path: Path, mods: list[str], close_gap: bool) -> dict | None:
    """The first-page file of these embeddings when it was made from this store and these embeddings for this
    map; None otherwise (absent, stale, another map, unreadable: the page is then drawn from the store)."""
    f = Path(embeddings_path) / "projections" / FIRST_PAGE
    if not f.is_file():
        return None
    try:
        with gzip.open(f, "rt", encoding="utf-8") as fh:
            page = json.load(fh)
        fresh = (page.get("format") == FIRST_PAGE_FORMAT and page.get("key") == first_page_key(store_path, embeddings_path)
                 and page.get("modalities") == list(mods) and page.get("close_gap") == (bool(close_gap) and len(mods) > 1))
        if not fresh:
            return None
        cols = page["columns"]
        cols["x"], cols["y"] = np.asarray(cols["x"], dtype=float), np.asarray(cols["y"], dtype=float)
        n = len(cols["x"])
        if any(len(cols[c]) != n for c in ("y", "id", "name", "modality", "text", *LABELS)):
            return None
        return page
    except (OSError, EOFError, ValueError, KeyError, TypeError, AttributeError) as exc:  # damaged: the store path still works
        print(f"explorer: first-page file ignored ({f}): {exc}")
        return None
