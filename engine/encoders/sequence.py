"""Sequence encoder: ESM-2 (released fair-esm weights, a local checkpoint, or any size from scratch).

Presets choose the source: the paper uses `esm2_t33_650M_UR50D` frozen with attention pooling;
the demo uses a small ESM-2-architecture network pretrained by `oneprot pretrain`.
"""

from __future__ import annotations

from engine.encoders.esm_encoder import EsmEncoderConfig, EsmTokenEncoder
from engine.modality import Modality

SequenceEncoderConfig = EsmEncoderConfig


class SequenceEncoder(EsmTokenEncoder):
    """Amino-acid strings -> ESM-2 residue states -> pooled vector (the anchor modality)."""

    modality = Modality.SEQUENCE
    alphabet_kind = "protein"
