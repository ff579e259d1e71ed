"""Structure-token encoder: an ESM-2 network over Foldseek's 20 3Di letters (+ mask), as in OneProt.

The paper fine-tunes ESM-2 35M with its vocabulary extended by the 3Di tokens; here the alphabet
holds exactly ESM-2's special tokens plus the 3Di letters, so a released amino-acid checkpoint can
still seed it (special-token rows are copied, 3Di rows start fresh; see esm_arch.load_into).
"""

from __future__ import annotations

from engine.encoders.esm_encoder import EsmEncoderConfig, EsmTokenEncoder
from engine.modality import Modality

StructureTokensEncoderConfig = EsmEncoderConfig


class StructureTokensEncoder(EsmTokenEncoder):
    """3Di strings -> ESM-2 states -> pooled vector."""

    modality = Modality.STRUCTURE_TOKENS
    alphabet_kind = "3di"
