"""Store rows -> the raw items each encoder's `collate` takes (see engine/encoders/base.py)."""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.errors import OneProtError
from engine.modality import Modality, StructureInput, parse_modality


def pocket_input(sequence: str, coords: np.ndarray, residues: list[int], where: str = "pocket",
                 side_chains: np.ndarray | None = None, center: np.ndarray | None = None) -> StructureInput:
    """The StructureInput of a pocket: the whole chain, with the pocket's residues as its focus.

    The pocket encoder keeps the focus residues and, per its `shell`, the residues around them.
    """
    idx = sorted({int(i) for i in residues})
    if not idx or idx[0] < 0 or idx[-1] >= len(sequence):
        raise OneProtError(f"pocket residues {idx[:3]}... fall outside the chain of {len(sequence)} residues", where)
    return StructureInput(sequence=sequence, coords=np.asarray(coords, dtype=np.float32),
                          focus=np.asarray(idx, dtype=np.int64), side_chains=side_chains,
                          center=None if center is None else np.asarray(center, dtype=np.float32).reshape(3))


def item_for(store, protein_id: str, modality: str | Modality) -> Any:
    """One protein's raw item for a modality, or a OneProtError if it lacks that modality."""
    m = parse_modality(modality)
    row = store.row(protein_id)
    if m is Modality.SEQUENCE:
        return row["sequence"]
    if m is Modality.TEXT:
        text = row["text"] or ""
        if not text.strip():
            raise OneProtError("protein has no text", protein_id)
        return text
    if m is Modality.STRUCTURE_TOKENS:
        tokens = row["structure_tokens"] or ""
        if not tokens:
            raise OneProtError("protein has no structure tokens", protein_id)
        return tokens
    coords = store.coords(protein_id)
    if coords is None:
        raise OneProtError(f"protein has no structure (needed for {m.value})", protein_id)
    if m is Modality.STRUCTURE:
        return StructureInput(sequence=row["sequence"], coords=coords, side_chains=store.side_chains(protein_id))
    pockets = store.pockets(protein_id)
    if not pockets:
        raise OneProtError("protein has no pocket", protein_id)
    return pocket_input(row["sequence"], coords, pockets[0].residues, protein_id,
                        side_chains=store.side_chains(protein_id), center=pockets[0].center)


def items_for(store, ids: list[str], modality: str | Modality) -> list[Any]:
    """Raw items for many proteins (pocket = each protein's first pocket's residues)."""
    m = parse_modality(modality)
    if m is Modality.POCKET:
        # One pass over the pocket table instead of a filter per protein.
        table = store._load_pockets()
        firsts = table.sort_values("pocket_index").drop_duplicates("protein_id").set_index("protein_id")
        first, centers = firsts["residues"], firsts["center"]
        out = []
        for pid in ids:
            if pid not in first.index:
                raise OneProtError("protein has no pocket", pid)
            coords = store.coords(pid)
            if coords is None:
                raise OneProtError("protein has no structure (needed for pocket)", pid)
            center = centers[pid]
            center = np.asarray(center, dtype=np.float32) if isinstance(center, (list, np.ndarray)) and len(center) == 3 else None
            out.append(pocket_input(store.row(pid)["sequence"], coords, list(first[pid]), pid,
                                    side_chains=store.side_chains(pid), center=center))
        return out
    return [item_for(store, pid, m) for pid in ids]
