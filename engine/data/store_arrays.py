"""A store's per-residue arrays as memory-mappable .npy files, so a large store opens without loading them.

Folder `structures/` inside the store (stores written before it hold one compressed structures.npz,
still read by engine.data.store):
    ids.npy (n,) str, offsets.npy (n+1,) int64, coords.npy (R, 4, 3) float32, residue_numbers.npy (R,) str,
    optional side_chains.npy (R, 6, 3) float32 + has_side_chains.npy (n,) bool, plddt.npy (R,) float32.
Writers append one protein's rows at a time to each file (headers written first with the final sizes), so
writing never holds more than one protein's arrays beyond what the caller holds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.errors import OneProtError

ARRAYS_DIR = "structures"


class _NpyAppender:
    """One .npy file written front to back: the header for its final shape, then rows appended in order."""

    def __init__(self, path: Path, dtype, shape: tuple[int, ...]):
        self.dtype = np.dtype(dtype)
        self.fh = open(path, "wb")
        np.lib.format.write_array_header_1_0(self.fh, {"descr": np.lib.format.dtype_to_descr(self.dtype),
                                                       "fortran_order": False, "shape": shape})

    def write(self, rows) -> None:
        self.fh.write(np.ascontiguousarray(rows, dtype=self.dtype).tobytes())

    def close(self) -> None:
        self.fh.close()


class ArrayWriter:
    """Append proteins' arrays to .npy files under `folder`; sizes must be known up front (the headers hold them).

    Plain appending writes, not a writable memory map: the pages of a mapped output file count in the
    writer's resident memory, so a mapped store of 2 GB would make a 2 GB process.
    """

    def __init__(self, folder: Path, n_structures: int, n_residues: int, id_width: int, resnum_width: int,
                 side_chains: bool, plddt: bool):
        folder.mkdir(parents=True, exist_ok=True)
        self.n, self.r = n_structures, n_residues
        self.ids = _NpyAppender(folder / "ids.npy", f"<U{max(id_width, 1)}", (n_structures,))
        self.offsets = _NpyAppender(folder / "offsets.npy", np.int64, (n_structures + 1,))
        self.coords = _NpyAppender(folder / "coords.npy", np.float32, (n_residues, 4, 3))
        self.resnums = _NpyAppender(folder / "residue_numbers.npy", f"<U{max(resnum_width, 1)}", (n_residues,))
        self.side = _NpyAppender(folder / "side_chains.npy", np.float32, (n_residues, 6, 3)) if side_chains else None
        self.has_side = _NpyAppender(folder / "has_side_chains.npy", bool, (n_structures,)) if side_chains else None
        self.plddt = _NpyAppender(folder / "plddt.npy", np.float32, (n_residues,)) if plddt else None
        self.i, self.at = 0, 0
        self.offsets.write([0])

    def add(self, pid: str, coords: np.ndarray, resnums, side: np.ndarray | None = None,
            plddt: np.ndarray | None = None) -> None:
        """One protein's (L, 4, 3) coords, L residue numbers and optional side chains / pLDDT."""
        coords = np.asarray(coords, np.float32)
        n = len(coords)
        resnums = list(resnums)
        if coords.shape != (n, 4, 3) or len(resnums) != n:
            raise OneProtError(f"coords {coords.shape} and {len(resnums)} residue numbers do not match", pid)
        if self.at + n > self.r or self.i >= self.n:
            raise OneProtError(f"more than the {self.n} structures / {self.r} residues sized for", pid)
        self.ids.write([pid])
        self.coords.write(coords)
        self.resnums.write(resnums)
        if self.side is not None:
            self.has_side.write([side is not None])
            self.side.write(np.full((n, 6, 3), np.nan, np.float32) if side is None
                            else np.asarray(side, np.float32).reshape(n, 6, 3))
        if self.plddt is not None:
            self.plddt.write(np.full(n, np.nan, np.float32) if plddt is None else np.asarray(plddt, np.float32))
        self.i, self.at = self.i + 1, self.at + n
        self.offsets.write([self.at])

    def close(self) -> None:
        """Check every slot was filled and close the files."""
        for f in (self.ids, self.offsets, self.coords, self.resnums, self.side, self.has_side, self.plddt):
            if f is not None:
                f.close()
        if (self.i, self.at) != (self.n, self.r):
            raise OneProtError(f"wrote {self.i}/{self.n} structures, {self.at}/{self.r} residues", "structures")


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
