"""engine.recipe: presets narrowed and overridden (dict or --set, typed), through `oneprot train` / `pretrain`."""

import json

import pytest

from engine.cli import main
from engine.errors import OneProtError
from engine.presets import get_preset
from engine.recipe import build_recipe, narrow, parse_sets


def test_sets_are_parsed_by_the_field_type():
    p = build_recipe("demo", overrides=parse_sets([
        "train.steps=7", "train.lr=2e-3", "train.bf16=false", "train.modality_weights={\"pocket\": 1}",
        "model.dim=64", "encoders.pocket.shell=8", "encoders.sequence.weights=null", "encoders.text.model=minilm",
        "pretrain.sequence.max_length=64"]))
    assert p.train.steps == 7 and p.train.lr == 0.002 and p.train.bf16 is False
    assert p.train.modality_weights == {"pocket": 1} and p.model.dim == 64
    assert p.model.encoders["pocket"]["shell"] == 8.0 and isinstance(p.model.encoders["pocket"]["shell"], float)
    assert p.model.encoders["sequence"]["weights"] is None and p.pretrain["sequence"].max_length == 64
    assert get_preset("demo").train.steps != 7  # the registry hands out fresh copies


@pytest.mark.parametrize("sets, message", [
    (["train.nope=1"], "valid: .*'batch_size'"),
    (["encoders.pocket.hiden=3"], "valid: .*'hidden'"),
    (["train.steps=2.5"], "not a valid int"),
    (["train.lr=fast"], "not a valid float"),
    (["model.encoders={}"], "encoders.<modality>"),
    (["encoders.structure.layers=2"], "no structure encoder"),
    (["steps=3"], "KEY=VALUE"),
    (["nope.steps=3"], "valid: \\['train'"),
])
def test_bad_sets_are_refused_with_the_valid_names(sets, message):
    with pytest.raises(OneProtError, match=message):
        build_recipe("demo", ["pocket"], parse_sets(sets))


def test_narrowing_keeps_the_anchor_and_refuses_absent_encoders():
    assert set(build_recipe("demo", ["pocket"]).model.encoders) == {"sequence", "pocket"}
    with pytest.raises(OneProtError, match="no encoder for \\['structure'\\]"):
        narrow(build_recipe("tiny", ["pocket"]), ["structure"])
    with pytest.raises(OneProtError, match="pretrained-pocket"):
        build_recipe("demo", ["structure"], pretrained={"pocket": "x"})


def test_train_set_reaches_the_saved_config(make_alignment_store, tmp_path):
    store = make_alignment_store(tmp_path / "store", n=24)
    assert main(["train", "--preset", "tiny", "--data", str(store), "--out", str(tmp_path / "run"), "--quiet",
                 "--modalities", "structure_tokens", "--steps", "2", "--set", "encoders.structure_tokens.train_mask=0.2",
                 "--set", "train.eval_every=0", "--set", "train.batch_size=8"]) == 0
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["encoders"]["structure_tokens"]["train_mask"] == 0.2 and set(config["encoders"]) == {
        "sequence", "structure_tokens"}
    assert main(["train", "--preset", "tiny", "--data", str(store), "--out", str(tmp_path / "r2"),
                 "--set", "train.nope=1"]) == 1


def test_pretrain_set_changes_the_recipe(make_alignment_store, tmp_path, capsys):
    store = make_alignment_store(tmp_path / "store", n=24)
    assert main(["pretrain", "--modality", "sequence", "--preset", "tiny", "--data", str(store), "--quiet",
                 "--out", str(tmp_path / "pre"), "--set", "pretrain.sequence.steps=2",
                 "--set", "encoders.sequence.layers=1"]) == 0
    config = json.loads((tmp_path / "pre" / "esm_config.json").read_text())
    assert config["arch"]["layers"] == 1
    assert json.loads(capsys.readouterr().out)["steps"] == 2
