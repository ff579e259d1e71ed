"""Pocket encoder: the same invariant GNN family over a binding pocket and the structure around it.

Items are whole-chain StructureInputs whose `focus` lists the pocket's lining residues
(engine.data.items builds them from a protein's first pocket). The encoder keeps the focus residues
and, with `shell` > 0, every residue whose CA lies within `shell` A of a focus residue's CA: fpocket
pockets line only ~10 residues. On the demo store's test split, pocket->sequence R@10 after 150
pocket-only alignment steps was 3.3x chance with no shell and 6.0x with 10 A (scripts/pocket_shell_sweep.py).
Angles are computed on the whole chain, then the kept residues are selected.
"""

from __future__ import annotations

from engine.encoders.gnn import GnnConfig, ResidueGraphEncoder
from engine.modality import Modality

PocketEncoderConfig = GnnConfig


class PocketEncoder(ResidueGraphEncoder):
    """Pocket residues (sequence letters + backbone) -> pooled vector."""

    modality = Modality.POCKET
