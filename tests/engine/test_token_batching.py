"""Token-budget batching covers every sequence once, respects the budget, and prefetches in order."""

import numpy as np
import pytest
import torch

from engine.errors import OneProtError
from engine.token_batching import background_map, pack_token_arrays, token_budget_batches


def _check_cover(batches, n):
    seen = np.concatenate(batches) if batches else np.zeros(0, dtype=np.int64)
    assert sorted(seen.tolist()) == list(range(n))


@pytest.mark.parametrize("padded", [False, True])
def test_every_index_once_and_budget_kept(padded):
    rng = np.random.default_rng(0)
    lengths = rng.integers(1, 400, size=500)
    budget = 1000
    batches = token_budget_batches(lengths, budget, padded=padded)
    _check_cover(batches, len(lengths))
    for batch in batches:
        cost = len(batch) * lengths[batch].max() if padded else lengths[batch].sum()
        assert cost <= budget or len(batch) == 1
    # longest first, and lengths never increase across the flattened order
    flat = lengths[np.concatenate(batches)]
    assert (np.diff(flat) <= 0).all()


def test_sequences_longer_than_budget_get_their_own_batch():
    lengths = [5, 5000, 7, 3000, 2]
    batches = token_budget_batches(lengths, 100)
    _check_cover(batches, 5)
    assert [b.tolist() for b in batches[:2]] == [[1], [3]]
    assert batches[2].tolist() == [2, 0, 4]


def test_max_sequences_and_ties_keep_input_order():
    batches = token_budget_batches([3] * 10, 10_000, max_sequences=4)
    assert [b.tolist() for b in batches] == [[0, 1, 2, 3], [4, 5, 6, 7], [8, 9]]


def test_empty_and_bad_arguments():
    assert token_budget_batches([], 10) == []
    with pytest.raises(OneProtError):
        token_budget_batches([1, 2], 0)
    with pytest.raises(OneProtError):
        token_budget_batches([1, 2], 10, max_sequences=0)


def test_background_map_keeps_order_and_reraises():
    assert list(background_map(lambda x: x * x, range(50), depth=3)) == [x * x for x in range(50)]
    assert list(background_map(str, [])) == []

    def boom(x):
        if x == 3:
            raise ValueError("bad item 3")
        return x

    got = []
    with pytest.raises(ValueError, match="bad item 3"):
        for value in background_map(boom, range(10)):
            got.append(value)
    assert got == [0, 1, 2]


def test_background_map_consumer_can_stop_early():
    for value in background_map(lambda x: x, range(1000), depth=2):
        if value == 5:
            break  # the producer thread must not hang the test


def test_packed_layout_offsets_positions_and_filler():
    # three sequences with BOS (0) and EOS (2) around 3, 1 and 0 residues
    arrays = [np.array([0, 5, 6, 7, 2]), np.array([0, 9, 2]), np.array([0, 2])]
    packed = pack_token_arrays(arrays, np.array([7, 3, 5]), pad_multiple=8, residue_offsets=np.array(
        [10, 0, 20]), discard_row=99)
    assert packed.lengths == [5, 3, 2, 6] and packed.n_sequences == 3  # filler of 6 pad tokens
    assert packed.cu_seqlens.tolist() == [0, 5, 8, 10, 16]
    assert packed.tokens[10:].tolist() == [1] * 6
    assert packed.positions[:10].tolist() == [0, 1, 2, 3, 4, 0, 1, 2, 0, 1]
    assert packed.seq_index.tolist() == [0] * 5 + [1] * 3 + [2] * 2 + [3] * 6
    assert packed.residue_weight.tolist() == [0, 1, 1, 1, 0, 0, 1, 0] + [0] * 8
    assert packed.n_residues.tolist() == [3, 1, 0] and packed.max_residues == 3
    assert packed.residue_slot[:8].tolist() == [9, 0, 1, 2, 9, 9, 3, 9]
    assert packed.residue_dest[:8].tolist() == [99, 10, 11, 12, 99, 99, 0, 99]
    assert packed.order.tolist() == [7, 3, 5]
    moved = packed.to("cpu")
    assert moved.lengths == packed.lengths and torch.equal(moved.tokens, packed.tokens)
