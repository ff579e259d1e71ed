"""Upstream checkpoints: tiny reference models from transformers (and our ProNet under DIG's names) written in
upstream's key layout, converted, and compared output for output; then the CLI round trip."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from engine.checkpoint import load_checkpoint, model_hash, read_meta
from engine.cli import main
from engine.encoders.esm_arch import UPSTREAM_3DI_ADDED, make_alphabet
from engine.errors import OneProtError

torch.set_num_threads(1)
pytestmark = pytest.mark.slow  # the module's fixture builds and converts five tiny models (~10 s on 2 cores)
H, D = 16, 12  # ESM / BERT width, shared space


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    """A synthetic upstream release: config.yaml + pytorch_model.bin, plus reference models and tokenizers."""
    from transformers import BertConfig, BertModel, BertTokenizerFast, EsmConfig, EsmModel, EsmTokenizer

    from engine.encoders.pronet import StructureProNet

    root = tmp_path_factory.mktemp("upstream")
    torch.manual_seed(0)
    vocab = root / "esm_vocab.txt"
    vocab.write_text("\n".join(make_alphabet("protein").all_toks) + "\n")
    esm_cfg = dict(hidden_size=H, num_hidden_layers=2, num_attention_heads=2, intermediate_size=4 * H,
                   position_embedding_type="rotary", token_dropout=True, pad_token_id=1, mask_token_id=32,
                   max_position_embeddings=1026, emb_layer_norm_before=False, layer_norm_eps=1e-5)
    seq_esm = EsmModel(EsmConfig(vocab_size=33, **esm_cfg), add_pooling_layer=False).eval()
    seq_esm.save_pretrained(root / "esm_seq")
    tok_esm = EsmModel(EsmConfig(vocab_size=33, **esm_cfg)).eval()
    tok_esm.resize_token_embeddings(33 + 21)  # upstream: the 21 added 3Di tokens
    seq_tok = EsmTokenizer(str(vocab))
    tdi_tok = EsmTokenizer(str(vocab))
    tdi_tok.add_tokens(list(UPSTREAM_3DI_ADDED))
    bert_dir = root / "bert"
    bert_dir.mkdir()
    words = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"] + list("abcdefghijklmnopqrstuvwxyz0123456789")
    (bert_dir / "vocab.txt").write_text("\n".join(words) + "\n")
    BertTokenizerFast(vocab_file=str(bert_dir / "vocab.txt")).save_pretrained(bert_dir)
    bert = BertModel(BertConfig(vocab_size=len(words), hidden_size=H, num_hidden_layers=1, num_attention_heads=2,
                                intermediate_size=32)).eval()
    bert.save_pretrained(bert_dir)
    small = {"num_blocks": 1, "hidden_channels": 8, "out_channels": D, "mid_emb": 8}
    graph = StructureProNet({"level": "allatom", **small})
    pocket = StructureProNet({"level": "backbone", **small})

    def ln_linear(i):
        return torch.nn.Sequential(torch.nn.LayerNorm(i), torch.nn.Linear(i, D, bias=False))

    proj = {"sequence": ln_linear(H), "struct_token": ln_linear(H), "struct_graph": ln_linear(D), "pocket": ln_linear(D),
            "text": torch.nn.Sequential(torch.nn.LayerNorm(H), torch.nn.Linear(H, (H + D) // 2, bias=False),
                                        torch.nn.GELU(), torch.nn.LayerNorm((H + D) // 2),
                                        torch.nn.Linear((H + D) // 2, D, bias=False))}
    for p in proj.values():
        for mod in p:
            if isinstance(mod, torch.nn.LayerNorm):  # non-trivial affine parameters
                torch.nn.init.normal_(mod.weight, 1.0, 0.2)
                torch.nn.init.normal_(mod.bias, 0.0, 0.2)
    conv = torch.nn.Conv1d(H, 1, 1)
    state = {}
    for name, module in (("sequence", seq_esm), ("struct_token", tok_esm), ("text", bert)):
        state.update({f"network.{name}.transformer.{k}": v for k, v in module.state_dict().items()})
    state.update({f"network.struct_graph.encoder.{k}": v for k, v in graph.state_dict().items()})
    state.update({f"network.pocket.encoder.{k}": v for k, v in pocket.state_dict().items()})
    state["network.sequence.pooling.layer.weight"] = conv.weight.detach()
    state["network.sequence.pooling.layer.bias"] = conv.bias.detach()
    for name, p in proj.items():
        state.update({f"network.{name}.proj.{k}": v for k, v in p.state_dict().items()})
        if name != "sequence":
            state[f"network.{name}.norm.1.log_logit_scale"] = torch.tensor(math.log(1 / 0.07))
    src = root / "release"
    src.mkdir()
    torch.save({k: v.clone() for k, v in state.items()}, src / "pytorch_model.bin")
    (src / "config.yaml").write_text(f"""model:
  components:
    sequence: {{model_name_or_path: {root / 'esm_seq'}, pooling_type: attention1d, proj_type: linear, frozen: true}}
    struct_token: {{model_name_or_path: {root / 'esm_seq'}, pooling_type: mean, proj_type: linear}}
    struct_graph: {{proj_type: linear, encoder: {{level: allatom, dropout: 0.25}}}}
    pocket: {{proj_type: linear, encoder: {{level: backbone}}}}
    text: {{model_name_or_path: {bert_dir}, pooling_type: cls, proj_type: mlp, frozen: true}}
  use_l1_regularization: true
""")
    return {"src": src, "state": state, "seq_esm": seq_esm, "tok_esm": tok_esm, "bert": bert, "conv": conv,
            "proj": proj, "seq_tok": seq_tok, "tdi_tok": tdi_tok, "bert_dir": bert_dir, "graph": graph}


@pytest.fixture(scope="module")
def converted(upstream, tmp_path_factory):
    out = tmp_path_factory.mktemp("conv") / "ckpt"
    assert main(["convert-upstream", str(upstream["src"]), "--out", str(out)]) == 0
    return out


def _upstream_sequence(u, seq):
    ids = u["seq_tok"]([seq], return_tensors="pt").input_ids
    mask = ids != 1
    with torch.no_grad():
        h = u["seq_esm"](input_ids=ids, attention_mask=mask.long()).last_hidden_state
        attn = u["conv"](h.transpose(1, 2)).transpose(1, 2).squeeze(-1).masked_fill(~mask, float("-inf"))
        pooled = (torch.softmax(attn, -1).unsqueeze(-1) * h).sum(1)
        return F.normalize(u["proj"]["sequence"](pooled), dim=-1)


def _upstream_3di(u, saprot):
    struct = "".join(saprot[i] for i in range(1, len(saprot), 2)).replace("#", "")
    ids = u["tdi_tok"]([struct], return_tensors="pt").input_ids
    mask = (ids != 1).long()
    with torch.no_grad():
        h = u["tok_esm"](input_ids=ids, attention_mask=mask).last_hidden_state
        pooled = (h * mask.unsqueeze(2)).sum(1) / mask.sum(1, keepdim=True)
        return F.normalize(u["proj"]["struct_token"](pooled), dim=-1)


def _upstream_text(u, text):
    from transformers import AutoTokenizer

    ids = AutoTokenizer.from_pretrained(u["bert_dir"])([text], return_tensors="pt", max_length=512,
                                                       truncation=True).input_ids
    with torch.no_grad():
        h = u["bert"](input_ids=ids, attention_mask=(ids != 0).long()).last_hidden_state
        return F.normalize(u["proj"]["text"](h[:, 0]), dim=-1)


def test_converted_encoders_reproduce_the_reference_models(upstream, converted):
    model = load_checkpoint(converted)
    for seq in ("MKTAYIAKQRQISFVKSHFSRQ", "GAVLIPFYW"):
        want = _upstream_sequence(upstream, seq)
        got = torch.from_numpy(model.embed("sequence", [seq]))
        assert torch.allclose(got, want, atol=1e-5), (got - want).abs().max()
    saprot = "MdEvVpK#LaSqGw"
    got = torch.from_numpy(model.embed("structure_tokens", [saprot]))
    assert torch.allclose(got, _upstream_3di(upstream, saprot), atol=1e-5)
    text = "a kinase that binds atp 42"
    got = torch.from_numpy(model.embed("text", [text]))
    assert torch.allclose(got, _upstream_text(upstream, text), atol=1e-5)


def test_structure_encoder_keeps_the_pronet_weights_and_head(upstream, converted):
    from tests_helpers_side_chains import chain_item

    model = load_checkpoint(converted)
    item = chain_item()
    with torch.no_grad():
        ref = upstream["graph"].eval()
        want = F.normalize(upstream["proj"]["struct_graph"](ref(ref.collate([item])).pooled), dim=-1)
    got = torch.from_numpy(model.embed("structure", [item]))
    assert torch.allclose(got, want, atol=1e-5)


def test_every_upstream_key_is_accounted_for_and_the_hash_recorded(upstream, converted):
    meta = read_meta(converted)
    rep = meta["conversion"]
    assert rep["upstream_tensors"] == len(upstream["state"])
    assert rep["consumed"] + len(rep["checked_equal"]) + len(rep["unused"]) == len(upstream["state"])
    assert "network.struct_token.transformer.pooler.dense.weight" in rep["unused"]
    assert "network.text.transformer.pooler.dense.weight" in rep["unused"]
    assert all(k.endswith("log_logit_scale") or k.endswith("inv_freq") for k in rep["checked_equal"])
    model = load_checkpoint(converted)
    assert meta["model_hash"] == model_hash(model) and len(meta["upstream_weights_sha256"]) == 64
    assert model.config.temperature == pytest.approx(0.07) and model.config.heads == {"text": "ln_mlp"}


def test_load_checkpoint_accepts_the_upstream_folder(upstream, converted, tmp_path, monkeypatch):
    import engine.paths

    monkeypatch.setattr(engine.paths, "CACHE_DIR", tmp_path / "cache")
    model = load_checkpoint(upstream["src"])
    assert model_hash(model) == read_meta(converted)["model_hash"]
    assert (tmp_path / "cache" / "upstream").is_dir()  # converted once, then read from there


def test_wrong_shapes_and_foreign_files_fail_clearly(upstream, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    state = dict(upstream["state"])
    state["network.sequence.proj.1.weight"] = torch.zeros(D, H + 1)
    torch.save(state, bad / "pytorch_model.bin")
    (bad / "config.yaml").write_text((upstream["src"] / "config.yaml").read_text())
    with pytest.raises(OneProtError, match="shape"):
        from engine.checkpoint import convert_upstream

        convert_upstream(bad, tmp_path / "out")
    torch.save({"x": torch.zeros(1)}, bad / "pytorch_model.bin")
    with pytest.raises(OneProtError, match="network"):
        convert_upstream(bad, tmp_path / "out")
    (bad / "pytorch_model.bin").write_bytes(b"not a zip")
    with pytest.raises(OneProtError, match="weights_only"):
        convert_upstream(bad, tmp_path / "out")


def test_convert_and_embed_round_trip_through_the_cli(make_alignment_records, converted, tmp_path):
    from engine.data.store import write_store
    from engine.embed import EmbeddingSet

    records = make_alignment_records(12)
    rng = np.random.default_rng(0)
    for r in records:
        if r.coords is not None:
            r.extra["side_chains"] = (r.coords[:, 1:2] + rng.normal(0, 1.5, (len(r.coords), 6, 3))).astype(np.float32)
    store = write_store(records, tmp_path / "store", {r.id: "train" for r in records}, {r.id: i for i, r in enumerate(records)})
    assert main(["embed", "--checkpoint", str(converted), "--data", str(store), "--out", str(tmp_path / "emb"),
                 "--device", "cpu", "--no-index"]) == 0
    emb = EmbeddingSet.open(tmp_path / "emb")
    assert set(emb.modalities) == {"sequence", "structure_tokens", "structure", "pocket", "text"}
    assert emb.model_hash == read_meta(converted)["model_hash"]
    v = emb.vectors("structure")
    assert v.shape[1] == D and np.allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)


def test_a_hugging_face_repository_name_is_downloaded_then_converted(upstream, converted, tmp_path, monkeypatch):
    """The hub is unreachable here: hf_hub_download is replaced by a copy from the synthetic release."""
    import shutil

    import huggingface_hub

    import engine.paths

    calls = []

    def fake_download(repo_id, filename, **kwargs):
        calls.append((repo_id, filename))
        dst = tmp_path / "hub" / filename
        dst.parent.mkdir(exist_ok=True)
        shutil.copyfile(upstream["src"] / filename, dst)
        return str(dst)

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", fake_download)
    monkeypatch.setattr(engine.paths, "CACHE_DIR", tmp_path / "cache")
    model = load_checkpoint("SomeOrg/oneprot")
    assert calls == [("SomeOrg/oneprot", "config.yaml"), ("SomeOrg/oneprot", "pytorch_model.bin")]
    assert model_hash(model) == read_meta(converted)["model_hash"]
    load_checkpoint("SomeOrg/oneprot")  # the second time comes from the converted cache
    assert len(calls) == 2


def test_unreachable_repository_name_fails_clearly(tmp_path, monkeypatch):
    import huggingface_hub

    import engine.paths

    def offline(repo_id, filename, **kwargs):
        raise OSError("network is unreachable")

    monkeypatch.setattr(huggingface_hub, "hf_hub_download", offline)
    monkeypatch.setattr(engine.paths, "CACHE_DIR", tmp_path / "cache")
    with pytest.raises(OneProtError, match="needs internet"):
        load_checkpoint("NoSuch/repo")
