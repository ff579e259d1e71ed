"""A small synthetic store for model/training tests: every modality, learnable pairings, all splits."""

from __future__ import annotations

import numpy as np

from engine.data.store import write_store
from engine.modality import Pocket, ProteinRecord

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREEDI = "ACDEFGHIKLMNPQRSTVWY"


def backbone(length: int, rng: np.random.Generator) -> np.ndarray:
    """A chain-like (L, 4, 3) backbone: CA random walk with 3.8 A steps, N/C/O placed around it."""
    steps = rng.normal(size=(length, 3))
    steps = 3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True)
    ca = np.cumsum(steps, axis=0)
    coords = np.stack([ca + rng.normal(scale=0.8, size=ca.shape) for _ in range(4)], axis=1)
    coords[:, 1] = ca
    return coords.astype(np.float32)


def make_alignment_records(n: int = 48, seed: int = 0, min_len: int = 20, max_len: int = 40) -> list[ProteinRecord]:
    """`n` proteins; structure, 3Di, pocket and text present on most of them."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        length = int(rng.integers(min_len, max_len))
        seq = "".join(rng.choice(list(AMINO), size=length))
        coords = backbone(length, rng) if i % 6 != 5 else None
        tokens = "".join(THREEDI[(AMINO.index(c) * 7 + 3) % 20] for c in seq) if i % 5 != 4 else None
        pockets = [Pocket(residues=sorted(rng.choice(length, size=8, replace=False).tolist()), ligand_code="HEM")]
        out.append(ProteinRecord(
            id=f"P{i:03d}", sequence=seq, name=f"protein {i}",
            text=f"protein {i} of family {i % 4} with motif {seq[:4]}" if i % 4 != 3 else "",
            coords=coords, structure_tokens=tokens, pockets=pockets if coords is not None and i % 3 != 2 else [],
            family=f"fam{i % 4}", source="synthetic",
        ))
    return out


def make_alignment_store(path, n: int = 48, seed: int = 0, valid_every: int = 4):
    """Write the synthetic store to `path`; every `valid_every`-th protein goes to the valid split."""
    records = make_alignment_records(n, seed)
    splits = {r.id: ("valid" if i % valid_every == 1 else "train") for i, r in enumerate(records)}
    clusters = {r.id: i for i, r in enumerate(records)}
    return write_store(records, path, splits, clusters)
