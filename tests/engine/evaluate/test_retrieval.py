"""Retrieval metrics against a naive full-matrix reference written here, including ties and duplicates."""

import numpy as np
import pytest

from engine.errors import OneProtError
from engine.evaluate.retrieval import chance, evaluate_pair, evaluate_scores, ranks, score_ranks, summarise


def naive_rank(q, c, qkeys, ckeys):
    """Loop-by-loop reference: 1 + incorrect candidates scoring >= the best correct one."""
    out = []
    for i in range(len(q)):
        scores = [float(np.dot(q[i], c[j])) for j in range(len(c))]
        correct = [ckeys[j] == qkeys[i] for j in range(len(c))]
        best = max(s for s, ok in zip(scores, correct) if ok)
        out.append(1 + sum(1 for s, ok in zip(scores, correct) if not ok and s >= best))
    return np.array(out)


def test_ranks_match_naive_reference_on_random_data():
    rng = np.random.default_rng(0)
    q, c = rng.standard_normal((40, 8)), rng.standard_normal((40, 8))
    keys = [f"k{i % 30}" for i in range(40)]  # 10 duplicated targets
    np.testing.assert_array_equal(ranks(q, c, keys, keys), naive_rank(q, c, keys, keys))


def test_exact_ties_count_against_the_model():
    # a collapsed model: every score equal -> worst rank, not rank 1
    q = np.ones((4, 3), np.float32)
    c = np.ones((4, 3), np.float32)
    keys = ["a", "b", "c", "d"]
    r = ranks(q, c, keys, keys)
    np.testing.assert_array_equal(r, [4, 4, 4, 4])
    np.testing.assert_array_equal(r, naive_rank(q, c, keys, keys))


def test_duplicate_targets_are_all_correct():
    # candidate 0 and 2 carry the same content; query 0 scoring candidate 2 highest is a hit at rank 1
    q = np.array([[1.0, 0.0]], np.float32)
    c = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]], np.float32)
    ckeys = ["same", "other", "same"]
    assert ranks(q, c, ["same"], ckeys)[0] == 1
    # without the duplicate rule candidate 0 would rank behind "other": check the rule matters
    assert ranks(q, c[:2], ["same"], ckeys[:2])[0] == 2


def test_summary_values():
    s = summarise(np.array([1, 2, 10, 200]), n_candidates=300)
    assert s["R@1"] == 0.25 and s["R@10"] == 0.75 and s["R@100"] == 0.75
    assert s["median_rank"] == 6.0
    assert s["MRR"] == pytest.approx((1 + 0.5 + 0.1 + 0.005) / 4)


def test_chance_is_k_over_n_without_duplicates_and_higher_with_them():
    keys = [str(i) for i in range(50)]
    assert chance(keys, keys)["R@10"] == pytest.approx(10 / 50)
    dup = ["x"] * 2 + [str(i) for i in range(48)]
    # P(neither of the 2 correct in a random top-10 of 50) = C(48,10) / C(50,10) = 40*39 / (50*49)
    assert chance(["x"], dup)["R@10"] == pytest.approx(1 - 40 * 39 / (50 * 49))


def test_random_vectors_score_near_chance_and_perfect_vectors_score_one():
    rng = np.random.default_rng(1)
    n = 400
    keys = [str(i) for i in range(n)]
    x = rng.standard_normal((n, 16)).astype(np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)  # unit vectors: each is its own best match
    assert evaluate_pair(x, x, keys, keys)["R@1"] == 1.0
    r = evaluate_pair(rng.standard_normal((n, 16)), rng.standard_normal((n, 16)), keys, keys)
    assert abs(r["R@10"] - r["chance"]["R@10"]) < 0.05


def test_true_target_missing_is_an_error():
    with pytest.raises(OneProtError):
        ranks(np.ones((1, 2)), np.ones((1, 2)), ["a"], ["b"])


def test_a_given_score_matrix_ranks_like_the_vectors_it_came_from():
    rng = np.random.default_rng(2)
    q, c = rng.standard_normal((30, 6)), rng.standard_normal((30, 6))
    keys = [f"k{i % 25}" for i in range(30)]
    scores = q @ c.T
    np.testing.assert_array_equal(score_ranks(scores, keys, keys), ranks(q, c, keys, keys))
    assert evaluate_scores(scores, keys, keys) == evaluate_pair(q, c, keys, keys)
    with pytest.raises(OneProtError, match="score matrix"):
        score_ranks(scores[:, :5], keys, keys)
