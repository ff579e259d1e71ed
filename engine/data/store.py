"""The dataset store: proteins with any subset of modalities, labels and splits, on disk.

Layout of a store folder (columnar, no pickles):
    manifest.json      format version, counts, how splits were made, what built it
    proteins.parquet   one row per protein: id, name, sequence, text, structure_tokens, family, ec,
                       organism, source, split, cluster, has_structure, n_pockets, length
                       (+ plddt_mean, NaN for proteins without confidence, in stores built since pLDDT is read)
    structures/        memory-mapped .npy arrays (engine.data.store_arrays); stores written before it hold
    structures.npz     ids, offsets (n+1), coords (R, 4, 3) float32 [N, CA, C, O], residue_numbers (R);
                       stores built since side chains are read also hold side_chains (R, 6, 3) float32 in
                       engine.modality.SIDE_CHAIN_SLOTS order (NaN = absent) and has_side_chains (n,) bool;
                       stores with predicted models hold plddt (R,) float32 (NaN = none, engine.data.plddt)
    pockets.parquet    protein_id, pocket_index, residues (list of chain indices), ligand_code,
                       ligand_name, source, score, center (3), ligand_coords (flat), ligand_elements

Writes are atomic: everything goes to a sibling temp folder that is renamed into place, so a
killed build leaves the old store or none, never a half one.
"""

from __future__ import annotations

import contextlib
import copy
import json
import os
import threading
import time
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.data.store_arrays import ARRAYS_DIR, ArrayWriter, open_arrays
from engine.errors import OneProtError
from engine.files import atomic_dir
from engine.modality import Modality, Pocket, ProteinRecord, parse_modality
from engine.paths import resolve_store

if TYPE_CHECKING:
    import pandas as pd

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
LABEL_COLUMNS = ("family", "ec", "organism", "source", "split")
PROTEIN_COLUMNS = (
    "id", "name", "sequence", "text", "structure_tokens", "family", "ec", "organism", "source",
    "split", "cluster", "has_structure", "n_pockets", "length",
)


class ProteinStore:
    """Read access to a store folder. `ProteinStore.open("demo")` opens the bundled demo."""

    def __init__(self, path: Path, manifest: dict, ids: list[str], has_structure: np.ndarray):
        """Opened with the ids and the has_structure column only (pyarrow): `proteins`, the whole table as a
        pandas frame, is read on first use. Opening then costs no pandas import (~0.3 s of a 2-core cold
        start of the explorer, whose first page needs only the ids and which proteins have a structure)."""
        self.path = path
        self.manifest = manifest
        self._ids = ids  # row order; ids are unique
        self._row = {pid: i for i, pid in enumerate(ids)}
        self._has_structure = has_structure
        self._proteins: pd.DataFrame | None = None
        self._frame_lock = threading.Lock()
        self._structures: dict | None = None
        self._pockets: pd.DataFrame | None = None

    # ---- opening -------------------------------------------------------------------------
    @classmethod
    def open(cls, name_or_path: str | os.PathLike) -> "ProteinStore":
        path = resolve_store(name_or_path)
        manifest_path = path / "manifest.json"
        if not manifest_path.is_file():
            raise OneProtError("not a OneProt store (manifest.json missing)", str(path))
        try:
            manifest = json.loads(manifest_path.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OneProtError(f"corrupted manifest: {exc}", str(manifest_path)) from None
        if manifest.get("format_version") != FORMAT_VERSION:
            raise OneProtError(
                f"store format {manifest.get('format_version')!r}, this version reads {FORMAT_VERSION}",
                str(manifest_path),
            )
        table_path = path / "proteins.parquet"
        columns, n_rows, index = _read_index(table_path, ["id", "has_structure"])
        missing = [c for c in PROTEIN_COLUMNS if c not in columns]
        if missing:
            raise OneProtError(f"columns missing: {missing}", str(table_path))
        if manifest.get("proteins") != n_rows:
            raise OneProtError(
                f"manifest says {manifest.get('proteins')} proteins, table has {n_rows} (truncated store?)",
                str(path),
            )
        return cls(path, manifest, index["id"], np.array(index["has_structure"], dtype=bool))

    @property
    def proteins(self) -> pd.DataFrame:
        """One row per protein, in row order (the `id` column is unique); read on first use."""
        if self._proteins is None:
            with self._frame_lock:  # the explorer's threads may ask at once: read it once
                if self._proteins is None:
                    frame = _read_parquet(self.path / "proteins.parquet")
                    if frame["id"].tolist() != self._ids:
                        raise OneProtError("the protein table changed on disk since the store was opened",
                                           str(self.path / "proteins.parquet"))
                    self._proteins = frame
        return self._proteins

    # ---- look-ups ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self._ids)

    def __contains__(self, protein_id: str) -> bool:
        return protein_id in self._row

    def row(self, protein_id: str) -> pd.Series:
        try:
            return self.proteins.iloc[self._row[protein_id]]
        except KeyError:
            raise OneProtError(f"no protein with id {protein_id!r} in {self.path}", "id") from None

    def modality_mask(self, modality: str | Modality) -> np.ndarray:
        """Boolean mask over rows: which proteins have this modality."""
        m = parse_modality(modality)
        if m is Modality.SEQUENCE:
            return np.ones(len(self), dtype=bool)
        if m is Modality.STRUCTURE:
            return self._has_structure.copy()
        p = self.proteins
        if m is Modality.TEXT:
            return p["text"].fillna("").str.strip().str.len().to_numpy() > 0
        if m is Modality.STRUCTURE_TOKENS:
            return p["structure_tokens"].fillna("").str.len().to_numpy() > 0
        return (p["n_pockets"].to_numpy() > 0) & self._has_structure

    def ids(self, split: str | None = None, modality: str | Modality | None = None,
            min_plddt: float | None = None) -> list[str]:
        """Protein ids, optionally restricted to a split, to proteins having a modality, and to proteins whose
        mean pLDDT is >= min_plddt (proteins without pLDDT, e.g. experimental structures, are kept)."""
        mask = np.ones(len(self), dtype=bool)
        if min_plddt is not None and "plddt_mean" in self.proteins.columns:
            mean = self.proteins["plddt_mean"].to_numpy(dtype=np.float64)
            mask &= ~(mean < min_plddt)  # NaN (no pLDDT) compares False: kept
        if split is not None:
            if split not in SPLITS:
                raise OneProtError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}", "split")
            mask &= (self.proteins["split"] == split).to_numpy()
        if modality is not None:
            mask &= self.modality_mask(modality)
        return [pid for pid, keep in zip(self._ids, mask.tolist()) if keep]

    def coords(self, protein_id: str) -> np.ndarray | None:
        """(L, 4, 3) float32 backbone coordinates, or None for a sequence-only protein."""
        s = self._load_structures()
        i = s["index"].get(protein_id)
        if i is None:
            return None
        return np.array(s["coords"][s["offsets"][i] : s["offsets"][i + 1]], dtype=np.float32)  # a copy: arrays may be memory-mapped

    def side_chains(self, protein_id: str) -> np.ndarray | None:
        """(L, 6, 3) float32 side-chain atoms (SIDE_CHAIN_SLOTS), or None if the store did not keep them."""
        s = self._load_structures()
        i = s["index"].get(protein_id)
        if i is None or s.get("side_chains") is None or not s["has_side_chains"][i]:
            return None
        return np.array(s["side_chains"][s["offsets"][i] : s["offsets"][i + 1]], dtype=np.float32)

    def plddt(self, protein_id: str) -> np.ndarray | None:
        """(L,) float32 per-residue pLDDT of a predicted model, or None."""
        s = self._load_structures()
        i = s["index"].get(protein_id)
        if i is None or s.get("plddt") is None:
            return None
        v = np.array(s["plddt"][s["offsets"][i] : s["offsets"][i + 1]], dtype=np.float32)
        return v if np.isfinite(v).any() else None

    def residue_numbers(self, protein_id: str) -> list[str] | None:
        s = self._load_structures()
        i = s["index"].get(protein_id)
        if i is None:
            return None
        return [str(x) for x in s["residue_numbers"][s["offsets"][i] : s["offsets"][i + 1]]]

    def pockets(self, protein_id: str) -> list[Pocket]:
        import pandas as pd  # loaded with the pockets table already

        table = self._load_pockets()
        rows = table[table["protein_id"] == protein_id].sort_values("pocket_index")
        out = []
        for r in rows.itertuples(index=False):
            lig = np.asarray(r.ligand_coords, dtype=np.float32).reshape(-1, 3) if len(r.ligand_coords) else None
            out.append(
                Pocket(
                    residues=[int(x) for x in r.residues],
                    ligand_code=r.ligand_code or "",
                    ligand_name=r.ligand_name or "",
                    source=r.source or "",
                    center=np.asarray(r.center, dtype=np.float32) if r.center is not None else None,
                    ligand_coords=lig,
                    ligand_elements=list(r.ligand_elements) if r.ligand_elements is not None else [],
                    score=None if r.score is None or pd.isna(r.score) else float(r.score),
                )
            )
        return out

    def record(self, protein_id: str) -> ProteinRecord:
        """Everything the store holds about one protein."""
        r = self.row(protein_id)
        return ProteinRecord(
            id=r["id"], sequence=r["sequence"], name=r["name"] or "", text=r["text"] or "",
            coords=self.coords(protein_id), residue_numbers=self.residue_numbers(protein_id),
            structure_tokens=r["structure_tokens"] or None, pockets=self.pockets(protein_id),
            family=missing_to_none(r["family"]), ec=missing_to_none(r["ec"]), organism=missing_to_none(r["organism"]),
            source=r["source"] or "", extra={"split": r["split"], "cluster": int(r["cluster"])},
        )

    def stats(self) -> dict:
        """The summary `oneprot data stats` prints (computed once per opened store: a store is read-only)."""
        if getattr(self, "_stats", None) is None:
            self._stats = self._compute_stats()
        return copy.deepcopy(self._stats)

    def _compute_stats(self) -> dict:
        p = self.proteins
        return {
            "path": str(self.path),
            "proteins": int(len(p)),
            "modalities": {m.value: int(self.modality_mask(m).sum()) for m in Modality},
            "pockets": int(p["n_pockets"].sum()),
            "family_labelled": int(p["family"].notna().sum()),
            "ec_labelled": int(p["ec"].notna().sum()),
            "families": int(p["family"].nunique()),
            "splits": {s: int((p["split"] == s).sum()) for s in SPLITS},
            "sources": dict(Counter(str(s).split(":", 1)[0] for s in p["source"].tolist())
                            .most_common()),
            "split_method": self.manifest.get("split_method", {}),
        }

    # ---- lazy loads ----------------------------------------------------------------------
    def _load_structures(self) -> dict:
        if self._structures is None and (self.path / ARRAYS_DIR).is_dir():
            self._structures = open_arrays(self.path)  # memory-mapped: only the rows asked for are read
        if self._structures is None:
            f = self.path / "structures.npz"
            if not f.exists():
                self._structures = {"index": {}, "coords": None, "offsets": None, "residue_numbers": None}
            else:
                try:
                    with np.load(f, allow_pickle=False) as z:
                        ids = z["ids"].astype(str).tolist()
                        self._structures = {
                            "index": {pid: i for i, pid in enumerate(ids)},
                            "coords": z["coords"].astype(np.float32),
                            "offsets": z["offsets"].astype(np.int64),
                            "residue_numbers": z["residue_numbers"].astype(str),
                            "side_chains": z["side_chains"].astype(np.float32) if "side_chains" in z.files else None,
                            "has_side_chains": z["has_side_chains"] if "has_side_chains" in z.files else None,
                            "plddt": z["plddt"].astype(np.float32) if "plddt" in z.files else None,
                        }
                except Exception as exc:  # zip/npz corruption surfaces as many exception types
                    raise OneProtError(f"corrupted structure arrays: {exc}", str(f)) from None
        return self._structures

    def _load_pockets(self) -> pd.DataFrame:
        if self._pockets is None:
            f = self.path / "pockets.parquet"
            if f.exists():
                self._pockets = _read_parquet(f)
            else:
                import pandas as pd

                self._pockets = pd.DataFrame(columns=_POCKET_COLUMNS)
        return self._pockets


_POCKET_COLUMNS = (
    "protein_id", "pocket_index", "residues", "ligand_code", "ligand_name", "source", "score",
    "center", "ligand_coords", "ligand_elements",
)


def missing_to_none(x):
    """A store field as read from a table: None for None, NaN or an empty string, else the value."""
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x == "" else x


@contextlib.contextmanager
def _reading(path: Path) -> Iterator[None]:
    """A missing, truncated or garbled store table becomes a OneProtError naming the file."""
    if not path.is_file():
        raise OneProtError("file missing from store", str(path))
    try:
        yield
    except Exception as exc:  # pyarrow raises several types for truncated/garbled files
        raise OneProtError(f"corrupted or truncated table: {exc}", str(path)) from None


def _read_parquet(path: Path) -> pd.DataFrame:
    import pandas as pd

    with _reading(path):
        return pd.read_parquet(path)


def _read_index(path: Path, columns: list[str]) -> tuple[list[str], int, dict[str, list]]:
    """A parquet file's column names, its row count and the named columns as lists, with pyarrow alone
    (pyarrow's dataset reader and its array-to-NumPy conversion import pandas: ParquetFile and lists do not)."""
    import pyarrow.parquet as pq

    with _reading(path):
        table = pq.ParquetFile(path)
        names = list(table.schema_arrow.names)
        read = table.read(columns=[c for c in columns if c in names])
        return names, table.metadata.num_rows, {c: read.column(c).to_pylist() for c in read.column_names}


# ---- writing -----------------------------------------------------------------------------
@dataclass
class ArraySizes:
    """What a store's per-residue arrays must be sized to up front (ArrayWriter pre-sizes its files)."""

    structures: int = 0
    residues: int = 0
    id_width: int = 1
    resnum_width: int = 1
    side_chains: bool = False
    plddt: bool = False  # a structure with finite pLDDT: plddt.npy
    plddt_column: bool = False  # any protein with finite pLDDT: the plddt_mean column

    def add(self, r: ProteinRecord) -> None:
        """Count one record; its coordinates and pLDDT must match its sequence length."""
        conf = _plddt_of(r)
        finite = conf is not None and bool(np.isfinite(conf).any())
        self.plddt_column |= finite
        if r.coords is None:
            return
        shape = np.shape(r.coords)
        if shape != (len(r.sequence), 4, 3):
            raise OneProtError(f"coords shape {shape} does not match sequence length {len(r.sequence)}", r.id)
        self.structures, self.residues = self.structures + 1, self.residues + shape[0]
        self.id_width = max(self.id_width, len(r.id))
        self.resnum_width = max(self.resnum_width,
                                max((len(str(x)) for x in r.residue_numbers or [str(shape[0])]), default=1))
        self.side_chains |= (r.extra or {}).get("side_chains") is not None
        self.plddt |= finite


def _plddt_of(r: ProteinRecord) -> np.ndarray | None:
    conf = r.extra.get("plddt") if r.extra else None
    conf = None if conf is None else np.asarray(conf, dtype=np.float32)
    if conf is not None and conf.shape != (len(r.sequence),):
        raise OneProtError(f"pLDDT has {conf.shape} values for {len(r.sequence)} residues", r.id)
    return conf


def _text(x) -> str | None:
    # records rebuilt from a table may carry NaN for a missing text field; the table keeps it as null
    return None if x is None or (isinstance(x, float) and np.isnan(x)) else str(x)


def _schemas(plddt_column: bool):
    import pyarrow as pa

    s, i64, f64 = pa.string(), pa.int64(), pa.float64()
    proteins = [(c, s) for c in PROTEIN_COLUMNS[:10]] + [
        ("cluster", i64), ("has_structure", pa.bool_()), ("n_pockets", i64), ("length", i64)]
    proteins += [("plddt_mean", pa.float32())] if plddt_column else []
    pockets = [("protein_id", s), ("pocket_index", i64), ("residues", pa.list_(i64)), ("ligand_code", s),
               ("ligand_name", s), ("source", s), ("score", f64), ("center", pa.list_(f64)),
               ("ligand_coords", pa.list_(f64)), ("ligand_elements", pa.list_(s))]
    return pa.schema(proteins), pa.schema(pockets)


class StoreWriter:
    """Writes proteins into a store folder chunk by chunk: each chunk becomes a row group of the tables and
    fills its slots of the pre-sized memory-mapped arrays, so memory holds one chunk, not the store."""

    def __init__(self, folder: Path, sizes: ArraySizes, splits: dict[str, str], clusters: dict[str, int]):
        import pyarrow.parquet as pq

        self.sizes, self.splits, self.clusters = sizes, splits, clusters
        self.schemas = _schemas(sizes.plddt_column)
        self.tables = [pq.ParquetWriter(folder / name, schema)
                       for name, schema in zip(("proteins.parquet", "pockets.parquet"), self.schemas)]
        self.arrays = ArrayWriter(folder / ARRAYS_DIR, sizes.structures, sizes.residues, sizes.id_width,
                                  sizes.resnum_width, sizes.side_chains, sizes.plddt) if sizes.structures else None
        self.seen: set[str] = set()

    def add(self, records: list[ProteinRecord]) -> None:
        """Write one chunk of records (ids unique across all chunks)."""
        import pyarrow as pa

        rows, pocket_rows = [], []
        for r in records:
            if r.id in self.seen:
                raise OneProtError(f"duplicate protein ids, e.g. {[r.id]}", "id")
            self.seen.add(r.id)
            has_structure = r.coords is not None
            conf = _plddt_of(r)
            for k, p in enumerate(r.pockets if has_structure else []):
                pocket_rows.append({
                    "protein_id": r.id, "pocket_index": k, "residues": [int(x) for x in p.residues],
                    "ligand_code": _text(p.ligand_code), "ligand_name": _text(p.ligand_name), "source": _text(p.source),
                    "score": p.score,
                    "center": None if p.center is None else [float(x) for x in np.asarray(p.center).ravel()],
                    "ligand_coords": [] if p.ligand_coords is None else [float(x) for x in np.asarray(p.ligand_coords).ravel()],
                    "ligand_elements": list(p.ligand_elements),
                })
            row = {
                "id": r.id, "name": _text(r.name or ""), "sequence": r.sequence, "text": _text(r.text or ""),
                "structure_tokens": _text(r.structure_tokens or None), "family": _text(r.family), "ec": _text(r.ec),
                "organism": _text(r.organism), "source": _text(r.source), "split": self.splits.get(r.id, "train"),
                "cluster": int(self.clusters.get(r.id, -1)), "has_structure": has_structure,
                "n_pockets": len(r.pockets) if has_structure else 0, "length": len(r.sequence),
            }
            if self.sizes.plddt_column:  # only stores with predicted models get the column
                row["plddt_mean"] = float(np.nanmean(conf)) if conf is not None and np.isfinite(conf).any() else None
            rows.append(row)
            if has_structure:
                if self.arrays is None:
                    raise OneProtError("structure not counted in the store's array sizes", r.id)
                ex = r.extra or {}
                self.arrays.add(r.id, np.asarray(r.coords, dtype=np.float32),
                                r.residue_numbers or [str(i + 1) for i in range(len(r.sequence))],
                                ex.get("side_chains"), conf)
        for writer, schema, table in zip(self.tables, self.schemas, (rows, pocket_rows)):
            if table:
                writer.write_table(pa.Table.from_pylist(table, schema=schema))

    def close(self) -> int:
        """Finish the tables and arrays; the number of proteins written."""
        for w in self.tables:
            w.close()
        if self.arrays is not None:
            self.arrays.close()
        return len(self.seen)


@contextlib.contextmanager
def store_writer(path: str | os.PathLike, sizes: ArraySizes, splits: dict[str, str], clusters: dict[str, int],
                 manifest_extra: dict | None = None, allow_empty: bool = False) -> Iterator[StoreWriter]:
    """A StoreWriter on a temp folder that replaces `path` whole when the block ends without error."""
    path = Path(path)
    with atomic_dir(path) as tmp:
        w = StoreWriter(tmp, sizes, splits, clusters)
        yield w
        n = w.close()
        if not n and not allow_empty:
            raise OneProtError("no usable proteins to write", str(path))
        manifest = {
            "format_version": FORMAT_VERSION,
            "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "proteins": n,
            **(manifest_extra or {}),
        }
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))


def write_store(
    records: Iterable[ProteinRecord],
    path: str | os.PathLike,
    splits: dict[str, str],
    clusters: dict[str, int],
    manifest_extra: dict | None = None,
    allow_empty: bool = False,
) -> Path:
    """Write records to `path` atomically. `splits`/`clusters` map protein id -> split / cluster.

    allow_empty: write a store of 0 proteins (a shard of a job array whose files gave none).
    Records already in memory; engine.data.build streams from the parse cache with store_writer instead.
    """
    path = Path(path)
    records = list(records)
    if not records and not allow_empty:
        raise OneProtError("no usable proteins to write", str(path))
    sizes = ArraySizes()
    for r in records:
        sizes.add(r)
    with store_writer(path, sizes, splits, clusters, manifest_extra, allow_empty) as w:
        w.add(records)
    return path
