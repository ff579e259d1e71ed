"""The packed ESM-2 forward pass equals fair-esm's padded forward (random weights, tiny configs), and the
one embedding path (OneProt.pooled / embed / residues through the ESM encoders' packed methods) gives
fair-esm's vectors with every option it offers."""

import copy
import random

import esm
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from esm.model.esm2 import ESM2

from engine.encoders import packed_esm
from engine.encoders.esm_arch import THREEDI_LETTERS
from engine.encoders.packed_esm import (
    ESMTokenizer,
    PackedOptions,
    mean_pool,
    pack_sequences,
    packed_attention,
    packed_forward,
    packed_to_padded,
)
from engine.errors import OneProtError
from engine.model import ModelConfig, OneProt

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREE_DI = "acdefghiklmnpqrstvwy"


def _randomise(model, seed=0):
    torch.manual_seed(seed)
    with torch.no_grad():  # larger-than-init weights so layer differences show up in the outputs
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0, 0.15)
    return model


def _model(alphabet, layers=2, dim=48, heads=4, seed=0):
    torch.manual_seed(seed)
    return _randomise(ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=alphabet).eval(), seed)


def _oneprot(layers=2, seq_dim=64, tok_dim=32, heads=4, pooling="mean", seed=0):
    """A OneProt whose two ESM encoders (amino acids; 3Di letters) carry large random weights."""
    torch.manual_seed(seed)
    enc = {"sequence": {"layers": layers, "dim": seq_dim, "heads": heads, "pooling": pooling},
           "structure_tokens": {"layers": layers, "dim": tok_dim, "heads": heads, "pooling": pooling}}
    model = OneProt(ModelConfig(encoders=enc, dim=16)).eval()
    for encoder in model.encoders.values():
        _randomise(encoder.esm, seed)
    return model


def _three_di_alphabet():
    return esm.data.Alphabet(standard_toks=list(THREE_DI), prepend_toks=("<cls>", "<pad>", "<eos>",
                             "<unk>"), append_toks=("<mask>",), prepend_bos=True, append_eos=True)


def _sequences(letters, n, max_len, seed=1):
    rng = random.Random(seed)
    lengths = [1, 2, max_len] + [rng.randint(1, max_len) for _ in range(n - 3)]
    return ["".join(rng.choice(letters) for _ in range(k)) for k in lengths]


def _reference(model, alphabet, seqs):
    """fair-esm padded forward: per-residue last-layer states and mean pools (extract.py style)."""
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(seqs)])
    with torch.no_grad():
        rep = model(tokens, repr_layers=[len(model.layers)])["representations"][len(model.layers)]
    lens = [len(tokens[i]) - int((tokens[i] == alphabet.padding_idx).sum()) - 2 for i in range(len(seqs))]
    residues = [rep[i, 1 : n + 1] for i, n in enumerate(lens)]
    return residues, torch.stack([r.mean(0) for r in residues])


@pytest.fixture(scope="module", params=["sequence", "structure_tokens"])
def case(request):
    """A OneProt, one of its ESM encoders, 14 items of 1..300 residues and fair-esm's padded outputs."""
    modality = request.param
    model = _oneprot()
    letters = AMINO if modality == "sequence" else THREEDI_LETTERS
    seqs = _sequences(letters, 14, 300)
    esm_model = model.encoders[modality].esm
    return model, modality, seqs, *_reference(esm_model, esm_model.alphabet, seqs)


@pytest.mark.parametrize("attention", ["per_sequence", "padded"])
def test_one_path_matches_padded_fair_esm(case, attention):
    model, modality, seqs, ref_res, ref_pool = case
    options = PackedOptions(attention=attention)
    pooled = torch.from_numpy(model.pooled(modality, seqs, 1500, options))
    assert pooled.shape == ref_pool.shape and pooled.dtype == torch.float32
    assert F.cosine_similarity(pooled, ref_pool).min() >= 0.999
    assert (pooled - ref_pool).abs().max() < 1e-4
    residues = model.residues(modality, seqs, 1500, options)
    for got, want in zip(residues, ref_res):
        assert got.shape == want.shape and got.dtype == np.float32
        assert np.abs(got - want.numpy()).max() < 1e-4


@pytest.mark.parametrize("fused", [True, False])
def test_fused_gelu_epilogue_matches_fair_esm(case, fused):
    model, modality, seqs, ref_res, ref_pool = case
    pooled = model.pooled(modality, seqs, 1500, PackedOptions(fused_gelu=fused))
    assert np.abs(pooled - ref_pool.numpy()).max() < 1e-4  # exact GELU on the CPU


def test_token_dropout_masks_layers_and_filler_segment():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=2, dim=32)
    seqs = ["MK<mask>LV<mask>AAG", "<mask>" * 3 + "W", "ACDEFGHIKLMNPQRSTVWY" * 5]
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(seqs)])
    with torch.no_grad():
        ref = model(tokens, repr_layers=[0, 1, 2])["representations"]
        # pad the packed batch to a multiple of 64 tokens with a filler segment: results must not move
        packed = pack_sequences(ESMTokenizer(alphabet), seqs, pad_multiple=64)
        assert packed.tokens.shape[0] % 64 == 0 and len(packed.lengths) == len(seqs) + 1
        out = packed_forward(model, packed, repr_layers=(0, 1, 2))
    for layer in (0, 1, 2):
        for i, n in enumerate(packed.lengths[: len(seqs)]):
            got = out.layers[layer][packed.cu_seqlens[i] : packed.cu_seqlens[i] + n]
            assert (got - ref[layer][i, :n]).abs().max() < 1e-4, layer
    pooled = mean_pool(out.last, packed)
    assert pooled.shape == (3, 32)
    block, mask = packed_to_padded(out.last, packed)
    assert block.shape == (3, packed.max_residues, 32)
    assert mask.sum(1).tolist() == packed.n_residues.tolist()
    want = (block * mask[..., None]).sum(1) / mask.sum(1, keepdim=True)
    assert torch.allclose(pooled, want, atol=1e-5)


def test_gradients_match_padded_forward():
    """The packed pass is differentiable: frozen-backbone heads and fine-tuned encoders can train."""
    alphabet = _three_di_alphabet()
    seqs = _sequences(THREE_DI, 6, 40, seed=3)
    grads = []
    for packed_path in (False, True):
        model = _model(alphabet, layers=2, dim=32, seed=5).train()
        if packed_path:
            packed = pack_sequences(ESMTokenizer(alphabet), seqs)
            loss = mean_pool(packed_forward(model, packed).last, packed).square().sum()
        else:
            _, pool = _reference_with_grad(model, alphabet, seqs)
            loss = pool.square().sum()
        loss.backward()
        grads.append(model.layers[0].self_attn.q_proj.weight.grad.clone())
    assert torch.allclose(grads[0], grads[1], atol=1e-4, rtol=1e-3)


def _reference_with_grad(model, alphabet, seqs):
    _, _, tokens = alphabet.get_batch_converter()([(str(i), s) for i, s in enumerate(seqs)])
    rep = model(tokens, repr_layers=[len(model.layers)])["representations"][len(model.layers)]
    residues = [rep[i, 1 : len(s) + 1] for i, s in enumerate(seqs)]
    return residues, torch.stack([r.mean(0) for r in residues])


def test_varlen_backend_receives_flash_style_arguments(monkeypatch):
    """The CUDA varlen call gets (T, H, hd) tensors, int32 cu_seqlens and the host max length."""
    calls = []

    def fake_varlen(q, k, v, cu_q, cu_k, max_q, max_k, is_causal=False):  # torch 2.10 signature
        calls.append((cu_q.dtype, max_q, max_k))
        starts = cu_q.tolist()
        outs = [F.scaled_dot_product_attention(q[a:b].transpose(0, 1), k[a:b].transpose(0, 1),
                                               v[a:b].transpose(0, 1)).transpose(0, 1)
                for a, b in zip(starts[:-1], starts[1:])]
        return torch.cat(outs)

    monkeypatch.setattr(packed_esm, "_varlen_attn", lambda: fake_varlen)
    packed = pack_sequences(ESMTokenizer(esm.data.Alphabet.from_architecture("ESM-1b")),
                            ["ACD", "MKLVWY", "G"])
    q, k, v = (torch.randn(packed.tokens.shape[0], 2, 8) for _ in range(3))
    for scale in (8**-0.5, 0.3):  # ESM's own scale, and another one folded into q
        got = packed_attention(q, k, v, packed, "varlen", scale)
        want = packed_attention(q, k, v, packed, "per_sequence", scale)
        assert torch.allclose(got, want, atol=1e-5)
    assert calls == [(torch.int32, 8, 8)] * 2


def test_order_long_sequences_and_empty_input():
    model = _oneprot(layers=1, seq_dim=16, tok_dim=16, heads=2)
    seqs = _sequences(AMINO, 8, 120, seed=7)
    # budget far below the longest sequence: each long one runs alone, order still the caller's
    pooled = model.pooled("sequence", seqs, batch_tokens=50)
    singles = np.concatenate([model.pooled("sequence", [s]) for s in seqs])
    np.testing.assert_allclose(pooled, singles, atol=1e-5)
    np.testing.assert_allclose(model.embed("sequence", seqs, 50), model.embed("sequence", seqs, 100_000), atol=1e-5)
    assert model.pooled("sequence", []).shape == (0, 16)
    assert model.residues("sequence", []) == []
    with pytest.raises(OneProtError, match=r"sequences\[1\]"):  # the position in the caller's list
        model.embed("sequence", ["ACD", ""])


def test_encoder_tokens_mask_tokens_and_attention_pooling():
    """The path uses the encoder's own tokens; multi-letter tokens count once in the packed layout;
    attention pooling over packed states equals the collate + forward path."""
    model = _oneprot(layers=1, seq_dim=16, tok_dim=16, heads=2)
    lower = model.pooled("sequence", [" mkv ", "ac#d"])
    plain = model.pooled("sequence", ["MKV", "AC"])
    np.testing.assert_allclose(lower[0], plain[0], atol=1e-6)
    assert not np.allclose(lower[1], plain[1], atol=1e-3)  # '#' became <unk>, not dropped
    assert [len(r) for r in model.residues("sequence", ["MKV", " ac#d "])] == [3, 4]

    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    esm_model = _model(alphabet, layers=1, dim=16, heads=2)
    seqs = ["AC<mask>DE", "MKV", "<mask>" * 4]
    ref_res, _ = _reference(esm_model, alphabet, seqs)
    packed = pack_sequences(ESMTokenizer(alphabet), seqs)
    with torch.no_grad():
        block, mask = packed_to_padded(packed_forward(esm_model, packed).last, packed)
    assert mask.sum(1).tolist() == [5, 3, 4]
    assert all((block[i][mask[i]] - w).abs().max() < 1e-5 for i, w in enumerate(ref_res))

    attn = _oneprot(layers=1, seq_dim=16, tok_dim=16, heads=2, pooling="attention")
    items = _sequences(AMINO, 6, 50, seed=2)
    np.testing.assert_allclose(attn.embed("sequence", items, 60), attn.embed("sequence", items, packed=False),
                               atol=1e-5)


def test_tokenizer_matches_fair_esm_and_truncates():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    tok = ESMTokenizer(alphabet)
    for seq in ["MKTAYIAKQR", "XBZUO", "AC<mask>D", "A"]:
        _, _, tokens = alphabet.get_batch_converter()([("x", seq)])
        assert tok.encode(seq).tolist() == tokens[0].tolist()
    capped = ESMTokenizer(alphabet, max_residues=4).encode("MKTAYIAKQR")
    assert capped.tolist() == [alphabet.cls_idx] + [alphabet.get_idx(c) for c in "MKTA"] + [alphabet.eos_idx]
    assert np.array_equal(ESMTokenizer(alphabet).encode("K"), [0, 15, 2])
    with pytest.raises(OneProtError, match="unknown token"):
        ESMTokenizer(alphabet).encode("AC#D")


def test_bad_backend_and_cuda_only_options():
    model = _oneprot(layers=1, seq_dim=16, tok_dim=16, heads=2)
    with pytest.raises(OneProtError, match="choose from"):
        model.pooled("sequence", ["ACD"], options=PackedOptions(attention="nope"))
    with pytest.raises(OneProtError, match="varlen"):
        model.embed("sequence", ["ACD"], options=PackedOptions(attention="varlen"))
    with pytest.raises(OneProtError, match="CUDA"):
        model.residues("sequence", ["ACD"], options=PackedOptions(cuda_graphs=True))
    with pytest.raises(OneProtError, match="no per-residue states"):
        OneProt(ModelConfig(encoders={"sequence": {"layers": 1, "dim": 16, "heads": 2}, "text": {}}, dim=8)
                ).residues("text", ["a kinase"])


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_varlen_on_gpu_matches_fp32_reference():
    model = _oneprot(layers=4, seq_dim=128, heads=8)
    seqs = _sequences(AMINO, 64, 500)
    esm_model = model.encoders["sequence"].esm
    _, ref_pool = _reference(esm_model, esm_model.alphabet, seqs)
    autocast = copy.deepcopy(model).to("cuda")  # fp32 weights under OneProt's bf16 autocast
    cast = copy.deepcopy(model).to("cuda", torch.bfloat16)  # pure bf16: the varlen flash kernel
    for gpu_model in (autocast, cast):
        for fused in (False, True):
            pooled = torch.from_numpy(gpu_model.pooled("sequence", seqs, options=PackedOptions(fused_gelu=fused)))
            assert F.cosine_similarity(pooled, ref_pool).min() >= 0.999, fused


@pytest.mark.slow
def test_torch_compile_path_matches_eager():
    """compile=True traces the dense layer parts (about a minute on 2 CPUs): same vectors."""
    model = _oneprot(layers=2, seq_dim=32, tok_dim=16, heads=4)
    seqs = _sequences(AMINO, 10, 80, seed=11)
    eager = model.pooled("sequence", seqs)
    compiled = model.pooled("sequence", seqs, 300, PackedOptions(compile=True))
    assert np.abs(compiled - eager).max() < 1e-4
