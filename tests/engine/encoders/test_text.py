"""Text encoder: bundled MiniLM offline, a local tiny BERT folder, CLS/mean pooling, LoRA."""

import pytest
import torch

from engine.encoders.text import TextEncoder, resolve_text_model
from engine.errors import OneProtError

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tiny_bert(tmp_path_factory):
    from transformers import BertConfig, BertModel, BertTokenizerFast

    folder = tmp_path_factory.mktemp("tiny_bert")
    vocab = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz") + ["kinase", "protein"]
    (folder / "vocab.txt").write_text("\n".join(vocab) + "\n")
    BertTokenizerFast(vocab_file=str(folder / "vocab.txt")).save_pretrained(folder)
    torch.manual_seed(0)
    BertModel(BertConfig(vocab_size=len(vocab), hidden_size=16, num_hidden_layers=1, num_attention_heads=2,
                         intermediate_size=32)).save_pretrained(folder)
    return str(folder)


def test_bundled_minilm_loads_offline():
    enc = TextEncoder({"model": "minilm"}).eval()
    out = enc(enc.collate(["ATP binding kinase", "a heme protein"]))
    assert out.pooled.shape == (2, 384) and enc.output_dim == 384
    assert enc.external_prefixes() == ["backbone."]
    assert not any(p.requires_grad for p in enc.parameters())


@pytest.mark.parametrize("pooling", ["cls", "mean"])
def test_local_folder_and_pooling(tiny_bert, pooling):
    enc = TextEncoder({"model": tiny_bert, "pooling": pooling}).eval()
    batch = enc.collate(["kinase protein", "protein"])
    out = enc(batch)
    assert out.pooled.shape == (2, 16)
    assert out.mask.sum(1).tolist() == [2, 1]  # [CLS]/[SEP]/padding excluded
    if pooling == "cls":
        assert torch.allclose(out.pooled, out.states[:, 0])


def test_lora_trains_only_adapters(tiny_bert):
    enc = TextEncoder({"model": tiny_bert, "lora_r": 2, "freeze": True})
    trainable = [n for n, p in enc.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)


def test_missing_model_folder():
    with pytest.raises(OneProtError, match="not found"):
        resolve_text_model("./no/such/folder")
    with pytest.raises(OneProtError, match="cls, mean"):
        TextEncoder({"model": "minilm", "pooling": "max"})


def test_frozen_cache_returns_the_same_vectors(tiny_bert):
    enc = TextEncoder({"model": tiny_bert, "cache_size": 2})
    texts = ["kinase", "protein kinase"]
    first = enc(enc.collate(texts))
    again = enc(enc.collate(texts))
    assert first.states is not None and again.states is None  # second call served from the cache
    assert torch.allclose(first.pooled, again.pooled)
    enc(enc.collate(["abc"]))
    assert len(enc._cache) == 2  # bounded


def test_frozen_local_backbone_is_read_on_first_use(tiny_bert):
    lazy = TextEncoder({"model": tiny_bert})
    assert not lazy.loaded and lazy.output_dim == 16 and lazy.state_dict() == {}
    eager = TextEncoder({"model": tiny_bert}).ensure_loaded()
    assert lazy.collate(["kinase"]) is not None and lazy.loaded  # collate needs the tokenizer
    texts = ["kinase protein", "protein"]
    assert torch.allclose(lazy.eval()(lazy.collate(texts)).pooled, eager.eval()(eager.collate(texts)).pooled)


def test_trainable_backbone_is_read_at_once(tiny_bert):
    assert TextEncoder({"model": tiny_bert, "freeze": False}).loaded
    assert TextEncoder({"model": tiny_bert, "lora_r": 2}).loaded


def test_lazy_backbone_reports_a_broken_folder_on_first_use(tiny_bert, tmp_path):
    import shutil

    broken = tmp_path / "broken"
    shutil.copytree(tiny_bert, broken)
    for f in broken.glob("*.safetensors"):
        f.unlink()
    for f in broken.glob("*.bin"):
        f.unlink()
    enc = TextEncoder({"model": str(broken)})
    with pytest.raises(OneProtError, match="could not load text model"):
        enc.ensure_loaded()
