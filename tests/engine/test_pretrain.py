"""Masked-LM pretraining: the 80/10/10 masking rule, learning, and weights the encoders load."""

import json

import pytest
import torch

from engine.cli import main
from engine.data.store import ProteinStore
from engine.encoders.esm_arch import EsmArch, make_alphabet
from engine.encoders.sequence import SequenceEncoder
from engine.encoders.structure_tokens import StructureTokensEncoder
from engine.errors import OneProtError
from engine.presets.base import PretrainConfig
from engine.pretrain import IGNORE, collate_letters, mask_tokens, pretrain

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def store(make_alignment_store, tmp_path_factory):
    return ProteinStore.open(make_alignment_store(tmp_path_factory.mktemp("s") / "store", n=32))


def test_masking_rule_15_percent_80_10_10():
    alphabet = make_alphabet("protein")
    tokens = collate_letters(["ACDEFGHIKLMNPQRSTVWY" * 50] * 20, alphabet)  # 20,000 residues
    inputs, labels = mask_tokens(tokens, alphabet, 0.15, torch.Generator().manual_seed(0))
    selected = labels != IGNORE
    frac = selected.float().sum() / 20_000
    assert 0.14 < frac < 0.16
    assert not selected[:, 0].any() and not selected[:, -1].any()  # BOS / EOS never scored
    masked = (inputs == alphabet.mask_idx) & selected
    kept = (inputs == tokens) & selected
    assert 0.77 < masked.sum() / selected.sum() < 0.83
    assert 0.08 < kept.sum() / selected.sum() < 0.13  # 10% kept + random letters equal by chance
    assert torch.equal(inputs[~selected], tokens[~selected])


def test_pretrain_learns_and_saves_loadable_weights(store, tmp_path):
    cfg = PretrainConfig(steps=40, batch_size=8, lr=3e-3, warmup_steps=5, max_length=40)
    out = pretrain("sequence", store, EsmArch(2, 32, 4), cfg, tmp_path / "seq", progress=False)
    log = [json.loads(x) for x in (tmp_path / "seq" / "metrics.jsonl").read_text().splitlines()]
    first = sum(r["loss"] for r in log[:5]) / 5
    last = sum(r["loss"] for r in log[-5:]) / 5
    assert last < first  # random sequences: only the letter frequencies are learnable, but those are
    assert "valid_perplexity" in out
    enc = SequenceEncoder({"weights": str(tmp_path / "seq")})
    assert (enc.config.layers, enc.config.dim) == (2, 32)


def test_3di_pretrain_via_cli(store, tmp_path, capsys):
    code = main(["pretrain", "--modality", "structure_tokens", "--preset", "tiny", "--data", str(store.path),
                 "--out", str(tmp_path / "tdi"), "--steps", "3", "--quiet"])
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["modality"] == "structure_tokens"
    enc = StructureTokensEncoder({"weights": str(tmp_path / "tdi")})
    assert len(enc.alphabet) == 25


def test_3di_pretrain_can_start_from_a_pretrained_sequence_encoder(store, tmp_path, capsys):
    cfg = PretrainConfig(steps=2, batch_size=4, max_length=40)
    pretrain("sequence", store, EsmArch(2, 24, 4), cfg, tmp_path / "seq", progress=False)
    assert main(["pretrain", "--modality", "structure_tokens", "--preset", "tiny", "--data", str(store.path),
                 "--out", str(tmp_path / "tdi"), "--steps", "0", "--init", str(tmp_path / "seq"), "--quiet"]) == 0
    assert json.loads(capsys.readouterr().out)["init"] == str(tmp_path / "seq")
    seq = SequenceEncoder({"weights": str(tmp_path / "seq")}).esm.state_dict()
    tdi = StructureTokensEncoder({"weights": str(tmp_path / "tdi")})
    assert (tdi.config.layers, tdi.config.dim) == (2, 24) and len(tdi.alphabet) == 25  # the source's shape
    got = tdi.esm.state_dict()
    assert torch.equal(got["layers.1.fc2.weight"], seq["layers.1.fc2.weight"])  # transformer weights carried over
    cls = tdi.alphabet.cls_idx
    assert torch.equal(got["embed_tokens.weight"][cls], seq["embed_tokens.weight"][make_alphabet("protein").cls_idx])
    with pytest.raises(OneProtError, match="no such file"):
        pretrain("structure_tokens", store, EsmArch(1, 8, 2), cfg, tmp_path / "x", progress=False, init=str(tmp_path / "nope"))


def test_pretrain_refuses_other_modalities(store, tmp_path):
    with pytest.raises(OneProtError, match="sequence and structure_tokens"):
        pretrain("text", store, EsmArch(1, 8, 2), PretrainConfig(steps=1), tmp_path / "x", progress=False)


def test_cpu_masked_lm_is_packed_and_matches_the_padded_forward():
    """The CPU path skips padding; loss, accuracy and gradients equal fair-esm's padded logits."""
    import torch.nn.functional as F

    from engine.encoders.esm_arch import build_esm2
    from engine.pretrain import masked_lm_loss

    torch.manual_seed(0)
    model = build_esm2(EsmArch(2, 32, 4, "protein", True))
    alphabet = model.alphabet
    tokens = collate_letters(["MKTAYIAKQRQISFVKSHFSRQ", "GGSA", "ACDEFGHIKLMNPQRSTVWY"], alphabet)
    loss, acc = masked_lm_loss(model, tokens, alphabet, 0.3, torch.Generator().manual_seed(3))
    loss.backward()
    grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
    model.zero_grad()
    inputs, labels = mask_tokens(tokens, alphabet, 0.3, torch.Generator().manual_seed(3))
    logits = model(inputs)["logits"]
    ref = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1), ignore_index=IGNORE)
    ref.backward()
    scored = labels != IGNORE
    assert torch.allclose(loss, ref, atol=1e-5)
    assert acc == pytest.approx(float((logits.argmax(-1)[scored] == labels[scored]).float().mean()))
    assert grads and set(grads) == {n for n, p in model.named_parameters() if p.grad is not None}
    for name, p in model.named_parameters():
        if p.grad is not None:
            assert torch.allclose(grads[name], p.grad, atol=1e-5, rtol=1e-4), name
