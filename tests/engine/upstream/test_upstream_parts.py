"""Upstream OneProt's heads, poolings, L1 term and 3Di vocabulary, each selectable by name."""

import pytest
import torch

from engine.checkpoint import load_checkpoint
from engine.data.tokens3di import is_saprot, saprot_to_3di, upstream_3di_letters
from engine.encoders.esm_arch import UPSTREAM_3DI_ADDED, make_alphabet
from engine.encoders.pooling import make_pooling
from engine.encoders.structure_tokens import StructureTokensEncoder
from engine.encoders.sequence import SequenceEncoder
from engine.loss import PairwiseInfoNCE
from engine.model import make_head

torch.set_num_threads(1)


def test_upstream_heads_have_layernorm_and_no_biases():
    head = make_head("ln_linear", 12, 8)
    assert isinstance(head[0], torch.nn.LayerNorm) and head[1].bias is None and head[1].weight.shape == (8, 12)
    text = make_head("ln_mlp", 768, 1024)
    assert [type(m).__name__ for m in text] == ["LayerNorm", "Linear", "GELU", "LayerNorm", "Linear"]
    assert text[1].weight.shape == (896, 768) and text[4].weight.shape == (1024, 896)
    assert text[1].bias is None and text[4].bias is None
    x = torch.randn(3, 768)
    want = text[4](text[3](torch.nn.functional.gelu(text[1](text[0](x)))))
    assert torch.allclose(text(x), want)


def _encoder(cls, **cfg):
    torch.manual_seed(0)
    return cls({"layers": 1, "dim": 16, "heads": 2, **cfg}).eval()


def test_attention1d_scores_every_token_including_bos_and_eos():
    enc = _encoder(SequenceEncoder, pooling="attention1d")
    batch = enc.collate(["MKTAYIAK", "MKV"])
    tokens = batch["tokens"]
    with torch.no_grad():
        out = enc(batch)
        full = enc.esm(tokens, repr_layers=[1])["representations"][1]
        for i in range(2):
            real = tokens[i] != enc.alphabet.padding_idx  # BOS, residues, EOS
            s = full[i][real]
            w = torch.softmax(enc.pool.layer(s).squeeze(-1), 0)
            assert torch.allclose(out.pooled[i], (w[:, None] * s).sum(0), atol=1e-6)
    assert out.states.shape[1] == 8 and out.mask.sum().item() == 11  # states stay residue-only


def test_mean_bos_eos_averages_every_non_padding_token():
    enc = _encoder(StructureTokensEncoder, pooling="mean_bos_eos", alphabet="3di_upstream")
    batch = enc.collate(["dpvv", "acdefg"])
    with torch.no_grad():
        out = enc(batch)
        full = enc.esm(batch["tokens"], repr_layers=[1])["representations"][1]
    assert torch.allclose(out.pooled[0], full[0, :6].mean(0), atol=1e-6)  # BOS + 4 + EOS
    assert torch.allclose(out.pooled[1], full[1, :8].mean(0), atol=1e-6)


def test_poolings_by_name():
    assert make_pooling("attention1d", 8).layer.weight.shape == (1, 8)
    with pytest.raises(Exception, match="attention1d"):
        make_pooling("median", 8)


def test_upstream_3di_vocabulary_and_saprot_strings():
    a = make_alphabet("3di_upstream")
    assert len(a.all_toks) == 54
    assert a.all_toks[:33] == make_alphabet("protein").all_toks
    assert [a.tok_to_idx[t] for t in UPSTREAM_3DI_ADDED] == list(range(33, 54))
    assert is_saprot("MdEvK#") and not is_saprot("DVVP") and not is_saprot("dvvp")
    assert saprot_to_3di("MdEvK#") == "dv" and upstream_3di_letters("MdEvK#") == "dv"
    assert upstream_3di_letters("DPV#") == "dpv"
    enc = _encoder(StructureTokensEncoder, alphabet="3di_upstream")
    ids = enc.tokenize("MpEy")  # SaProt: p, y
    assert ids == [33, 34]
    assert enc.tokenize("PY") == [33, 34] == enc.tokenize("py")


def test_l1_term_matches_upstream_formula():
    torch.manual_seed(0)
    s = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    m = torch.nn.functional.normalize(torch.randn(4, 8), dim=-1)
    scale = torch.tensor(1 / 0.07)
    plain = PairwiseInfoNCE()({"sequence": s, "text": m}, scale)
    with_l1 = PairwiseInfoNCE(l1_weight=0.01)({"sequence": s, "text": m}, scale)
    # upstream: loss(seq, scale * mod) + 0.01 * (mean|seq| + mean|scale * mod|)
    want = 0.01 * (s.abs().mean() + (scale * m).abs().mean())
    assert torch.allclose(with_l1["loss"] - plain["loss"], want, atol=1e-6)


def test_new_fields_stay_out_of_older_configs():
    """Unused new fields are not written, so the config (and model hash) of existing checkpoints is unchanged."""
    from engine.checkpoint import checkpoint_config

    config = checkpoint_config(load_checkpoint("demo"))[0]
    assert "heads" not in config
    assert all("alphabet" not in config["encoders"][m] for m in ("sequence", "structure_tokens"))


def test_upstream_3di_encoder_starts_from_amino_acid_weights_keeping_all_33_rows(tmp_path):
    from engine.encoders.esm_arch import EsmArch, build_esm2, write_fair_esm_file

    torch.manual_seed(0)
    src = build_esm2(EsmArch(1, 16, 2))
    path = write_fair_esm_file(src, tmp_path / "aa.pt")
    enc = StructureTokensEncoder({"weights": str(path), "alphabet": "3di_upstream", "pooling": "mean_bos_eos"})
    rows = enc.esm.embed_tokens.weight
    assert rows.shape[0] == 54
    assert torch.equal(rows[:33], src.embed_tokens.weight)  # as transformers' resize_token_embeddings keeps them
    assert not torch.equal(rows[33:], torch.zeros_like(rows[33:]))


def test_per_modality_batch_sizes():
    from engine.data.batching import PairSampler

    ids = {"structure": [f"s{i}" for i in range(40)], "structure_tokens": [f"t{i}" for i in range(40)]}
    sampler = PairSampler(ids, 8, 0, None, {"structure_tokens": 4})
    sizes = {}
    for _ in range(4):
        m, batch = sampler.next()
        sizes[m] = len(batch)
    assert sizes == {"structure": 8, "structure_tokens": 4}
