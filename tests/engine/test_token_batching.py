"""Token-budget batching covers every sequence once, respects the budget, and prefetches in order."""

import numpy as np
import pytest

from engine.errors import OneProtError
from engine.token_batching import background_map, token_budget_batches


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
