"""Pooling: masked positions never contribute; empty items do not produce NaN."""

import torch

from engine.encoders.pooling import AttentionPooling, MeanPooling, make_pooling, pooled_width

import pytest
from engine.errors import OneProtError


def test_masked_positions_are_ignored():
    torch.manual_seed(0)
    states = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    changed = states.clone()
    changed[0, 3:] = 1e3
    for pool in (MeanPooling(), AttentionPooling(8), make_pooling("max", 8), make_pooling("mean_max", 8)):
        assert torch.allclose(pool(states, mask), pool(changed, mask), atol=1e-5)
    assert torch.allclose(MeanPooling()(states, mask)[0], states[0, :3].mean(0))
    assert torch.equal(make_pooling("max", 8)(changed, mask)[0], states[0, :3].max(0).values)
    both = make_pooling("mean_max", 8)(changed, mask)
    assert both.shape == (2, 16) and pooled_width(make_pooling("mean_max", 8), 8) == 16
    assert pooled_width(make_pooling("max", 8), 8) == 8
    assert torch.allclose(both[0, :8], states[0, :3].mean(0)) and torch.equal(both[0, 8:], states[0, :3].max(0).values)


def test_empty_item_is_zero_not_nan():
    out = AttentionPooling(4)(torch.randn(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 4))
    # max pooling of no residue: zeros, not -inf or NaN
    empty = make_pooling("mean_max", 4)(torch.randn(2, 5, 4), torch.zeros(2, 5, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros(2, 8))


def test_unknown_pooling():
    with pytest.raises(OneProtError, match="mean, max, mean_max, attention"):
        make_pooling("median", 4)

