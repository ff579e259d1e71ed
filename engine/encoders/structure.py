"""Structure encoder: the invariant residue-graph GNN over a whole chain's backbone."""

from __future__ import annotations

from engine.encoders.gnn import GnnConfig, ResidueGraphEncoder
from engine.modality import Modality

StructureEncoderConfig = GnnConfig


class StructureEncoder(ResidueGraphEncoder):
    """StructureInput (sequence + (L, 4, 3) backbone) -> pooled vector, invariant to rigid motions."""

    modality = Modality.STRUCTURE
