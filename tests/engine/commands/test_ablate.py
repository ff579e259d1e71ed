"""`oneprot ablate`: modality subsets x seeds on the recipe API, scored on valid; resumable; table and plot."""

import json

import pytest

from engine.cli import main
from engine.commands.ablate import pretrained_for
from engine.evaluate.ablation import subsets


def test_a_subset_without_an_encoder_drops_its_pretrained_weights():
    given = {"sequence": None, "structure_tokens": "runs/pretrain_structure_tokens"}
    assert pretrained_for(given, ["structure", "pocket"]) == {"sequence": None}
    assert pretrained_for(given, ["structure_tokens"]) == given


def test_subsets_are_all_pairs_and_leave_one_out():
    s = subsets(["sequence", "structure", "pocket", "text"])
    assert s["all"] == ["structure", "pocket", "text"]
    assert s["sequence+pocket"] == ["pocket"] and s["all-text"] == ["structure", "pocket"]
    assert len(s) == 1 + 3 + 3
    two = subsets(["sequence", "structure", "pocket"])  # all minus one = the other alone: no duplicates
    assert set(two) == {"all", "sequence+structure", "sequence+pocket"}


@pytest.fixture(scope="module")
def store(tmp_path_factory, make_alignment_store):
    # every third protein in valid, so valid holds all four families
    return make_alignment_store(tmp_path_factory.mktemp("abl") / "store", n=36, valid_every=3)


def test_ablate_runs_every_subset_and_seed_then_resumes(store, tmp_path, capsys):
    out = tmp_path / "abl"
    argv = ["ablate", "--preset", "tiny", "--data", str(store), "--out", str(out), "--modalities", "structure,pocket",
            "--seeds", "2", "--budget", "3", "--set", "train.batch_size=6", "--threads", "1"]
    assert main(argv) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert [r["subset"] for r in summary["rows"]] == ["all", "sequence+structure", "sequence+pocket"]
    assert len(summary["runs"]) == 6 and summary["steps_per_run"] == 3 and summary["split"] == "valid"
    for row in summary["rows"]:
        assert row["n_seeds"] == 2
        for key in ("partner_R@10", "relatives_P@10", "family_roc_auc"):
            m = row["metrics"][key]
            assert 0.0 <= m["mean"] <= 1.0 and m["sd"] >= 0.0 and len(m["values"]) == 2
    config = json.loads((out / "runs" / "sequence+pocket" / "seed1" / "model" / "config.json").read_text())
    assert set(config["encoders"]) == {"sequence", "pocket"}
    assert (out / "ablation.png").stat().st_size > 1000 and "± " in (out / "ablation.md").read_text()
    # untrained reference rows beside the subsets, on the same split and queries
    ref = summary["reference"]
    assert set(ref) == {"3-mer composition", "frozen anchor features", "chance"}
    assert ref["chance"]["family_roc_auc"] == 0.5 and 0.0 < ref["chance"]["relatives_P@10"] < 1.0
    assert 0.0 <= ref["3-mer composition"]["relatives_P@10"] <= 1.0 and "family_roc_auc" in ref["frozen anchor features"]
    assert "3-mer composition (no training)" in (out / "ablation.md").read_text()
    capsys.readouterr()
    for result in (out / "runs").glob("*/seed*/result.json"):  # runs scored before the reference rows existed
        old = json.loads(result.read_text())
        del old["metrics"]["reference"]
        result.write_text(json.dumps(old))
    before = (out / "runs" / "all" / "seed0" / "result.json").read_text()
    assert main(argv) == 0  # every finished run is reused; the reference rows come from re-scoring one model
    err = capsys.readouterr().err
    assert err.count("finished before, reused") == 6 and "reference rows: scoring all seed 0 again" in err
    assert (out / "runs" / "all" / "seed0" / "result.json").read_text() == before
    assert json.loads((out / "summary.json").read_text())["reference"] == ref


def test_a_time_budget_becomes_steps_once(store, tmp_path):
    out = tmp_path / "t"
    argv = ["ablate", "--preset", "tiny", "--data", str(store), "--out", str(out), "--modalities", "pocket",
            "--seeds", "1", "--budget", "2s", "--subsets", "all", "--threads", "1", "--report", str(tmp_path / "rep")]
    assert main(argv) == 0
    budget = json.loads((out / "budget.json").read_text())
    assert budget["steps_per_run"] >= 1 and budget["seconds_per_step"] > 0
    assert json.loads((tmp_path / "rep" / "summary.json").read_text())["steps_per_run"] == budget["steps_per_run"]
    assert (tmp_path / "rep" / "ablation.png").is_file() and not (out / "summary.json").exists()


def test_bad_input_is_refused(store, tmp_path, capsys):
    base = ["ablate", "--preset", "tiny", "--data", str(store), "--out", str(tmp_path / "x")]
    assert main(base + ["--split", "test"]) == 1
    assert "reporting only" in capsys.readouterr().err
    assert main(base + ["--budget", "fast"]) == 1
    assert "--budget fast" in capsys.readouterr().err
    assert main(base + ["--subsets", "sequence+nothing"]) == 1
    assert "unknown subsets" in capsys.readouterr().err
    assert not (tmp_path / "x").exists()


def test_the_feature_cache_skips_unchanged_encoders(store, monkeypatch):
    import torch

    from engine.data.store import ProteinStore
    from engine.evaluate import baselines as B
    from engine.evaluate.run import evaluate
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(0)
    enc = {k: v for k, v in build().model.encoders.items() if k in ("sequence", "pocket")}
    model = OneProt(ModelConfig(encoders=enc, dim=16)).eval()
    s = ProteinStore.open(store)
    cache: dict = {}
    first = evaluate(model, s, "valid", run_probes=False, tmscore_max=0, relatives_tm_max=0, log=lambda m: None,
                     pooled_cache=cache)
    assert len(cache) == 2

    def no_embedding(*a, **k):
        raise AssertionError("embedded again although the encoder did not change")

    monkeypatch.setattr(B, "pooled_features", no_embedding)
    again = evaluate(model, s, "valid", run_probes=False, tmscore_max=0, relatives_tm_max=0, log=lambda m: None,
                     pooled_cache=cache)
    assert again["retrieval"] == first["retrieval"]
    with torch.no_grad():
        next(model.encoders["pocket"].parameters()).add_(1.0)  # a changed encoder misses the cache
    with pytest.raises(AssertionError, match="embedded again"):
        evaluate(model, s, "valid", run_probes=False, tmscore_max=0, relatives_tm_max=0, log=lambda m: None,
                 pooled_cache=cache)
