"""Presets: the registry, and every preset builds and trains a step (paper with tiny stand-ins)."""

import pytest
import torch

from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.model import OneProt
from engine.presets import get_preset, list_presets
from engine.train import Trainer

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(make_alignment_records, tmp_path_factory):
    """The synthetic alignment store, with side-chain atoms so the paper preset's all-atom ProNet runs."""
    import numpy as np

    from engine.data.store import write_store

    records = make_alignment_records(24)
    rng = np.random.default_rng(0)
    for r in records:
        if r.coords is not None:
            r.extra["side_chains"] = (r.coords[:, 1:2] + rng.normal(0, 1.5, (len(r.coords), 6, 3))).astype(np.float32)
    splits = {r.id: ("valid" if i % 4 == 1 else "train") for i, r in enumerate(records)}
    path = write_store(records, tmp_path_factory.mktemp("s") / "store", splits, {r.id: i for i, r in enumerate(records)})
    return ProteinStore.open(path)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    """A 1-layer BertModel + tokenizer saved to a folder, standing in for BiomedBERT."""
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)
    return str(folder)


def test_registry_and_unknown_name():
    assert {"tiny", "demo", "paper"} <= set(list_presets())
    with pytest.raises(OneProtError, match="tiny, demo, paper"):
        get_preset("huge")
    a, b = get_preset("demo"), get_preset("demo")
    a.model.encoders["structure_tokens"]["layers"] = 99
    assert b.model.encoders["structure_tokens"]["layers"] != 99  # each call is a fresh copy


def test_paper_preset_is_the_published_configuration():
    p = get_preset("paper")
    enc = p.model.encoders
    assert enc["sequence"]["weights"] == "esm2_t33_650M_UR50D" and enc["sequence"]["freeze"]
    assert enc["sequence"]["pooling"] == "attention1d"
    assert enc["structure_tokens"]["weights"] == "esm2_t12_35M_UR50D" and not enc["structure_tokens"]["freeze"]
    assert enc["structure_tokens"]["alphabet"] == "3di_upstream" and enc["structure_tokens"]["pooling"] == "mean_bos_eos"
    assert p.model.head == "ln_linear" and p.model.heads == {"text": "ln_mlp"}
    assert p.train.l1_weight == 0.01 and not p.train.bf16
    assert p.train.batch_size == 2048 and p.train.modality_batch_sizes == {"structure_tokens": 1024}
    assert enc["structure"]["type"] == "pronet" and enc["structure"]["level"] == "allatom"
    assert enc["structure"]["num_blocks"] == 4 and enc["structure"]["hidden_channels"] == 128
    assert enc["structure"]["cutoff"] == 10.0 and enc["structure"]["max_neighbors"] == 32
    assert enc["structure"]["dropout"] == 0.25 and enc["structure"]["out_channels"] == 1024
    assert enc["pocket"]["level"] == "backbone" and enc["pocket"]["pocket_residues"] == 100
    assert "BiomedBERT" in enc["text"]["model"] and enc["text"]["freeze"]
    assert p.model.dim == 1024 and p.model.temperature == 0.07 and not p.model.learn_temperature
    assert p.train.lr == 1e-3 and p.train.grad_clip == 1.0


def test_demo_preset_keeps_its_own_choices():
    d = get_preset("demo")
    assert d.model.head == "linear" and not d.model.heads and d.train.l1_weight == 0.0
    # the frozen UniRep-256 anchor with mean+max pooling, chosen on valid (engine/presets/demo.py)
    assert d.model.encoders["sequence"] == {"type": "unirep", "size": 256, "pooling": "mean_max", "freeze": True,
                                            "max_length": 1000}
    assert d.model.encoders["structure_tokens"]["pooling"] == "attention"
    assert "alphabet" not in d.model.encoders["structure_tokens"]


def _shrink_paper(preset, bert_folder):
    """Same structure as the paper preset, with toy sizes and no downloads."""
    enc = preset.model.encoders
    for m in ("sequence", "structure_tokens"):
        enc[m].update(weights=None, layers=1, dim=16, heads=2)
    for m in ("structure", "pocket"):
        enc[m].update(hidden_channels=16, num_blocks=1, mid_emb=8, out_channels=16)
    enc["text"]["model"] = bert_folder
    preset.model.dim = 16
    preset.train.batch_size = 4
    preset.train.modality_batch_sizes = {"structure_tokens": 2}
    preset.train.eval_size = 4
    return preset


@pytest.mark.parametrize("name", list_presets())
def test_every_preset_instantiates_and_trains_a_step(name, store, tiny_bert, tmp_path):
    preset = get_preset(name)
    if name == "paper":
        preset = _shrink_paper(preset, tiny_bert)
    torch.manual_seed(0)
    model = OneProt(preset.model)
    assert set(model.modalities) == set(preset.model.encoders)
    trainer = Trainer(model, store, preset.train, tmp_path / "run", progress=False)
    before = {k: v.clone() for k, v in model.heads.state_dict().items()}
    m = trainer.train_step()
    assert m["step"] == 1 and m["loss"] > 0
    after = model.heads.state_dict()
    assert any(not torch.equal(before[k], after[k]) for k in before)
