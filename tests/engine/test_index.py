"""engine.index: exact vs approximate recall, the automatic kind choice, persistence, bad queries."""

import numpy as np
import pytest

from engine import index as ix
from engine.errors import OneProtError


def clustered(n, dim=32, clusters=20, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((clusters, dim))
    x = centres[rng.integers(0, clusters, n)] + 0.3 * rng.standard_normal((n, dim))
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def test_choose_kind_thresholds():
    assert ix.choose_kind(10) == "flat"
    assert ix.choose_kind(ix.EXACT_MAX) == "flat"
    assert ix.choose_kind(ix.EXACT_MAX + 1) == "hnsw"
    assert ix.choose_kind(ix.HNSW_MAX + 1) == "ivf"


def test_flat_is_exact():
    x = clustered(500)
    idx = ix.build_index(x)
    assert idx.info.kind == "flat" and idx.info.recall_at_10 == 1.0
    s, p = idx.search(x[:5], 3)
    assert (p[:, 0] == np.arange(5)).all()
    np.testing.assert_allclose(s[:, 0], 1.0, atol=1e-5)


@pytest.mark.parametrize("kind", ["hnsw", "ivf"])
def test_approximate_recall_against_exact(kind):
    both = clustered(4100)
    x, q = both[:4000], both[4000:]  # fresh queries from the same mixture
    idx = ix.build_index(x, kind=kind, target_recall=0.95)
    assert idx.info.kind == kind
    assert 0.95 <= idx.info.recall_at_10 <= 1.0  # calibration reached the target and recorded it
    _, exact = ix.exact_search(x, q, 10)
    _, approx = idx.search(q, 10)
    assert ix.recall_at_k(approx, exact, 10) >= 0.9  # fresh queries: close to the calibrated recall


def test_auto_choice_follows_size(monkeypatch):
    monkeypatch.setattr(ix, "EXACT_MAX", 100)
    monkeypatch.setattr(ix, "HNSW_MAX", 1000)
    assert ix.build_index(clustered(80)).info.kind == "flat"
    assert ix.build_index(clustered(500)).info.kind == "hnsw"
    assert ix.build_index(clustered(2000)).info.kind == "ivf"


def test_calibration_with_given_queries_reaches_the_target_for_them():
    # queries from another region (like a cross-modal query facing a modality gap) are harder
    # than the indexed points themselves; calibrating on them must still reach the target
    x = clustered(4000, seed=0)
    q = clustered(200, seed=5)
    idx = ix.build_index(x, kind="hnsw", target_recall=0.95, queries=q[:100])
    _, exact = ix.exact_search(x, q[100:], 10)
    _, approx = idx.search(q[100:], 10)
    assert idx.info.recall_at_10 >= 0.95
    assert ix.recall_at_k(approx, exact, 10) >= 0.9


def test_recall_at_k_counts_overlap():
    assert ix.recall_at_k(np.array([[1, 2, 3]]), np.array([[3, 4, 1]]), 3) == pytest.approx(2 / 3)


def test_save_load_round_trip(tmp_path):
    x = clustered(3000)
    idx = ix.build_index(x, kind="hnsw")
    idx.save(tmp_path / "v.faiss")
    back = ix.VectorIndex.load(tmp_path / "v.faiss")
    assert back.info == idx.info
    np.testing.assert_array_equal(back.search(x[:3], 5)[1], idx.search(x[:3], 5)[1])


def test_bad_inputs_are_clear_errors(tmp_path):
    idx = ix.build_index(clustered(50))
    with pytest.raises(OneProtError, match="dimension"):
        idx.search(np.ones((1, 7), np.float32))
    with pytest.raises(OneProtError, match="unknown index kind"):
        ix.build_index(clustered(50), kind="lsh")
    with pytest.raises(OneProtError, match="nothing to index"):
        ix.build_index(np.zeros((0, 4), np.float32))
    (tmp_path / "bad.faiss").write_bytes(b"junk")
    (tmp_path / "bad.faiss.json").write_text("{}")
    with pytest.raises(OneProtError):
        ix.VectorIndex.load(tmp_path / "bad.faiss")
