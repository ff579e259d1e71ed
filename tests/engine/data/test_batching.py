"""PairSampler: deterministic, resumable, epoch-complete; shard and token-budget helpers."""

import pytest

from engine.data.batching import PairSampler, shard, token_budget_batches
from engine.errors import OneProtError

IDS = {"structure": [f"s{i}" for i in range(10)], "text": [f"t{i}" for i in range(7)], "pocket": ["p0"]}


def test_round_robin_full_batches_and_epochs():
    s = PairSampler(IDS, batch_size=4, seed=1)
    assert s.modalities == ["structure", "text"]  # a modality with < 2 proteins cannot make a pair
    draws = [s.next() for _ in range(6)]
    assert [m for m, _ in draws] == ["structure", "text"] * 3
    structure = [b for m, b in draws if m == "structure"]
    assert all(len(b) == 4 for b in structure)
    assert len(set(structure[0]) | set(structure[1])) == 8  # no repeats within an epoch


def test_resume_from_state_gives_the_same_stream():
    a = PairSampler(IDS, batch_size=3, seed=5)
    for _ in range(5):
        a.next()
    state = a.state_dict()
    rest = [a.next() for _ in range(7)]
    b = PairSampler(IDS, batch_size=3, seed=5)
    b.load_state_dict(state)
    assert [b.next() for _ in range(7)] == rest


def test_weights_and_errors():
    s = PairSampler(IDS, batch_size=2, weights={"text": 1.0, "structure": 0.0})
    assert {s.next()[0] for _ in range(10)} == {"text"}
    with pytest.raises(OneProtError, match="positive sum"):  # pocket has no pairs here; nothing else weighs
        PairSampler(IDS, batch_size=2, weights={"pocket": 1.0})
    s = PairSampler(IDS, batch_size=2, weights={"pocket": 5.0, "text": 1.0})  # a preset's weight for a missing modality
    assert {s.next()[0] for _ in range(5)} == {"text"}
    with pytest.raises(OneProtError, match="unknown modalities"):
        PairSampler(IDS, batch_size=2, weights={"pockets": 1.0})
    with pytest.raises(OneProtError, match="at least 2"):
        PairSampler({"text": ["x"]}, batch_size=2)


def test_shard_and_token_budget():
    batch = list(range(9))
    assert shard(batch, 0, 2) == [0, 1, 2, 3] and shard(batch, 1, 2) == [4, 5, 6, 7]
    with pytest.raises(OneProtError):
        shard([1], 0, 2)
    groups = token_budget_batches([5, 100, 6, 7, 300], max_tokens=30)
    assert sorted(i for g in groups for i in g) == [0, 1, 2, 3, 4]
    lengths = [5, 100, 6, 7, 300]
    assert all(len(g) == 1 or max(lengths[i] for i in g) * len(g) <= 30 for g in groups)
