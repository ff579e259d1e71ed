"""The one output contract every modality encoder honours.

An encoder turns a list of raw items of its modality into a batch (`collate`, the only place
that tokenises, adds BOS/EOS or pads) and a batch into an `EncoderOutput` (`forward`).

Raw item per modality:
    sequence          str (amino acids, already cleaned by engine.data.sequence rules)
    structure_tokens  str (Foldseek 3Di letters, same length as the chain)
    structure         engine.modality.StructureInput (sequence + (L, 4, 3) backbone coords)
    pocket            engine.modality.StructureInput restricted to the pocket residues
    text              str
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine.errors import OneProtError
from engine.modality import Modality


@dataclass
class EncoderOutput:
    pooled: torch.Tensor  # (B, H) one vector per item
    states: torch.Tensor | None = None  # (B, L, H) per-residue / per-token states, padded
    mask: torch.Tensor | None = None  # (B, L) bool, True where `states` is a real residue/token


class ModalityEncoder(nn.Module):
    """Base class: subclasses set `modality` and `output_dim`, implement `collate` and `forward`."""

    modality: Modality
    output_dim: int
    config_class: type  # the dataclass its config dict is read into (engine.recipe checks overrides with it)
    # True: pooled_packed(items, batch_tokens) embeds raw items without padding in its own token-budget batches
    # and OneProt.embed skips collate; False: OneProt.embed collates padded batches and calls forward
    packs: bool = False

    def collate(self, items: list[Any]) -> dict[str, Any]:
        raise NotImplementedError

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:  # noqa: D401
        raise NotImplementedError

    def pooled_packed(self, items: list[Any], batch_tokens: int, options: Any = None
                      ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (positions in items, (B, H) pooled states) per token-budget batch, without padding;
        only encoders with `packs = True` have it."""
        raise NotImplementedError(f"{type(self).__name__} has no packed forward (packs = False)")

    def residues_packed(self, items: list[Any], batch_tokens: int, options: Any = None) -> list[torch.Tensor]:
        """Per-residue final states (L_i, H) of each item; only token encoders (ESM) have them."""
        raise OneProtError(f"the {self.modality.value} encoder ({type(self).__name__}) gives no per-residue states",
                           "modality")

    def ensure_loaded(self) -> "ModalityEncoder":
        """Read any part deferred to first use (the text backbone does this); a no-op by default."""
        return self
