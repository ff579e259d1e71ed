"""OneProt model: forward dict contract, normalisation, embed order, freezing, errors."""

import numpy as np
import pytest
import torch

from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.model import ModelConfig, OneProt
from engine.presets import get_preset

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(make_alignment_store, tmp_path_factory):
    return ProteinStore.open(make_alignment_store(tmp_path_factory.mktemp("s") / "store", n=24))


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return OneProt(get_preset("tiny").model)


def test_forward_returns_normalised_rows_per_modality(model, store):
    batches = {}
    for m in model.modalities:
        ids = store.ids(modality=m)[:3]
        batches[m] = model.collate(m, items_for(store, ids, m))
    out = model(batches)
    assert set(out) == set(model.modalities) == {"sequence", "structure", "structure_tokens", "pocket", "text"}
    for z in out.values():
        assert z.shape == (3, 32)
        assert torch.allclose(z.norm(dim=-1), torch.ones(3), atol=1e-5)


def test_embed_keeps_input_order_and_mode(model, store):
    ids = store.ids(modality="structure")[:7]
    items = items_for(store, ids, "structure")
    model.train()
    a = model.embed("structure", items, batch_tokens=100)
    b = model.embed("structure", items[::-1], batch_tokens=60)
    assert model.training
    assert a.dtype == np.float32 and a.shape == (7, 32)
    assert np.allclose(a, b[::-1], atol=1e-5)
    assert np.allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)
    assert model.embed("text", []).shape == (0, 32)


def test_freeze_policy_and_external_keys(model):
    text = model.encoders["text"]
    assert not any(p.requires_grad for p in text.parameters())
    assert all(p.requires_grad for p in model.heads["text"].parameters())
    model.ensure_loaded()  # a frozen bundled backbone is read on first use
    ext = model.external_keys()
    assert ext and all(k.startswith("encoders.text.backbone.") for k in ext)
    assert not model.log_inv_temperature.requires_grad
    assert model.logit_scale.item() == pytest.approx(1 / 0.07, rel=1e-5)


def test_learned_temperature_and_mlp_head():
    cfg = ModelConfig(encoders={"sequence": {"layers": 1, "dim": 16, "heads": 2}}, dim=8, head="mlp",
                      learn_temperature=True)
    m = OneProt(cfg)
    assert m.log_inv_temperature.requires_grad
    assert isinstance(m.heads["sequence"], torch.nn.Sequential)


def test_errors_name_the_problem(model):
    with pytest.raises(OneProtError, match="anchor"):
        OneProt({"encoders": {"text": {"model": "minilm"}}})
    with pytest.raises(OneProtError, match="choose one of"):
        OneProt({"encoders": {"sequence": {}, "smell": {}}})
    with pytest.raises(OneProtError, match="linear, mlp"):
        OneProt({"encoders": {"sequence": {"layers": 1, "dim": 8, "heads": 2}}, "head": "huge"})
    small = OneProt({"encoders": {"sequence": {"layers": 1, "dim": 8, "heads": 2}}, "dim": 4})
    with pytest.raises(OneProtError, match="has: sequence"):
        small.embed("pocket", [])
