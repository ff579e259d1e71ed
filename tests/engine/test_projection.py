"""engine.projection: seeded determinism, the on-disk cache, joint modalities, the kNN graph."""

import numpy as np
import pytest

from engine import projection as pj
from engine.errors import OneProtError


def blobs(n=300, dim=16, seed=0):
    rng = np.random.default_rng(seed)
    centres = 3 * rng.standard_normal((3, dim))
    return (centres[rng.integers(0, 3, n)] + rng.standard_normal((n, dim))).astype(np.float32)


@pytest.mark.slow  # umap-learn's numba compilation alone takes tens of seconds in a fresh process
def test_seeded_runs_repeat_and_the_cache_is_hit(tmp_path):
    x = blobs()
    a = pj.project(x, seed=3, n_epochs=30, cache_dir=None)
    b = pj.project(x, seed=3, n_epochs=30, cache_dir=None)
    np.testing.assert_allclose(a.coords, b.coords, atol=1e-5)
    first = pj.project(x, seed=3, n_epochs=30, cache_dir=tmp_path)
    again = pj.project(x, seed=3, n_epochs=30, cache_dir=tmp_path)
    assert not first.cached and again.cached
    np.testing.assert_array_equal(first.coords, again.coords)
    assert pj.cached_projection(x, seed=4, n_epochs=30, cache_dir=tmp_path) is None  # looks, never runs UMAP
    other = pj.project(x, seed=4, n_epochs=30, cache_dir=tmp_path)  # a different seed is a different entry
    assert not other.cached
    assert len(list((tmp_path / "projections").glob("*.npz"))) == 2
    hit = pj.cached_projection(x, seed=4, n_epochs=30, cache_dir=tmp_path)
    assert hit is not None and hit.cached
    np.testing.assert_array_equal(hit.coords, other.coords)


def test_cached_projection_ignores_damaged_entries(tmp_path, monkeypatch):
    x = blobs(n=40)
    monkeypatch.setattr(pj, "_umap", lambda x, params: np.zeros((len(x), 2), dtype=np.float32))
    pj.project(x, n_epochs=5, cache_dir=tmp_path)
    assert pj.cached_projection(x, n_epochs=5, cache_dir=tmp_path) is not None
    (entry,) = (tmp_path / "projections").glob("*.npz")
    entry.write_bytes(b"not an npz file")
    assert pj.cached_projection(x, n_epochs=5, cache_dir=tmp_path) is None
    np.savez(entry.with_suffix(""), coords=np.zeros((3, 2)))  # wrong shape for these 40 points
    assert pj.cached_projection(x, n_epochs=5, cache_dir=tmp_path) is None


@pytest.mark.slow
def test_joint_modalities_keep_ids_and_modality_per_point():
    x = blobs(200)
    p = pj.project({"sequence": x[:120], "text": x[120:]}, {"sequence": [f"s{i}" for i in range(120)],
                   "text": [f"t{i}" for i in range(80)]}, n_epochs=20, cache_dir=None)
    assert p.coords.shape == (200, 2) and np.isfinite(p.coords).all()
    assert p.modalities[:120] == ["sequence"] * 120 and p.modalities[120:] == ["text"] * 80
    assert p.ids[0] == "s0" and p.ids[-1] == "t79"


def test_bad_inputs():
    with pytest.raises(OneProtError, match="different dimensions"):
        pj.project({"a": np.ones((5, 3)), "b": np.ones((5, 4))}, cache_dir=None)
    with pytest.raises(OneProtError, match="ids"):
        pj.project(blobs(10), ids=["x"], cache_dir=None)
    with pytest.raises(OneProtError, match="NaN"):
        pj.project(np.full((10, 3), np.nan), cache_dir=None)


@pytest.mark.parametrize("n", [100, 25_000])
def test_knn_graph_puts_self_first_and_finds_true_neighbours(n):
    x = blobs(n, dim=8)
    x[1] = x[0]  # an exact duplicate must not displace a point from its own column 0
    idx, dist = pj.knn_graph(x, 10)
    assert (idx[:, 0] == np.arange(n)).all() and (dist[:, 0] == 0).all()
    assert (np.diff(dist[:, 1:], axis=1) >= -1e-5).all()  # sorted by distance
    assert 1 in idx[0] and 0 in idx[1]
