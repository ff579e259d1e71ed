"""Pocket encoder: the same invariant GNN family over a binding pocket's residues only.

Items are StructureInputs holding just the pocket residues (engine.data.items builds them from a
protein's first pocket). Gaps between pocket residues are detected from CA-CA distances, so no
backbone dihedral is computed across residues that are not bonded.
"""

from __future__ import annotations

from engine.encoders.gnn import GnnConfig, ResidueGraphEncoder
from engine.modality import Modality

PocketEncoderConfig = GnnConfig


class PocketEncoder(ResidueGraphEncoder):
    """Pocket residues (sequence letters + backbone) -> pooled vector."""

    modality = Modality.POCKET
