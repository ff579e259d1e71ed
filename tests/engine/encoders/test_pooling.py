"""Pooling: masked positions never contribute; empty items do not produce NaN."""

import torch

from engine.encoders.pooling import AttentionPooling, MeanPooling, make_pooling

import pytest
from engine.errors import OneProtError


def test_masked_positions_are_ignored():
    torch.manual_seed(0)
    states = torch.randn(2, 5, 8)
    mask = torch.tensor([[1, 1, 1, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    changed = states.clone()
    changed[0, 3:] = 1e3
    for pool in (MeanPooling(), AttentionPooling(8)):
        assert torch.allclose(pool(states, mask), pool(changed, mask), atol=1e-5)
    assert torch.allclose(MeanPooling()(states, mask)[0], states[0, :3].mean(0))


def test_empty_item_is_zero_not_nan():
    out = AttentionPooling(4)(torch.randn(1, 3, 4), torch.zeros(1, 3, dtype=torch.bool))
    assert torch.equal(out, torch.zeros(1, 4))


def test_unknown_pooling():
    with pytest.raises(OneProtError, match="mean, max, mean_max, attention"):
        make_pooling("median", 4)


def test_max_and_mean_max_ignore_masked_positions():
    from engine.encoders.pooling import pooled_width

    torch.manual_seed(1)
    states = torch.randn(2, 5, 4)
    mask = torch.tensor([[1, 1, 0, 0, 0], [1, 1, 1, 1, 1]], dtype=torch.bool)
    changed = states.clone()
    changed[0, 2:] = 1e3
    mx, mm = make_pooling("max", 4), make_pooling("mean_max", 4)
    assert torch.equal(mx(states, mask), mx(changed, mask))
    assert torch.equal(mx(states, mask)[0], states[0, :2].max(0).values)
    out = mm(changed, mask)
    assert out.shape == (2, 8) and pooled_width(mm, 4) == 8 and pooled_width(mx, 4) == 4
    assert torch.allclose(out[0, :4], states[0, :2].mean(0)) and torch.equal(out[0, 4:], states[0, :2].max(0).values)
    empty = mm(states, torch.zeros(2, 5, dtype=torch.bool))
    assert torch.equal(empty, torch.zeros(2, 8))  # no residue: zeros, not -inf or NaN
