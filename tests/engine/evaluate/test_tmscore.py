"""engine.evaluate.tmscore: TM-align of a pocket's CA atoms onto whole chains, normalised by the pocket."""

import numpy as np
import pytest

from engine.evaluate.retrieval import evaluate_scores
from engine.evaluate.tmscore import TMScorer, align_structures, ca_trace, tm_score_matrix
from engine.modality import StructureInput


def chain(rng, n):
    """(n, 4, 3) backbone: a 3.8 A random-walk CA trace with fixed N / C / O offsets."""
    steps = rng.standard_normal((n, 3))
    ca = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    offsets = np.array([[-1.2, 0.6, 0.0], [0.0, 0.0, 0.0], [1.3, 0.5, 0.1], [2.0, 1.4, 0.3]])
    return (ca[:, None, :] + offsets[None]).astype(np.float32)


@pytest.fixture(scope="module")
def world():
    rng = np.random.default_rng(0)
    chains = [StructureInput("A" * n, chain(rng, n)) for n in (120, 150, 100, 130)]
    focus = np.array(list(range(20, 32)) + list(range(60, 70)) + list(range(90, 100)))  # three stretches of chain 0
    pocket = StructureInput(chains[0].sequence, chains[0].coords, focus=focus)
    return chains, pocket


def test_a_pocket_scores_its_own_chain_highest(world):
    chains, pocket = world
    m = tm_score_matrix([pocket], chains)
    assert m.shape == (1, 4)
    assert m[0, 0] == pytest.approx(1.0, abs=1e-3)  # normalised by the pocket: fully contained
    assert m[0, 0] > m[0, 1:].max() + 0.2
    # structure->pocket is the same score, transposed
    np.testing.assert_allclose(tm_score_matrix(chains, [pocket], pocket_side="candidate"), m.T)
    with pytest.raises(ValueError):
        tm_score_matrix([pocket], chains, pocket_side="both")


def test_missing_ca_coordinates_are_dropped(world):
    chains, pocket = world
    coords = chains[0].coords.copy()
    coords[[21, 25, 61, 5], 1] = np.nan  # three pocket residues and one elsewhere lose their CA
    coords[70, 0] = np.nan  # a missing N alone does not drop a residue
    holed = StructureInput(chains[0].sequence, coords)
    holed_pocket = StructureInput(holed.sequence, coords, focus=pocket.focus)
    ca, letters = ca_trace(holed_pocket)
    assert len(ca) == len(letters) == len(pocket.focus) - 3 and np.isfinite(ca).all()
    assert len(ca_trace(holed)[0]) == len(coords) - 4
    m = tm_score_matrix([holed_pocket], [holed] + chains[1:])
    assert np.isfinite(m).all() and m[0, 0] == pytest.approx(1.0, abs=1e-3) and m[0, 0] == m[0].max()
    # a pocket with no usable CA at all scores 0 rather than failing
    empty = coords.copy()
    empty[pocket.focus, 1] = np.nan
    assert tm_score_matrix([StructureInput(holed.sequence, empty, focus=pocket.focus)], chains)[0].tolist() == [0.0] * 4


def test_scorer_aligns_each_pair_once_and_feeds_retrieval_metrics(world):
    chains, pocket = world
    pockets = [pocket] + [StructureInput(c.sequence, c.coords, focus=np.arange(10, 40)) for c in chains[1:]]
    scorer = TMScorer(pockets, chains)
    m = scorer.matrix(range(4), range(4))
    assert scorer.n_aligned == 16
    np.testing.assert_array_equal(scorer.matrix([2, 0], [1, 3]), m[np.ix_([2, 0], [1, 3])])
    assert scorer.n_aligned == 16  # reused, not realigned
    keys = [f"k{i}" for i in range(4)]
    res = evaluate_scores(m, keys, keys)
    assert res["R@1"] == 1.0 and res["n_candidates"] == 4 and res["chance"]["R@1"] == pytest.approx(0.25)


def test_align_structures_recovers_a_rigid_motion_and_scores_both_ways(world):
    chains, _ = world
    x, seq = ca_trace(chains[1])
    angle = 0.7
    rot = np.array([[np.cos(angle), -np.sin(angle), 0.0], [np.sin(angle), np.cos(angle), 0.0], [0.0, 0.0, 1.0]])
    moved = x @ rot.T + np.array([5.0, -3.0, 12.0])
    fit = align_structures(moved, seq, x, seq)
    assert fit.tm_mobile == pytest.approx(1.0, abs=1e-3) and fit.tm_target == pytest.approx(1.0, abs=1e-3)
    assert fit.rmsd < 0.01 and fit.aligned == len(x)
    np.testing.assert_allclose(moved @ fit.r.T + fit.t, x, atol=0.01)  # applied as x @ r.T + t
    # an unrelated random walk: a low score, normalised by each side's own length
    other = align_structures(*ca_trace(chains[2]), x, seq)
    assert other.tm_target < 0.5 and other.tm_mobile != other.tm_target
    assert align_structures(x[:2], seq[:2], x, seq) is None  # too few residues to superpose
