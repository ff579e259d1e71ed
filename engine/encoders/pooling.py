"""Per-token states -> one vector per item: mean, max and mean+max pooling, and OneProt's attention pooling.

`mask` is True only at real residues/tokens: collate functions leave BOS, EOS and padding out,
so `mean` and `attention` never see them. The upstream-faithful `attention1d` and `mean_bos_eos`
set `includes_special`: the ESM encoder then hands them every non-padding token, BOS/EOS included.
"""

from __future__ import annotations

import torch
from torch import nn

from engine.errors import OneProtError


def masked_mean(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over positions where mask is True. states (B, L, H), mask (B, L) -> (B, H)."""
    m = mask.unsqueeze(-1).to(states.dtype)  # (B, L, 1)
    return (states * m).sum(1) / m.sum(1).clamp(min=1.0)


def masked_max(states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Maximum over positions where mask is True (zeros for an item without any). (B, L, H), (B, L) -> (B, H)."""
    filled = states.masked_fill(~mask.unsqueeze(-1), float("-inf"))
    out = filled.max(1).values if states.shape[1] else states.new_zeros(states.shape[0], states.shape[2])
    return torch.where(torch.isfinite(out), out, torch.zeros_like(out))


def pooled_width(pool: nn.Module, dim: int) -> int:
    """Width of the vector `pool` makes from states of width `dim` (2 * dim for mean_max, else dim)."""
    return dim * getattr(pool, "width_factor", 1)


class MeanPooling(nn.Module):
    """Average of the real token states; has no parameters."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_mean(states, mask)


class MaxPooling(nn.Module):
    """Element-wise maximum of the real token states; has no parameters (an item with none gives zeros)."""

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return masked_max(states, mask)


class MeanMaxPooling(nn.Module):
    """[mean, max] of the real token states, concatenated: (B, L, H) -> (B, 2H); no parameters.

    The maximum keeps what a few residues say strongly (a motif's units firing) that the mean dilutes.
    On the demo's valid split, UniRep-256's max-pooled states separate Pfam families better than its mean
    (same- vs different-family ROC-AUC 0.855 vs 0.685, plain cosine; scripts/unirep_valid.py --poolings,
    benchmarks/results/unirep_valid_2026-12-01_poolings.md).
    """

    width_factor = 2

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return torch.cat((masked_mean(states, mask), masked_max(states, mask)), dim=-1)


class AttentionPooling(nn.Module):
    """Learned softmax weighting of token states (trainable even when the backbone is frozen).

    Each token gets a score from a small MLP; scores are softmax-normalised over the real tokens and
    the states are summed with those weights. With a frozen ESM-2 this pooling plus the projection
    head are what OneProt trains on the sequence side.

    Args:
        dim: size H of the token states.
        hidden: width of the scoring MLP.

    Shapes:
        states (B, L, H), mask (B, L) bool -> (B, H)
    """

    def __init__(self, dim: int, hidden: int | None = None):
        super().__init__()
        hidden = hidden or max(dim // 2, 16)
        self.score = nn.Sequential(nn.Linear(dim, hidden), nn.Tanh(), nn.Linear(hidden, 1))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        for layer in self.score:
            if isinstance(layer, nn.Linear):
                nn.init.xavier_uniform_(layer.weight)
                nn.init.zeros_(layer.bias)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.score(states).squeeze(-1).float()  # (B, L)
        logits = logits.masked_fill(~mask, float("-inf"))
        # An item with no real tokens (empty string) would give NaN; give it zero weights instead.
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0).to(states.dtype)  # (B, L)
        return torch.einsum("bl,blh->bh", weights, states)


class LinearScorePooling(nn.Module):
    """Upstream OneProt's "attention1d": one linear score per token, softmax over the mask, weighted sum.

    Unlike AttentionPooling (an MLP score over residues only), the score is a single Linear(H, 1) with a
    bias, and the ESM encoder feeds it every token including BOS and EOS (`includes_special`), as the
    published model's Conv1d(1280, 1, kernel 1) over the attention mask does.

    Shapes:
        states (B, T, H), mask (B, T) bool -> (B, H)
    """

    includes_special = True

    def __init__(self, dim: int):
        super().__init__()
        self.layer = nn.Linear(dim, 1)

    def forward(self, states: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        logits = self.layer(states).squeeze(-1).float().masked_fill(~mask, float("-inf"))  # (B, T)
        weights = torch.softmax(logits, dim=-1).nan_to_num(0.0).to(states.dtype)
        return torch.einsum("bt,bth->bh", weights, states)


class MeanWithSpecialPooling(MeanPooling):
    """Mean over every non-padding token including BOS and EOS: upstream's 3Di encoder pooling."""

    includes_special = True


POOLINGS = ("mean", "max", "mean_max", "attention", "attention1d", "mean_bos_eos")


def make_pooling(kind: str, dim: int) -> nn.Module:
    """A pooling by name over states of size `dim` (see POOLINGS; the last two are upstream's)."""
    if kind == "mean":
        return MeanPooling()
    if kind == "max":
        return MaxPooling()
    if kind == "mean_max":
        return MeanMaxPooling()
    if kind == "attention":
        return AttentionPooling(dim)
    if kind == "attention1d":
        return LinearScorePooling(dim)
    if kind == "mean_bos_eos":
        return MeanWithSpecialPooling()
    raise OneProtError(f"unknown pooling {kind!r}; choose one of: {', '.join(POOLINGS)}", "pooling")
