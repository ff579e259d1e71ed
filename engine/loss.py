"""Sequence-anchored symmetric InfoNCE with negatives gathered from every rank.

For a batch of N (sequence, modality) pairs with normalised embeddings s and m, logits are
s @ m.T / tau; the loss is the mean of the cross-entropies sequence->modality and
modality->sequence with the diagonal as targets (CLIP/ImageBind). Only pairs that include the
sequence anchor are ever scored; that is what OneProt trains.

Distributed: when torch.distributed is initialised, embeddings from all ranks are gathered with
`torch.distributed.nn.functional.all_gather` (gradients flow back to the rank that made them) and
every rank scores the full global batch. With DDP's gradient averaging this gives exactly the
gradient of a single process holding the whole global batch.
"""

from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from engine.errors import OneProtError
from engine.modality import ANCHOR


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate x from every rank in rank order (differentiable); x itself when not distributed."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return x
    import warnings

    from torch.distributed.nn.functional import all_gather

    with warnings.catch_warnings():
        # Deprecated in favour of a private API; it is still the public autograd-aware gather.
        warnings.simplefilter("ignore", FutureWarning)
        return torch.cat(all_gather(x), dim=0)


class PairwiseInfoNCE(nn.Module):
    """Symmetric InfoNCE between the anchor and each other modality present in the embeddings dict.

    forward(embeddings, logit_scale) -> {"loss": total, "loss/<modality>": term, "acc/<modality>": ...}
    where `embeddings` maps modality -> (B, D) normalised rows, row i of every modality being protein i.
    """

    def __init__(self, anchor: str = ANCHOR.value, l1_weight: float = 0.0):
        super().__init__()
        self.anchor = anchor
        self.l1_weight = float(l1_weight)

    def l1_term(self, a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> torch.Tensor:
        """Upstream OneProt's regulariser: l1_weight * (mean|z_sequence| + mean|z_modality|), local rows.

        Upstream's modality features already carry the fixed logit scale (its encoders multiply the
        normalised vector by 1/tau; sequence's does not), so the modality side is scaled here the same way.
        """
        return self.l1_weight * (a.float().abs().mean() + (logit_scale * b.float()).abs().mean())

    def pair_loss(self, a: torch.Tensor, b: torch.Tensor, logit_scale: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Loss and top-1 accuracy (a->b) for one pair type; a, b (B, D) local rows."""
        a, b = gather_with_grad(a.float()), gather_with_grad(b.float())  # (N, D) global batch
        logits = logit_scale * a @ b.T  # (N, N)
        target = torch.arange(len(a), device=a.device)
        loss = 0.5 * (F.cross_entropy(logits, target) + F.cross_entropy(logits.T, target))
        acc = (logits.argmax(dim=1) == target).float().mean()
        return loss, acc.detach()

    def forward(self, embeddings: dict[str, torch.Tensor], logit_scale: torch.Tensor) -> dict[str, torch.Tensor]:
        if self.anchor not in embeddings:
            raise OneProtError(f"InfoNCE needs the {self.anchor} anchor in the batch", "loss")
        others = [m for m in embeddings if m != self.anchor]
        if not others:
            raise OneProtError("InfoNCE needs at least one modality besides the anchor", "loss")
        out: dict[str, torch.Tensor] = {}
        total = 0.0
        for m in others:
            loss, acc = self.pair_loss(embeddings[self.anchor], embeddings[m], logit_scale)
            if self.l1_weight > 0:
                l1 = self.l1_term(embeddings[self.anchor], embeddings[m], logit_scale)
                out[f"l1/{m}"] = l1.detach()
                loss = loss + l1
            out[f"loss/{m}"] = loss
            out[f"acc/{m}"] = acc
            total = total + loss
        out["loss"] = total / len(others)
        return out
