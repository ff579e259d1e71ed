"""Checkpoints: round trip, hash, what is (not) saved, atomic replace, clear errors on damage."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import load_checkpoint, model_hash, read_meta, save_checkpoint
from engine.errors import OneProtError
from engine.model import OneProt
from engine.paths import DEMO_CHECKPOINT
from engine.presets import get_preset

torch.set_num_threads(1)
SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMAEELK", "PPGW"]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    torch.manual_seed(0)
    model = OneProt(get_preset("tiny").model)
    folder = save_checkpoint(model, tmp_path_factory.mktemp("ck") / "tiny", extra={"note": "test"})
    return model, folder


def test_round_trip_same_embeddings_and_hash(saved):
    model, folder = saved
    loaded = load_checkpoint(folder)
    assert np.allclose(model.embed("sequence", SEQS), loaded.embed("sequence", SEQS), atol=1e-6)
    assert np.allclose(model.embed("text", ["heme"]), loaded.embed("text", ["heme"]), atol=1e-6)
    assert model_hash(model) == model_hash(loaded) == read_meta(folder)["model_hash"]
    assert read_meta(folder)["note"] == "test" and not loaded.training


def test_frozen_bundled_text_backbone_is_not_saved(saved):
    _, folder = saved
    keys = load_file(str(folder / "model.safetensors")).keys()
    assert not any(k.startswith("encoders.text.backbone.") for k in keys)
    assert any(k.startswith("heads.text.") for k in keys)
    assert any(k.startswith("encoders.sequence.esm.") for k in keys)


def test_hash_changes_with_weights(saved):
    model, _ = saved
    other = OneProt(get_preset("tiny").model)
    assert model_hash(other) != model_hash(model)


def test_save_replaces_atomically(saved, tmp_path):
    model, _ = saved
    target = tmp_path / "ck"
    save_checkpoint(model, target)
    save_checkpoint(model, target)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ck"]


def _copy(folder, tmp_path):
    import shutil

    dst = tmp_path / "copy"
    shutil.copytree(folder, dst)
    return dst


def test_truncated_weights_name_the_file(saved, tmp_path):
    dst = _copy(saved[1], tmp_path)
    data = (dst / "model.safetensors").read_bytes()
    (dst / "model.safetensors").write_bytes(data[: len(data) // 2])
    with pytest.raises(OneProtError, match="model.safetensors"):
        load_checkpoint(dst)


def test_garbage_json_and_missing_files(saved, tmp_path):
    dst = _copy(saved[1], tmp_path)
    (dst / "config.json").write_text("{not json")
    with pytest.raises(OneProtError, match="config.json"):
        load_checkpoint(dst)
    (dst / "config.json").unlink()
    with pytest.raises(OneProtError, match="missing"):
        load_checkpoint(dst)
    with pytest.raises(OneProtError, match="no such checkpoint"):
        load_checkpoint(tmp_path / "nope")


def test_config_weights_mismatch_names_the_file(saved, tmp_path):
    dst = _copy(saved[1], tmp_path)
    cfg = json.loads((dst / "config.json").read_text())
    cfg["dim"] = 48
    (dst / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(OneProtError, match="model.safetensors.*shape|shape") as err:
        load_checkpoint(dst)
    assert "model.safetensors" in str(err.value)


@pytest.mark.skipif(not DEMO_CHECKPOINT.exists(), reason="bundled demo checkpoint not built yet")
def test_bundled_demo_checkpoint_loads():
    model = load_checkpoint("demo")
    assert "sequence" in model.modalities
    z = model.embed("sequence", SEQS)
    assert z.shape == (3, model.config.dim)
