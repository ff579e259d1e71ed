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
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GGS", "MKXZUBOACDEFGHIKLMNPQRSTVWY" * 2]
    batch = enc.collate(seqs)
    assert batch["items"] == seqs
    packed = enc(batch)
    packed.pooled.square().sum().backward()
    grads = {n: p.grad.clone() for n, p in enc.named_parameters() if p.grad is not None}
    enc.zero_grad()
    fair = enc({"tokens": batch["tokens"]})  # no items: fair-esm's padded forward
    fair.pooled.square().sum().backward()
    assert torch.allclose(packed.pooled, fair.pooled, atol=1e-5)
    assert torch.equal(packed.mask, fair.mask)
    assert torch.allclose(packed.states * packed.mask[..., None], fair.states * fair.mask[..., None], atol=1e-5)
    assert set(grads) == {n for n, p in enc.named_parameters() if p.grad is not None}
    assert any(n.startswith("esm.layers.") for n in grads)
    for name, p in enc.named_parameters():
        if p.grad is not None:
            assert torch.allclose(grads[name], p.grad, atol=1e-5, rtol=1e-4), name


def test_items_without_residues_take_the_padded_path():
    enc = SequenceEncoder(CFG).eval()
    batch = enc.collate(["MKT", "   "])
    assert "items" not in batch
    assert enc(batch).pooled.shape == (2, 32)
