"""A store's per-residue arrays as memory-mappable .npy files, so a large store opens without loading them.

Folder `structures/` inside the store (stores written before it hold one compressed structures.npz,
still read by engine.data.store):
    ids.npy (n,) str, offsets.npy (n+1,) int64, coords.npy (R, 4, 3) float32, residue_numbers.npy (R,) str,
    optional side_chains.npy (R, 6, 3) float32 + has_side_chains.npy (n,) bool, plddt.npy (R,) float32.
Writers fill the arrays in place (np.lib.format.open_memmap), one protein at a time, so writing never
holds more than one protein's arrays beyond what the caller holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import OneProtError

ARRAYS_DIR = "structures"


class ArrayWriter:
    """Append proteins' arrays into pre-sized .npy files under `folder`; sizes must be known up front."""

    def __init__(self, folder: Path, n_structures: int, n_residues: int, id_width: int, resnum_width: int,
                 side_chains: bool, plddt: bool):
        folder.mkdir(parents=True, exist_ok=True)
        mm = np.lib.format.open_memmap
        self.n, self.r = n_structures, n_residues
        self.ids = mm(folder / "ids.npy", "w+", f"<U{max(id_width, 1)}", (n_structures,))
        self.offsets = mm(folder / "offsets.npy", "w+", np.int64, (n_structures + 1,))
        self.coords = mm(folder / "coords.npy", "w+", np.float32, (n_residues, 4, 3))
        self.resnums = mm(folder / "residue_numbers.npy", "w+", f"<U{max(resnum_width, 1)}", (n_residues,))
        self.side = mm(folder / "side_chains.npy", "w+", np.float32, (n_residues, 6, 3)) if side_chains else None
        self.has_side = mm(folder / "has_side_chains.npy", "w+", bool, (n_structures,)) if side_chains else None
        self.plddt = mm(folder / "plddt.npy", "w+", np.float32, (n_residues,)) if plddt else None
        self.i, self.at = 0, 0
        self.offsets[0] = 0

    def add(self, pid: str, coords: np.ndarray, resnums, side: np.ndarray | None = None,
            plddt: np.ndarray | None = None) -> None:
        """One protein's (L, 4, 3) coords, L residue numbers and optional side chains / pLDDT."""
        n = len(coords)
        a, b = self.at, self.at + n
        self.ids[self.i] = pid
        self.coords[a:b] = coords
        self.resnums[a:b] = list(resnums)
        if self.side is not None:
            self.has_side[self.i] = side is not None
            self.side[a:b] = np.nan if side is None else np.asarray(side, np.float32).reshape(n, 6, 3)
        if self.plddt is not None:
            self.plddt[a:b] = np.nan if plddt is None else np.asarray(plddt, np.float32)
        self.i, self.at = self.i + 1, b
        self.offsets[self.i] = b

    def close(self) -> None:
        """Check every slot was filled and flush the arrays to disk."""
        if (self.i, self.at) != (self.n, self.r):
            raise OneProtError(f"wrote {self.i}/{self.n} structures, {self.at}/{self.r} residues", "structures")
        for arr in (self.ids, self.offsets, self.coords, self.resnums, self.side, self.has_side, self.plddt):
            if arr is not None:
                arr.flush()


def open_arrays(store_path: Path) -> dict:
    """The arrays of `store_path/structures/`, memory-mapped (read-only); the id index is built in memory."""
    folder = Path(store_path) / ARRAYS_DIR
    try:
        def load(name, required=True):
            f = folder / f"{name}.npy"
            if not f.exists():
                if required:
                    raise OneProtError("array missing from store", str(f))
                return None
            return np.load(f, mmap_mode="r", allow_pickle=False)

        ids = load("ids")
        out = {
            "index": {str(pid): i for i, pid in enumerate(ids.tolist())},
            "coords": load("coords"), "offsets": np.asarray(load("offsets"), dtype=np.int64),
            "residue_numbers": load("residue_numbers"), "side_chains": load("side_chains", False),
            "has_side_chains": load("has_side_chains", False), "plddt": load("plddt", False),
        }
    except OneProtError:
        raise
    except Exception as exc:  # truncated .npy headers surface as ValueError/OSError
        raise OneProtError(f"corrupted structure arrays: {exc}", str(folder)) from None
    if len(out["offsets"]) != len(out["index"]) + 1 or out["offsets"][-1] != len(out["coords"]):
        raise OneProtError("structure arrays disagree in size (truncated store?)", str(folder))
    return out
