"""engine.evaluate.run: every ordered pair, the right query sets, baselines, evolution, probes, floors."""

import numpy as np
import pytest
import torch

from engine.data.store import ProteinStore
from engine.evaluate.run import content_key, evaluate, floor_checks
from engine.modality import StructureInput

MODALITIES = ["sequence", "structure", "structure_tokens", "pocket"]


@pytest.fixture(scope="module")
def setup(make_family_store, tmp_path_factory):
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(0)
    enc = {k: v for k, v in build().model.encoders.items() if k in MODALITIES}
    model = OneProt(ModelConfig(encoders=enc, dim=16)).eval()
    store = ProteinStore.open(make_family_store(tmp_path_factory.mktemp("s") / "store"))
    return model, store, evaluate(model, store, "test", log=lambda m: None)


def test_every_ordered_pair_with_kind_and_sizes(setup):
    model, store, res = setup
    assert {"retrieval", "baselines", "evolution", "probes"} <= set(res)
    pairs = {f"{a}->{b}" for a in MODALITIES for b in MODALITIES if a != b}
    assert set(res["retrieval"]) == pairs
    for pair, r in res["retrieval"].items():
        a, b = pair.split("->")
        both = set(store.ids("test", a)) & set(store.ids("test", b))
        assert r["n_queries"] == len(both) == r["n_candidates"]
        assert r["kind"] == ("trained" if "sequence" in (a, b) else "emergent")
        for name in ("unaligned", "random"):
            assert res["baselines"][name][pair]["n_queries"] == r["n_queries"]
    assert "sequence->structure" in res["baselines"]["classical"]
    assert "sequence->structure_tokens" not in res["baselines"]["classical"]
    # structure->sequence classical baseline compares the same residues: it must be perfect
    assert res["baselines"]["classical"]["structure->sequence"]["R@1"] == 1.0


def test_tmscore_baseline_for_pocket_and_structure_only(setup):
    model, store, res = setup
    tm = res["baselines"]["tmscore"]
    assert set(tm) == {"pocket->structure", "structure->pocket"}
    for pair, r in tm.items():
        assert r["method"].startswith("TM-score") and r["n_queries"] == res["retrieval"][pair]["n_queries"]
        assert 0.0 <= r["R@10"] <= 1.0 and "chance" in r
    assert "tmscore" in res["rules"]
    small = evaluate(model, store, "test", modalities=["structure", "pocket"], run_probes=False, tmscore_max=3,
                     log=lambda m: None)
    assert small["baselines"]["tmscore"]["pocket->structure"]["n_candidates"] == 3  # a seeded sample
    off = evaluate(model, store, "test", modalities=["structure", "pocket"], run_probes=False, tmscore_max=0,
                   log=lambda m: None)
    assert off["baselines"]["tmscore"] == {}


def test_length_baseline_for_whole_chain_pairs_only(setup):
    _, _, res = setup
    ln = res["baselines"]["length"]
    whole = ["sequence", "structure", "structure_tokens"]
    assert set(ln) == {f"{a}->{b}" for a in whole for b in whole if a != b}
    # every synthetic chain has 40 residues: length alone ties everything, and ties count against it
    for pair, r in ln.items():
        assert r["R@1"] == 0.0 and r["n_queries"] == res["retrieval"][pair]["n_queries"]
    assert "length" in res["rules"]


def test_length_scores_rank_the_same_length_first():
    from engine.evaluate.baselines import length_scores
    from engine.evaluate.retrieval import evaluate_scores

    seqs = ["A" * n for n in (30, 45, 60, 61, 200)]
    tokens = ["D" * n for n in (30, 45, 60, 61, 200)]
    structs = [StructureInput(sequence=s, coords=np.zeros((len(s), 4, 3), np.float32)) for s in seqs]
    for other in (tokens, structs):
        s = length_scores(seqs, other)
        assert s.shape == (5, 5) and np.all(np.argmax(s, axis=1) == np.arange(5))
    keys = [str(i) for i in range(5)]
    assert evaluate_scores(length_scores(seqs, tokens), keys, keys)["R@1"] == 1.0


def test_evolution_and_probes_present(setup):
    _, _, res = setup
    seq = res["evolution"]["sequence"]
    assert {"aligned", "unaligned", "encoder_features"} <= set(seq)
    assert 0.0 <= seq["aligned"]["roc_auc"] <= 1.0
    assert {"aligned", "unaligned_encoder", "random"} <= set(res["probes"]["family"])


def test_a_baseline_checkpoint_replaces_the_random_heads(setup):
    model, store, _ = setup
    res = evaluate(model, store, "test", baseline_model=model, modalities=["sequence", "structure"],
                   run_probes=False, log=lambda m: None)
    for pair, r in res["retrieval"].items():  # the same model as its own baseline: identical numbers
        assert res["baselines"]["unaligned"][pair]["R@10"] == pytest.approx(r["R@10"])


def test_floor_checks():
    r = {"sequence->text": {"R@1": 0.1, "R@10": 0.5, "kind": "trained", "chance": {"R@1": 0.005, "R@10": 0.05}},
         "text->pocket": {"R@1": 0.0, "R@10": 0.1, "kind": "emergent", "chance": {"R@1": 0.005, "R@10": 0.05}},
         "sequence->pocket": {"R@1": 0.3, "R@10": 1.0, "kind": "trained", "chance": {"R@1": 0.05, "R@10": 0.5}}}
    u = {"sequence->text": {"R@10": 0.1}, "text->pocket": {"R@10": 0.2}, "sequence->pocket": {"R@10": 0.6}}
    f = floor_checks(r, u)
    assert f["sequence->text"]["passes"] and f["sequence->text"]["x_chance"] == pytest.approx(10)
    assert f["sequence->text"]["x_chance_R@1"] == pytest.approx(20)
    assert not f["text->pocket"]["passes"] and not f["text->pocket"]["beats_unaligned"]
    # 20 candidates: 5x chance at R@10 is out of reach, and the check says why
    assert not f["sequence->pocket"]["passes"] and f["sequence->pocket"]["max_x_chance"] == pytest.approx(2)


def test_content_keys_equal_for_equal_content():
    c = np.zeros((3, 4, 3), np.float32)
    assert content_key("text", "ATP  Kinase") == content_key("text", "atp kinase")
    assert content_key("sequence", "MKV") != content_key("structure_tokens", "MKV")
    assert content_key("structure", StructureInput("AAA", c)) == content_key("structure", StructureInput("AAA", c.copy()))
    assert content_key("structure", StructureInput("AAA", c)) != content_key("structure", StructureInput("AAA", c + 1))
