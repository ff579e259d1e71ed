"""engine.evaluate.relatives: same-family precision@10 / mAP with the query's own protein excluded, and baselines."""

import numpy as np
import pytest
import torch

from engine.data.store import ProteinStore
from engine.evaluate.relatives import _random_ap, relatives_scores
from engine.evaluate.run import evaluate


def test_own_protein_is_excluded_and_ties_count_against():
    fams = ["A", "A", "B", "B"]
    ids = ["p0", "p1", "p2", "p3"]
    # every query scores itself highest; its relative second: P@1 (k=1) must be 1.0, not inflated by itself
    s = np.array([[9, 5, 1, 0], [5, 9, 0, 1], [1, 0, 9, 5], [0, 1, 5, 9]], dtype=float)
    r = relatives_scores(s, fams, fams, ids, ids, k=1)
    assert r["P@1"] == 1.0 and r["mAP"] == 1.0 and r["n_queries"] == 4
    assert r["chance"]["P@1"] == pytest.approx(1 / 3)
    # all scores equal: the relative is placed after every non-relative
    flat = relatives_scores(np.ones((4, 4)), fams, fams, ids, ids, k=1)
    assert flat["P@1"] == 0.0 and flat["mAP"] == pytest.approx(1 / 3)
    # a query whose family has no other member is skipped
    lone = relatives_scores(np.ones((1, 4)), ["C"], fams, ["q"], ids)
    assert lone is None


def test_random_ap_matches_simulation():
    rng = np.random.default_rng(0)
    n, r = 12, 3
    sims = []
    for _ in range(20000):
        hits = np.zeros(n, bool)
        hits[rng.choice(n, r, replace=False)] = True
        pos = np.flatnonzero(hits)
        sims.append((np.cumsum(hits)[pos] / (pos + 1)).mean())
    assert _random_ap(r, n) == pytest.approx(np.mean(sims), abs=0.01)
    assert _random_ap(n, n) == pytest.approx(1.0)


@pytest.fixture(scope="module")
def result(make_family_store, tmp_path_factory):
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(0)
    mods = ["sequence", "structure", "structure_tokens", "pocket"]
    enc = {k: v for k, v in build().model.encoders.items() if k in mods}
    model = OneProt(ModelConfig(encoders=enc, dim=16)).eval()
    store = ProteinStore.open(make_family_store(tmp_path_factory.mktemp("s") / "store"))
    return evaluate(model, store, "test", run_probes=False, relatives_tm_max=5, log=lambda m: None)


def test_every_ordered_pair_with_its_baselines(result):
    rel = result["relatives"]
    mods = ["sequence", "structure", "structure_tokens", "pocket"]
    assert set(rel) == {f"{a}->{b}" for a in mods for b in mods}  # same-modality pairs included
    for pair, r in rel.items():
        a, b = pair.split("->")
        assert {"aligned", "unaligned", "chance"} <= set(r)
        assert ("kmer" in r) == ({a, b} <= {"sequence", "structure", "pocket"})
        assert ("anchor_features" in r) == ({a, b} <= {"sequence", "structure"})
        assert ("tmscore" in r) == ({a, b} <= {"structure", "pocket"})
        if "tmscore" in r:
            assert r["tmscore"]["n_queries"] <= 5  # the seeded sample
        for v in (r["aligned"], r["chance"]):
            assert 0.0 <= v["P@10"] <= 1.0 and 0.0 <= v["mAP"] <= 1.0
    # synthetic families are mutated copies of one sequence: 3-mer composition finds them all
    assert rel["sequence->sequence"]["kmer"]["mAP"] == pytest.approx(1.0)
    assert rel["structure->sequence"]["kmer"]["mAP"] == pytest.approx(1.0)
    assert "relatives" in result["rules"]
    assert result["evolution"]["sequence"]["kmer_3mer"]["roc_auc"] > 0.9


def test_report_has_the_relatives_table(result, tmp_path):
    from engine.evaluate.report import relatives_table, write_report

    rows = relatives_table(result)
    assert rows[0][0] == "pair" and any("3-mer" in c for c in rows[0]) and len(rows) == 17
    write_report(result, tmp_path)
    assert "Relatives" in (tmp_path / "report.md").read_text()


def test_symmetric_tm_is_symmetric():
    from engine.evaluate.tmscore import SymmetricTM
    from engine.modality import StructureInput

    from test_tmscore import chain

    rng = np.random.default_rng(1)
    chains = [StructureInput("A" * n, chain(rng, n)) for n in (60, 80)]
    pocket = StructureInput(chains[0].sequence, chains[0].coords, focus=np.arange(10, 30))
    tm = SymmetricTM({"structure": chains, "pocket": [pocket]})
    m = tm.matrix("pocket", [0], "structure", [0, 1])
    assert m[0, 0] == pytest.approx(1.0, abs=1e-3) and m[0, 0] > m[0, 1]
    np.testing.assert_allclose(tm.matrix("structure", [0, 1], "pocket", [0]), m.T)
    assert tm.n_aligned == 2  # the reverse direction reused the cache
