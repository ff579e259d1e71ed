"""engine.significance: E-values from an empirical null of unrelated pairs and a probability map, fitted on valid, checked on test."""

import json

import numpy as np
import pandas as pd
import pytest

from engine.data.store import ProteinStore, write_store
from engine.embed import EmbeddingSet
from engine.modality import ProteinRecord
from engine.query import Hit
from engine.significance import (E_SIGNIFICANT, MIN_BIN_HITS, REPORT_DEALS, REPORT_PASSES, PairTable, SignificanceTable, _passes,
                                 annotate, assess, build_table, decile_check, fit_null, fit_probability, table_for)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """600 proteins: 8 families of 30 (tight clusters in a 16-d space) and 360 unlabelled singletons."""
    tmp = tmp_path_factory.mktemp("sig")
    rng = np.random.default_rng(0)
    dim, recs, vecs, split, cluster = 16, [], [], {}, {}
    centres = rng.normal(size=(8, dim))
    for i in range(600):
        fam = i // 30 if i < 240 else None
        v = (centres[fam] + 0.45 * rng.normal(size=dim)) if fam is not None else rng.normal(size=dim)
        pid = f"p{i:03d}"
        recs.append(ProteinRecord(id=pid, sequence="MKV" * 20, family=None if fam is None else f"F{fam}"))
        vecs.append(v / np.linalg.norm(v))
        cluster[pid] = i if fam is None else 1000 + i // 5  # families split into clusters of 5
        split[pid] = ("train", "valid", "test")[(cluster[pid] // 1) % 3] if fam is None else ("train", "valid", "test")[(i // 5) % 3]
    store = write_store(recs, tmp / "store", split, cluster)
    emb = tmp / "emb"
    emb.mkdir()
    np.save(emb / "sequence.npy", np.asarray(vecs, dtype=np.float32))
    (emb / "sequence.ids.txt").write_text("".join(f"{r.id}\n" for r in recs))
    pd.DataFrame({"id": [r.id for r in recs], "family": [r.family for r in recs]}).to_parquet(emb / "labels.parquet")
    (emb / "manifest.json").write_text(json.dumps({"format_version": 1, "model_hash": "h", "dim": dim,
                                                   "counts": {"sequence": 600}}))
    return {"store": ProteinStore.open(store), "eset": EmbeddingSet.open(emb), "centres": centres, "rng": rng}


def test_table_is_fitted_on_valid_and_checked_on_test(world):
    table, report = build_table(world["eset"], world["store"], folds=4)
    r = report["sequence->sequence"]
    split = world["store"].proteins.set_index("id")["split"]
    ids = world["eset"].ids("sequence")
    assert r["fit_queries"] == sum(split[i] == "valid" for i in ids)
    assert r["check_queries"] == sum(split[i] == "test" for i in ids) and r["fit_hits"] > 100
    assert table.meta["fit_split"] == "valid" and table.meta["check_split"] == "test"
    # unrelated queries reach E <= 0.05 about 5% of the time (1 - exp(-0.05) = 0.049), out of fold
    assert 0.0 <= r["unrelated_significant_share"] <= 0.12
    # and the power beside it: tight families' members find a relative in another cluster far more often
    assert r["queries_with_relatives"] == sum(split[i] in ("valid", "test") and int(i[1:]) < 240 for i in ids)
    assert r["relative_significant_share"] >= 0.5, r["relative_significant_share"]
    # reported when the map passes out of fold on valid in most deals of clusters, not in one lucky deal
    assert 0 <= r["fit_deals_passed"] <= REPORT_DEALS and r["calibrated"] == (r["fit_deals_passed"] >= REPORT_PASSES)
    assert r["fit_deals_passed"] >= _passes(r["fit_deciles"], every_decile=True)  # the report's valid deciles are one deal
    assert table.meta["min_bin"] == MIN_BIN_HITS and table.meta["report_deals"] == REPORT_DEALS
    assert r["deciles"] and sum(d["hits"] for d in r["deciles"]) == r["checked_hits"] > 100
    # the probability map never sees test queries: without them (no check split) it comes out the same
    other, _ = build_table(world["eset"], world["store"], folds=4, check_split="no-such-split")
    a, b = table.pair("sequence", "sequence"), other.pair("sequence", "sequence")
    assert np.array_equal(a.prob_x, b.prob_x) and np.array_equal(a.prob_y, b.prob_y)
    path = table.save(world["eset"].path)
    loaded = SignificanceTable.load(path.parent, world["eset"])
    assert loaded is not None and loaded.pair("sequence", "sequence").n_targets == 600
    assert loaded.pair("sequence", "sequence").power == r["relative_significant_share"]  # kept for the no-hit note


def test_null_tail_reaches_zero_at_a_perfect_score_and_older_tables_keep_their_axis():
    rng = np.random.default_rng(2)
    best = np.clip(0.6 + 0.1 * rng.standard_normal(500), -1, 0.98)  # unrelated queries' best scores
    table = fit_null(best, 1000)
    z = np.linspace(0.0, 1.0, 201)
    e = table.evalue(z)
    assert np.all(np.diff(e) <= 1e-12) and table.tail_scale == "log_distance"
    assert e[-1] < 1e-6  # identical (cosine 1): far beyond any unrelated best
    assert table.evalue(np.array([np.median(best)]))[0] == pytest.approx(np.log(2), rel=0.05)  # the body is empirical
    share = float((fit_null(best[:250], 1000).evalue(best[250:]) <= E_SIGNIFICANT).mean())
    assert share < 0.12  # unrelated queries of the same null seldom reach E <= 0.05
    old = table.to_json()
    del old["tail_scale"]  # a table written before the log-distance axis: its rate was fitted on scores
    again = PairTable.from_json(old)
    assert again.tail_scale == "score"
    x = table.tail_score + 0.01
    assert again.survival(np.array([x]))[0] == pytest.approx(table.tail_sf * np.exp(-table.tail_rate * 0.01))


def test_probability_map_is_monotone_binned_and_recovers_a_known_curve():
    rng = np.random.default_rng(1)
    x = rng.uniform(0, 1, 3000)  # scores
    truth = 1 / (1 + np.exp(-10 * (x - 0.5)))
    rel = rng.random(3000) < truth
    table = fit_null(rng.normal(size=200), 100)
    fit_probability(table, x, rel)
    assert np.all(np.diff(table.prob_y) >= 0) and len(table.prob_x) <= 3000 // MIN_BIN_HITS
    for xi in (0.1, 0.4, 0.5, 0.6, 0.9):
        assert abs(table.probability(np.array([xi]))[0] - 1 / (1 + np.exp(-10 * (xi - 0.5)))) < 0.1
    deciles = decile_check(table.probability(x), rel)
    assert all(d["within_0.1"] is not False for d in deciles)
    few = decile_check(np.array([0.05] * 5 + [0.95] * 30), np.array([True] * 5 + [True] * 30))
    assert few[0]["within_0.1"] is None and few[1]["within_0.1"] is True  # 5 hits: "too few", not a failure


def test_a_probability_is_shown_only_where_every_decile_was_checked():
    good = decile_check(np.array([0.05] * 40 + [0.95] * 40), np.array([False] * 38 + [True] * 2 + [True] * 40))
    assert _passes(good) and _passes(good, every_decile=True)
    # 5 hits at 0.45 (all unrelated): too few to judge, so the check passes, but the app would show 0.45 unchecked
    sparse = decile_check(np.array([0.05] * 40 + [0.45] * 5 + [0.95] * 40),
                          np.array([False] * 38 + [True] * 2 + [False] * 5 + [True] * 40))
    assert _passes(sparse) and not _passes(sparse, every_decile=True)
    off = decile_check(np.array([0.05] * 40 + [0.95] * 40), np.array([False] * 40 + [True] * 20 + [False] * 20))
    assert not _passes(off) and not _passes(off, every_decile=True)
    assert not _passes(decile_check(np.array([0.95] * 40), np.ones(40, bool)), every_decile=True)  # one decile: vacuous


def test_relatives_are_significant_and_noise_is_not(world):
    eset = world["eset"]
    table, _ = build_table(eset, world["store"], folds=4)
    v = eset.vectors("sequence")
    member = world["centres"][2] + 0.45 * world["rng"].normal(size=16)
    member /= np.linalg.norm(member)
    top = np.sort(v @ member)[::-1][:5]
    assert all(a.significant for a in assess(table, "sequence", "sequence", top[:3].tolist()))
    noise_best = []
    for _ in range(40):
        q = world["rng"].normal(size=16)
        q /= np.linalg.norm(q)
        noise_best.append(float((v @ q).max()))
    marks = assess(table, "sequence", "sequence", noise_best)
    assert sum(m.significant for m in marks) <= 6  # ~5% expected of 40 noise queries
    assert all(m.evalue > 0 for m in marks)
    assert assess(None, "sequence", "sequence", [0.9]) is None and assess(table, "text", "sequence", [0.9]) is None


def test_a_stale_table_is_ignored_and_hits_say_so(world, tmp_path):
    eset = world["eset"]
    table, _ = build_table(eset, world["store"], folds=4)
    table.meta["model_hash"] = "another-model"
    table.save(tmp_path)
    assert SignificanceTable.load(tmp_path, eset) is None
    (tmp_path / "significance.json").write_text("{not json")
    with pytest.raises(Exception, match="corrupted significance table"):
        SignificanceTable.load(tmp_path)
    table_for.__globals__["_TABLES"].clear()
    hits = [Hit(1, "a", 0.99, "sequence"), Hit(2, "b", 0.1, "sequence")]
    table.meta["model_hash"] = "h"
    table.save(eset.path)
    summary = annotate(eset, "sequence", "sequence", hits)
    assert summary["available"] and hits[0].significant and not hits[1].significant
    assert hits[0].evalue < E_SIGNIFICANT < hits[1].evalue
    assert hits[0].to_dict()["significant"] and "evalue" not in Hit(3, "c", 0.5, "sequence").to_dict()


def test_bins_hold_min_bin_hits_and_the_deals_only_decide_reporting(world):
    eset, store = world["eset"], world["store"]
    coarse, report = build_table(eset, store, folds=4, min_bin=100)
    fine, _ = build_table(eset, store, folds=4, min_bin=20)
    a, b = coarse.pair("sequence", "sequence"), fine.pair("sequence", "sequence")
    assert coarse.meta["min_bin"] == 100 and len(a.prob_x) <= report["sequence->sequence"]["fit_hits"] // 100 < len(b.prob_x)
    # other seeds deal other folds: the map itself (fitted on all valid queries) stays the same
    again = build_table(eset, store, folds=4, min_bin=100, seed=7)[0].pair("sequence", "sequence")
    assert np.array_equal(a.prob_x, again.prob_x) and np.array_equal(a.prob_y, again.prob_y)


def test_an_identical_protein_gets_a_high_probability(world):
    # A per-query background once made an identical sequence (cosine 1.00) insignificant; the map is a
    # function of the raw score, so a stored protein found again scores its top bin whatever else it finds.
    eset = world["eset"]
    table, _ = build_table(eset, world["store"], folds=4)
    pair = table.pair("sequence", "sequence")
    v = eset.vectors("sequence")
    member = next(i for i, f in enumerate(eset.labels["family"]) if isinstance(f, str))
    scores = np.sort(v @ v[member])[::-1][:10]  # itself first, at 1.0, then its family
    assert scores[0] > 0.999 and pair.probability(scores[:1])[0] >= 0.9
    pair.calibrated = True  # read through assess as the app does where the pair is reported
    marks = assess(table, "sequence", "sequence", scores.tolist())
    assert marks[0].significant and marks[0].probability >= 0.9
    assert all(a.probability >= b.probability for a, b in zip(marks, marks[1:]))  # monotone in the score
