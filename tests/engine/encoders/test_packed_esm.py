"""The packed ESM-2 forward pass equals fair-esm's padded forward (random weights, tiny configs)."""

import random

import esm
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from esm.model.esm2 import ESM2

from engine.encoders import packed_esm
from engine.encoders.packed_esm import (
    ESMTokenizer,
    PackedESMEmbedder,
    mean_pool,
    pack_sequences,
    packed_attention,
    packed_forward,
    packed_to_padded,
    padded_residue_states,
)
from engine.errors import OneProtError

AMINO = "ACDEFGHIKLMNPQRSTVWY"
THREE_DI = "acdefghiklmnpqrstvwy"


def _model(alphabet, layers=2, dim=48, heads=4, seed=0):
    torch.manual_seed(seed)
    model = ESM2(num_layers=layers, embed_dim=dim, attention_heads=heads, alphabet=alphabet).eval()
    with torch.no_grad():  # larger-than-init weights so layer differences show up in the outputs
        for name, p in model.named_parameters():
            if "norm" not in name:
                p.normal_(0, 0.15)
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


@pytest.fixture(scope="module", params=["esm", "3di"])
def case(request):
    """A random model, 14 sequences of 1..300 residues and fair-esm's padded outputs, built once."""
    which = request.param
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b") if which == "esm" else _three_di_alphabet()
    letters = AMINO if which == "esm" else THREE_DI
    model = _model(alphabet, layers=2, dim=64 if which == "esm" else 32)
    seqs = _sequences(letters, 14, 300)
    return model, alphabet, seqs, *_reference(model, alphabet, seqs)


@pytest.mark.parametrize("attention", ["per_sequence", "padded"])
def test_embed_matches_padded_fair_esm(case, attention):
    model, alphabet, seqs, ref_res, ref_pool = case
    embedder = PackedESMEmbedder(model, alphabet, token_budget=1500, attention=attention)
    pooled = embedder.embed(seqs)
    assert pooled.shape == (len(seqs), model.embed_dim) and pooled.dtype == torch.float32
    assert F.cosine_similarity(pooled, ref_pool).min() >= 0.999
    assert (pooled - ref_pool).abs().max() < 1e-4
    residues = embedder.embed_residues(seqs)
    for got, want in zip(residues, ref_res):
        assert got.shape == want.shape
        assert (got - want).abs().max() < 1e-4


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
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=1, dim=16, heads=2)
    seqs = _sequences(AMINO, 8, 120, seed=7)
    # budget far below the longest sequence: each long one runs alone, order still the caller's
    embedder = PackedESMEmbedder(model, alphabet, token_budget=50)
    pooled = embedder.embed(seqs)
    singles = torch.cat([embedder.embed([s]) for s in seqs])
    assert torch.allclose(pooled, singles, atol=1e-5)
    assert embedder.embed([]).shape == (0, 16)
    assert embedder.embed_residues([]) == []
    with pytest.raises(OneProtError, match=r"sequences\[1\]"):
        embedder.embed(["ACD", ""])
    with pytest.raises(OneProtError, match="unknown token"):
        embedder.embed(["AC#D"])


def test_mask_tokens_caller_tokenizer_and_padded_states():
    """Multi-letter tokens count once; a caller's tokenizer is used as is; padded states line up."""
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=1, dim=16, heads=2)
    seqs = ["AC<mask>DE", "MKV", "<mask>" * 4]
    ref_res, _ = _reference(model, alphabet, seqs)
    residues = PackedESMEmbedder(model, alphabet).embed_residues(seqs)
    assert [len(r) for r in residues] == [5, 3, 4]
    assert all((g - w).abs().max() < 1e-5 for g, w in zip(residues, ref_res))

    def upper_ids(text):  # what EsmTokenEncoder.tokenize does: strip, upper-case, <unk> fallback
        return [alphabet.tok_to_idx.get(c, alphabet.unk_idx) for c in text.strip().upper()]

    lower = PackedESMEmbedder(model, alphabet, residue_ids=upper_ids).embed([" mkv ", "ac#d"])
    plain = PackedESMEmbedder(model, alphabet).embed(["MKV", "AC"])
    assert torch.allclose(lower[0], plain[0], atol=1e-6)
    assert not torch.allclose(lower[1], plain[1], atol=1e-3)  # '#' became <unk>, not dropped
    states, mask = padded_residue_states(model, ESMTokenizer(alphabet), ["MKV", "ACDEFG"])
    assert states.shape == (2, 6, 16) and mask.sum(1).tolist() == [3, 6]
    _, _, tokens = alphabet.get_batch_converter()([("a", "MKV"), ("b", "ACDEFG")])
    with torch.no_grad():
        want = model(tokens, repr_layers=[1])["representations"][1][:, 1:-1]
    assert (states[mask] - want[mask]).abs().max() < 1e-5


def test_tokenizer_matches_fair_esm_and_truncates():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    tok = ESMTokenizer(alphabet)
    for seq in ["MKTAYIAKQR", "XBZUO", "AC<mask>D", "A"]:
        _, _, tokens = alphabet.get_batch_converter()([("x", seq)])
        assert tok.encode(seq).tolist() == tokens[0].tolist()
    capped = ESMTokenizer(alphabet, max_residues=4).encode("MKTAYIAKQR")
    assert capped.tolist() == [alphabet.cls_idx] + [alphabet.get_idx(c) for c in "MKTA"] + [alphabet.eos_idx]
    assert np.array_equal(ESMTokenizer(alphabet).encode("K"), [0, 15, 2])


def test_bad_backend_and_cuda_only_options():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=1, dim=16, heads=2)
    with pytest.raises(OneProtError, match="choose from"):
        PackedESMEmbedder(model, alphabet, attention="nope").embed(["ACD"])
    with pytest.raises(OneProtError, match="varlen"):
        PackedESMEmbedder(model, alphabet, attention="varlen").embed(["ACD"])
    with pytest.raises(OneProtError, match="CUDA"):
        PackedESMEmbedder(model, alphabet, cuda_graphs=True)


def test_fused_gelu_epilogue_matches_fair_esm(case):
    model, alphabet, seqs, ref_res, ref_pool = case
    pooled = PackedESMEmbedder(model, alphabet, token_budget=1500, fused_gelu=True).embed(seqs)
    assert (pooled - ref_pool).abs().max() < 1e-4  # exact GELU on the CPU


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_varlen_on_gpu_matches_fp32_reference():
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=4, dim=128, heads=8)
    seqs = _sequences(AMINO, 64, 500)
    _, ref_pool = _reference(model, alphabet, seqs)
    for fused in (False, True):
        pooled = PackedESMEmbedder(model, alphabet, device="cuda", dtype=torch.bfloat16, fused_gelu=fused).embed(seqs)
        assert F.cosine_similarity(pooled, ref_pool).min() >= 0.999, fused


@pytest.mark.slow
def test_torch_compile_path_matches_eager():
    """compile=True traces the dense layer parts (about a minute on 2 CPUs): same vectors."""
    alphabet = esm.data.Alphabet.from_architecture("ESM-1b")
    model = _model(alphabet, layers=2, dim=32, heads=4)
    seqs = _sequences(AMINO, 10, 80, seed=11)
    eager = PackedESMEmbedder(model, alphabet).embed(seqs)
    compiled = PackedESMEmbedder(model, alphabet, compile=True, token_budget=300).embed(seqs)
    assert (compiled - eager).abs().max() < 1e-4
