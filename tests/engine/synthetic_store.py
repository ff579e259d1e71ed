"""A small synthetic store for embedding / search / evaluation tests: families of related sequences
with every modality, some duplicated texts, and a train/test split. Built in a second or two."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from engine.data.store import write_store
from engine.modality import Pocket, ProteinRecord

AMINO = "ACDEFGHIKLMNPQRSTVWY"


def _coords(rng: np.random.Generator, n: int) -> np.ndarray:
    steps = rng.standard_normal((n, 3))
    steps = 3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True)
    ca = np.cumsum(steps, axis=0)
    offsets = np.array([[-1.2, 0.6, 0.0], [0.0, 0.0, 0.0], [1.3, 0.5, 0.1], [2.0, 1.4, 0.3]])
    return (ca[:, None, :] + offsets[None]).astype(np.float32)


def make_records(n_families: int = 4, per_family: int = 8, length: int = 40, seed: int = 0) -> list[ProteinRecord]:
    rng = np.random.default_rng(seed)
    records = []
    for f in range(n_families):
        base = rng.choice(list(AMINO), size=length)
        for k in range(per_family):
            seq = base.copy()
            flip = rng.random(length) < 0.15
            seq[flip] = rng.choice(list(AMINO), size=int(flip.sum()))
            s = "".join(seq)
            pid = f"fam{f}_p{k}"
            has_structure = k % 4 != 3
            coords = _coords(rng, length) if has_structure else None
            pockets = [Pocket(residues=sorted(rng.choice(length, size=8, replace=False).tolist()), ligand_code="NAD",
                              center=np.zeros(3, np.float32))] if has_structure and k % 2 == 0 else []
            records.append(ProteinRecord(
                id=pid, sequence=s, name=f"protein {f}.{k}",
                # two proteins per family share their text: the duplicate rule must count both as correct
                text=f"family {f} enzyme, isoform {k // 2}" if k % 3 != 2 else "",
                coords=coords, structure_tokens="".join(rng.choice(list(AMINO), size=length)),
                pockets=pockets, family=f"F{f}", ec=f"{f % 3 + 1}.1.1.{f}", organism="Synthetica",
                source="synthetic",
            ))
    return records


def make_store(path: Path, **kwargs) -> Path:
    """Write the synthetic store to `path`; half of each family in test, half in train."""
    records = make_records(**kwargs)
    splits = {r.id: ("test" if int(r.id.rsplit("p", 1)[1]) % 2 == 0 else "train") for r in records}
    clusters = {r.id: int(r.id[3:].split("_")[0]) for r in records}
    return write_store(records, path, splits, clusters)
