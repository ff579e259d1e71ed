"""Sequence-anchored symmetric InfoNCE against a naive reference."""

import math

import pytest
import torch
import torch.nn.functional as F

from engine.errors import OneProtError
from engine.loss import PairwiseInfoNCE


def _naive(a, b, scale):
    n = len(a)
    total = 0.0
    for i in range(n):  # a_i -> b, then b_i -> a, by hand
        row = [scale * float(a[i] @ b[j]) for j in range(n)]
        col = [scale * float(b[i] @ a[j]) for j in range(n)]
        total += -row[i] + math.log(sum(math.exp(x) for x in row))
        total += -col[i] + math.log(sum(math.exp(x) for x in col))
    return total / (2 * n)


def test_matches_naive_reference_and_names_terms():
    torch.manual_seed(0)
    s, t, p = (F.normalize(torch.randn(6, 8), dim=-1) for _ in range(3))
    out = PairwiseInfoNCE()({"sequence": s, "text": t, "pocket": p}, torch.tensor(1 / 0.07))
    assert set(out) == {"loss", "loss/text", "acc/text", "loss/pocket", "acc/pocket"}
    assert out["loss/text"].item() == pytest.approx(_naive(s, t, 1 / 0.07), rel=1e-5)
    assert out["loss"].item() == pytest.approx((out["loss/text"].item() + out["loss/pocket"].item()) / 2, rel=1e-6)


def test_aligned_pairs_score_low_and_shuffled_high():
    torch.manual_seed(0)
    s = F.normalize(torch.randn(16, 32), dim=-1)
    loss = PairwiseInfoNCE()
    aligned = loss({"sequence": s, "structure": s.clone()}, torch.tensor(100.0))
    shuffled = loss({"sequence": s, "structure": s[torch.randperm(16)]}, torch.tensor(100.0))
    assert aligned["loss"].item() < 1e-3 and aligned["acc/structure"].item() == 1.0
    assert shuffled["loss"].item() > 5.0


def test_needs_anchor_and_a_partner():
    x = torch.randn(2, 4)
    with pytest.raises(OneProtError, match="anchor"):
        PairwiseInfoNCE()({"text": x, "pocket": x}, torch.tensor(1.0))
    with pytest.raises(OneProtError, match="besides"):
        PairwiseInfoNCE()({"sequence": x}, torch.tensor(1.0))
