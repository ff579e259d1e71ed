"""Sequence encoder: collate adds BOS/EOS/padding, pooling ignores them, freezing works."""

import pytest
import torch

from engine.encoders.esm_encoder import EsmEncoderConfig
from engine.encoders.sequence import SequenceEncoder
from engine.errors import OneProtError

torch.set_num_threads(1)
CFG = {"layers": 2, "dim": 32, "heads": 4}


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_padding_bos_eos_do_not_change_the_pooled_vector(pooling):
    torch.manual_seed(0)
    enc = SequenceEncoder(dict(CFG, pooling=pooling)).eval()
    alone = enc(enc.collate(["MKTAYIAKQR"])).pooled
    padded = enc(enc.collate(["MKTAYIAKQR", "M" * 40])).pooled[:1]
    assert torch.allclose(alone, padded, atol=1e-5)


def test_collate_layout_and_mask():
    enc = SequenceEncoder(CFG)
    batch = enc.collate(["ACD", "MK"])
    a = enc.alphabet
    tok = batch["tokens"]
    assert tok.shape == (2, 5)
    assert tok[0, 0] == a.cls_idx and tok[0, 4] == a.eos_idx and tok[1, 3] == a.eos_idx and tok[1, 4] == a.padding_idx
    out = enc(batch)
    assert out.states.shape == (2, 3, 32)
    assert out.mask.tolist() == [[True, True, True], [True, True, False]]
    with pytest.raises(OneProtError):
        enc.collate("ACD")


def test_truncation_to_max_length():
    enc = SequenceEncoder(dict(CFG, max_length=5))
    assert enc.collate(["A" * 50])["tokens"].shape == (1, 7)


def test_frozen_backbone_trains_only_pooling():
    enc = SequenceEncoder(dict(CFG, pooling="attention", freeze=True))
    enc.train()
    assert not enc.esm.training
    out = enc(enc.collate(["MKTAYIAK", "GGGS"]))
    out.pooled.sum().backward()
    assert all(p.grad is None for p in enc.esm.parameters())
    assert all(p.grad is not None for p in enc.pool.parameters())
    # the optimiser and the trainable-parameter counts see only the pooling
    assert not any(p.requires_grad for p in enc.esm.parameters())
    assert enc.external_prefixes() == []  # random/local weights are always saved


def test_released_frozen_weights_are_external():
    cfg = EsmEncoderConfig(weights="esm2_t6_8M_UR50D", freeze=True)
    assert SequenceEncoder.external_prefixes_for(cfg) == ["esm."]


def test_unknown_config_field():
    with pytest.raises(OneProtError, match="unknown fields"):
        SequenceEncoder(dict(CFG, layerz=3))


@pytest.mark.parametrize("pooling", ["mean", "attention"])
def test_cpu_training_forward_is_packed_and_matches_fair_esm(pooling):
    """On CPU the forward skips padding (packed_esm); outputs and gradients equal fair-esm's padded pass."""
    torch.manual_seed(0)
    enc = SequenceEncoder(dict(CFG, pooling=pooling)).train()
    tokens = enc.collate(["MKTAYIAKQRQISFVKSHFSRQ", "GGS", "MKXZUBOACDEFGHIKLMNPQRSTVWY" * 2])["tokens"]
    outputs, grads = [], []
    for states_of in (enc.packed_residue_states, enc.residue_states):
        enc.zero_grad()
        states, mask = states_of(tokens)
        pooled = enc.pool(states, mask)
        pooled.square().sum().backward()
        outputs.append((states * mask[..., None], mask, pooled))
        grads.append({n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None})
    (s1, m1, p1), (s2, m2, p2) = outputs
    assert torch.equal(m1, m2) and torch.allclose(s1, s2, atol=1e-5) and torch.allclose(p1, p2, atol=1e-5)
    assert set(grads[0]) == set(grads[1]) and any(n.startswith("esm.layers.") for n in grads[0])
    for name in grads[0]:
        assert torch.allclose(grads[0][name], grads[1][name], atol=1e-5, rtol=1e-4), name
    assert torch.allclose(enc(enc.collate(["GGS"])).pooled, p1[1:2], atol=1e-5)  # forward takes the packed path


def test_rows_without_residues_take_the_padded_path():
    enc = SequenceEncoder(CFG).eval()
    assert enc(enc.collate(["", ""])).pooled.shape == (2, 32)


def _augments_only_while_training(enc, batch):
    enc.eval()
    assert torch.equal(enc(batch).pooled, enc(batch).pooled)  # no augmentation in eval mode
    enc.train()
    torch.manual_seed(1)
    a = enc(batch).pooled
    torch.manual_seed(2)
    assert not torch.allclose(a, enc(batch).pooled)  # a different draw changes the output


def test_training_mask_augments_only_while_training():
    torch.manual_seed(0)
    enc = SequenceEncoder(dict(CFG, train_mask=0.5))
    tokens = enc.collate(["MKTAYIAKQRQISFVKSHFSRQ" * 3, "GGS"])["tokens"]
    masked = enc.mask_for_training(tokens)
    changed = masked != tokens
    assert changed.any() and (masked[changed] == enc.alphabet.mask_idx).all()
    assert not changed[:, 0].any() and (masked == enc.alphabet.padding_idx).sum() == (tokens == enc.alphabet.padding_idx).sum()
    _augments_only_while_training(enc, enc.collate(["MKTAYIAKQR"]))


def test_training_crop_keeps_a_contiguous_window_between_bos_and_eos():
    torch.manual_seed(0)
    enc = SequenceEncoder(dict(CFG, train_crop=0.5))
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ" * 3, "GGS", "W"]
    tokens = enc.collate(seqs)["tokens"]
    for _ in range(20):
        cropped = enc.crop_for_training(tokens)
        for i, seq in enumerate(seqs):
            row = cropped[i][cropped[i] != enc.alphabet.padding_idx]
            assert row[0] == enc.alphabet.cls_idx and row[-1] == enc.alphabet.eos_idx
            inner = "".join(enc.alphabet.get_tok(t) for t in row[1:-1].tolist())
            assert inner in seq and len(seq) * 0.5 - 1 <= len(inner) <= len(seq)
    _augments_only_while_training(enc, enc.collate(seqs[:1]))
