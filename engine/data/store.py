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

import json
import os
import time
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.store_arrays import ARRAYS_DIR, ArrayWriter, open_arrays
from engine.errors import OneProtError
from engine.files import atomic_dir
from engine.modality import Modality, Pocket, ProteinRecord, parse_modality
from engine.paths import resolve_store

FORMAT_VERSION = 1
SPLITS = ("train", "valid", "test")
LABEL_COLUMNS = ("family", "ec", "organism", "source", "split")
PROTEIN_COLUMNS = (
    "id", "name", "sequence", "text", "structure_tokens", "family", "ec", "organism", "source",
    "split", "cluster", "has_structure", "n_pockets", "length",
)


class ProteinStore:
    """Read access to a store folder. `ProteinStore.open("demo")` opens the bundled demo."""

    def __init__(self, path: Path, manifest: dict, proteins: pd.DataFrame):
        self.path = path
        self.manifest = manifest
        self.proteins = proteins  # indexed by position; `id` column is unique
        self._row = {pid: i for i, pid in enumerate(proteins["id"].tolist())}
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
        proteins = _read_parquet(path / "proteins.parquet")
        missing = [c for c in PROTEIN_COLUMNS if c not in proteins.columns]
        if missing:
            raise OneProtError(f"columns missing: {missing}", str(path / "proteins.parquet"))
        if manifest.get("proteins") != len(proteins):
            raise OneProtError(
                f"manifest says {manifest.get('proteins')} proteins, table has {len(proteins)} (truncated store?)",
                str(path),
            )
        return cls(path, manifest, proteins)

    # ---- look-ups ------------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.proteins)

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
        p = self.proteins
        if m is Modality.SEQUENCE:
            return np.ones(len(p), dtype=bool)
        if m is Modality.TEXT:
            return p["text"].fillna("").str.strip().str.len().to_numpy() > 0
        if m is Modality.STRUCTURE_TOKENS:
            return p["structure_tokens"].fillna("").str.len().to_numpy() > 0
        if m is Modality.STRUCTURE:
            return p["has_structure"].to_numpy(dtype=bool)
        return (p["n_pockets"].to_numpy() > 0) & p["has_structure"].to_numpy(dtype=bool)

    def ids(self, split: str | None = None, modality: str | Modality | None = None,
            min_plddt: float | None = None) -> list[str]:
        """Protein ids, optionally restricted to a split, to proteins having a modality, and to proteins whose
        mean pLDDT is >= min_plddt (proteins without pLDDT, e.g. experimental structures, are kept)."""
        mask = np.ones(len(self.proteins), dtype=bool)
        if min_plddt is not None and "plddt_mean" in self.proteins.columns:
            mean = self.proteins["plddt_mean"].to_numpy(dtype=np.float64)
            mask &= ~(mean < min_plddt)  # NaN (no pLDDT) compares False: kept
        if split is not None:
            if split not in SPLITS:
                raise OneProtError(f"unknown split {split!r}; choose one of: {', '.join(SPLITS)}", "split")
            mask &= (self.proteins["split"] == split).to_numpy()
        if modality is not None:
            mask &= self.modality_mask(modality)
        return self.proteins["id"][mask].tolist()

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
        """The summary `oneprot data stats` prints."""
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
            "sources": {str(k): int(v) for k, v in p["source"].str.split(":").str[0].value_counts().items()},
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
            self._pockets = _read_parquet(f) if f.exists() else pd.DataFrame(columns=_POCKET_COLUMNS)
        return self._pockets


_POCKET_COLUMNS = (
    "protein_id", "pocket_index", "residues", "ligand_code", "ligand_name", "source", "score",
    "center", "ligand_coords", "ligand_elements",
)


def missing_to_none(x):
    """A store field as read from a table: None for None, NaN or an empty string, else the value."""
    return None if x is None or (isinstance(x, float) and np.isnan(x)) or x == "" else x


def _read_parquet(path: Path) -> pd.DataFrame:
    if not path.is_file():
        raise OneProtError("file missing from store", str(path))
    try:
        return pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several types for truncated/garbled files
        raise OneProtError(f"corrupted or truncated table: {exc}", str(path)) from None


# ---- writing -----------------------------------------------------------------------------
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
    """
    path = Path(path)
    records = list(records)
    if not records and not allow_empty:
        raise OneProtError("no usable proteins to write", str(path))
    ids = [r.id for r in records]
    if len(set(ids)) != len(ids):
        dup = sorted({i for i in ids if ids.count(i) > 1})[:5]
        raise OneProtError(f"duplicate protein ids, e.g. {dup}", "id")

    rows, pocket_rows, plddt_mean = [], [], []
    n_struct = n_res = id_width = resnum_width = 0
    any_side = any_plddt = False
    for r in records:
        has_structure = r.coords is not None
        conf = r.extra.get("plddt") if r.extra else None
        conf = None if conf is None else np.asarray(conf, dtype=np.float32)
        if conf is not None and conf.shape != (len(r.sequence),):
            raise OneProtError(f"pLDDT has {conf.shape} values for {len(r.sequence)} residues", r.id)
        if has_structure:
            shape = np.shape(r.coords)
            if shape != (len(r.sequence), 4, 3):
                raise OneProtError(f"coords shape {shape} does not match sequence length {len(r.sequence)}", r.id)
            n_struct, n_res = n_struct + 1, n_res + shape[0]
            id_width = max(id_width, len(r.id))
            resnum_width = max(resnum_width, max((len(str(x)) for x in r.residue_numbers or [str(shape[0])]), default=1))
            any_side = any_side or (r.extra or {}).get("side_chains") is not None
            any_plddt = any_plddt or (conf is not None and bool(np.isfinite(conf).any()))
        plddt_mean.append(float(np.nanmean(conf)) if conf is not None and np.isfinite(conf).any() else np.nan)
        for k, p in enumerate(r.pockets if has_structure else []):
            pocket_rows.append({
                "protein_id": r.id, "pocket_index": k, "residues": [int(x) for x in p.residues],
                "ligand_code": p.ligand_code, "ligand_name": p.ligand_name, "source": p.source,
                "score": p.score,
                "center": None if p.center is None else [float(x) for x in np.asarray(p.center).ravel()],
                "ligand_coords": [] if p.ligand_coords is None else [float(x) for x in np.asarray(p.ligand_coords).ravel()],
                "ligand_elements": list(p.ligand_elements),
            })
        rows.append({
            "id": r.id, "name": r.name or "", "sequence": r.sequence, "text": r.text or "",
            "structure_tokens": r.structure_tokens or None, "family": r.family, "ec": r.ec,
            "organism": r.organism, "source": r.source, "split": splits.get(r.id, "train"),
            "cluster": int(clusters.get(r.id, -1)), "has_structure": has_structure,
            "n_pockets": len(r.pockets) if has_structure else 0, "length": len(r.sequence),
        })

    proteins = pd.DataFrame(rows, columns=list(PROTEIN_COLUMNS))
    if np.isfinite(plddt_mean).any():  # only stores with predicted models get the column
        proteins["plddt_mean"] = np.asarray(plddt_mean, dtype=np.float32)
    manifest = {
        "format_version": FORMAT_VERSION,
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "proteins": len(proteins),
        **(manifest_extra or {}),
    }

    # a failed write must not leave a half folder next to the store (the old store is untouched)
    with atomic_dir(path) as tmp:
        proteins.to_parquet(tmp / "proteins.parquet", index=False)
        if n_struct:
            w = ArrayWriter(tmp / ARRAYS_DIR, n_struct, n_res, id_width, resnum_width, any_side, any_plddt)
            for r in records:
                if r.coords is not None:
                    ex = r.extra or {}
                    w.add(r.id, np.asarray(r.coords, dtype=np.float32),
                          r.residue_numbers or [str(i + 1) for i in range(len(r.sequence))],
                          ex.get("side_chains"), ex.get("plddt"))
            w.close()
        pd.DataFrame(pocket_rows, columns=list(_POCKET_COLUMNS)).to_parquet(tmp / "pockets.parquet", index=False)
        (tmp / "manifest.json").write_text(json.dumps(manifest, indent=2))
    return path
