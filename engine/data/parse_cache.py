"""Per-file parse cache so a killed or repeated build skips files it already parsed.

Location: `<ONEPROT_CACHE or ~/.cache/oneprot>/parse/<key>.npz`, key = SHA-256 of the file's
absolute path, size, modification time, the reader options and CACHE_VERSION. Entries are plain
npz (arrays + a JSON string), loaded with allow_pickle=False; each is written atomically.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from engine.files import atomic_file
from engine.modality import Pocket, ProteinRecord
from engine.paths import CACHE_DIR

CACHE_VERSION = 4  # bump when a reader changes what it returns


def cache_key(path: Path, options: dict) -> str:
    st = path.stat()
    blob = json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, options, CACHE_VERSION], sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def cache_path(key: str, cache_dir: Path | None = None) -> Path:
    return Path(cache_dir or CACHE_DIR / "parse") / f"{key}.npz"


def _arr(x) -> list | None:
    return None if x is None else np.asarray(x, dtype=np.float32).ravel().tolist()


def save(path: Path, records: list[ProteinRecord], result: dict) -> None:
    """Store parsed records plus a JSON-able result dict (skips, notes) atomically."""
    meta, coords, cbs, sides = [], [], [], []
    for r in records:
        extra = {k: v for k, v in r.extra.items() if k not in ("cb", "side_chains")}
        meta.append({
            "id": r.id, "sequence": r.sequence, "name": r.name, "text": r.text,
            "residue_numbers": r.residue_numbers, "structure_tokens": r.structure_tokens,
            "family": r.family, "ec": r.ec, "organism": r.organism, "source": r.source, "extra": extra,
            "has_coords": r.coords is not None, "has_cb": r.extra.get("cb") is not None,
            "has_side_chains": r.extra.get("side_chains") is not None,
            "pockets": [{"residues": p.residues, "ligand_code": p.ligand_code, "ligand_name": p.ligand_name,
                         "source": p.source, "center": _arr(p.center), "ligand_coords": _arr(p.ligand_coords),
                         "ligand_elements": p.ligand_elements, "score": p.score} for p in r.pockets],
        })
        if r.coords is not None:
            coords.append(np.asarray(r.coords, dtype=np.float32))
        if r.extra.get("cb") is not None:
            cbs.append(np.asarray(r.extra["cb"], dtype=np.float32))
        if r.extra.get("side_chains") is not None:
            sides.append(np.asarray(r.extra["side_chains"], dtype=np.float32))
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_file(path) as tmp:
        np.savez(
            tmp,
            meta=np.array(json.dumps({"records": meta, "result": result})),
            coords=np.concatenate(coords) if coords else np.zeros((0, 4, 3), np.float32),
            cb=np.concatenate(cbs) if cbs else np.zeros((0, 3), np.float32),
            side_chains=np.concatenate(sides) if sides else np.zeros((0, 6, 3), np.float32),
        )


def load(path: Path, arrays: bool = True) -> tuple[list[ProteinRecord], dict] | None:
    """Records and result dict from a cache entry, or None when absent or unreadable.

    arrays=False reads only the entry's JSON part: coordinates, CB and side chains are then read-only
    placeholders of the right shapes that hold no data (np.broadcast_to of one zero), for a pass that
    needs what a record is and how large its arrays are, not their values (the build's first pass)."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as z:
            blob = json.loads(str(z["meta"]))
            coords = cbs = sides = None
            if arrays:
                coords, cbs = z["coords"], z["cb"]
                sides = z["side_chains"] if "side_chains" in z.files else np.zeros((0, 6, 3), np.float32)
    except Exception:  # a damaged cache entry is simply re-parsed
        return None
    zero = np.zeros((), np.float32)

    def take(src, start: int, n: int, tail: tuple) -> tuple[np.ndarray, int]:
        part = src[start: start + n] if arrays else np.broadcast_to(zero, (n, *tail))
        return part, start + n

    out, ci, bi, si = [], 0, 0, 0
    for m in blob["records"]:
        n = len(m["sequence"])
        c = cb = side = None
        if m["has_coords"]:
            c, ci = take(coords, ci, n, (4, 3))
        if m["has_cb"]:
            cb, bi = take(cbs, bi, n, (3,))
        if m.get("has_side_chains"):
            side, si = take(sides, si, n, (6, 3))
        pockets = [Pocket(
            residues=p["residues"], ligand_code=p["ligand_code"], ligand_name=p["ligand_name"], source=p["source"],
            center=None if p["center"] is None else np.asarray(p["center"], np.float32),
            ligand_coords=None if p["ligand_coords"] is None else np.asarray(p["ligand_coords"], np.float32).reshape(-1, 3),
            ligand_elements=p["ligand_elements"], score=p["score"]) for p in m["pockets"]]
        out.append(ProteinRecord(
            id=m["id"], sequence=m["sequence"], name=m["name"], text=m["text"], coords=c,
            residue_numbers=m["residue_numbers"], structure_tokens=m["structure_tokens"], pockets=pockets,
            family=m["family"], ec=m["ec"], organism=m["organism"], source=m["source"],
            extra={**m["extra"], "cb": cb, "side_chains": side}))
    return out, blob["result"]
