"""ESM-2 architecture helpers: fair-esm-format files, pretrain folders, vocab remapping, errors."""

import argparse

import pytest
import torch

from engine.encoders.esm_arch import (
    EsmArch, build_esm2, load_esm_weights, load_into, make_alphabet, read_fair_esm_file, save_esm_folder,
    write_fair_esm_file,
)
from engine.encoders.sequence import SequenceEncoder
from engine.encoders.structure_tokens import StructureTokensEncoder
from engine.errors import OneProtError

torch.set_num_threads(1)


def _tiny(alphabet="protein"):
    torch.manual_seed(0)
    return build_esm2(EsmArch(layers=2, dim=32, heads=4, alphabet=alphabet))


def test_alphabets():
    prot, tdi = make_alphabet("protein"), make_alphabet("3di")
    assert len(prot) == 33 and prot.prepend_bos and prot.append_eos
    assert len(tdi) == 25 and "<mask>" in tdi.tok_to_idx
    with pytest.raises(OneProtError, match="protein, 3di"):
        make_alphabet("dna")


def test_fair_esm_file_round_trip_matches_outputs(tmp_path):
    model = _tiny()
    path = write_fair_esm_file(model, tmp_path / "tiny_esm2.pt")
    arch, state = read_fair_esm_file(path)
    assert (arch.layers, arch.dim, arch.heads) == (2, 32, 4)
    enc = SequenceEncoder({"weights": str(path)})
    assert enc.config.layers == 2 and enc.config.dim == 32
    tokens = enc.collate(["MKTAYIAK", "GGS"])["tokens"]
    model.eval(), enc.eval()
    ref = model(tokens, repr_layers=[2])["representations"][2]
    got = enc.esm(tokens, repr_layers=[2])["representations"][2]
    assert torch.allclose(ref, got, atol=1e-6)


def test_released_layout_with_args_namespace(tmp_path):
    # Older fair-esm files carry `args` (a Namespace) and fairseq-prefixed keys.
    model = _tiny()
    state = {f"encoder.{k}": v for k, v in model.state_dict().items()}
    args = argparse.Namespace(encoder_layers=2, encoder_embed_dim=32, encoder_attention_heads=4, token_dropout=True)
    torch.save({"model": state, "args": args}, tmp_path / "m.pt")
    arch, st = read_fair_esm_file(tmp_path / "m.pt")
    fresh = build_esm2(arch)
    load_into(fresh, st, "m.pt")
    assert torch.equal(fresh.embed_tokens.weight, model.embed_tokens.weight)


def test_pickled_objects_are_refused(tmp_path):
    # Any class outside the allow-list is refused, never executed (fractions.Fraction stands in).
    import fractions

    torch.save({"model": {}, "cfg": {"model": fractions.Fraction(1, 3)}}, tmp_path / "evil.pt")
    with pytest.raises(OneProtError, match="weights_only") as err:
        read_fair_esm_file(tmp_path / "evil.pt")
    assert "evil.pt" in str(err.value)


def test_corrupted_and_missing_files(tmp_path):
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(OneProtError, match="bad.pt"):
        read_fair_esm_file(bad)
    with pytest.raises(OneProtError, match="released ESM-2 name"):
        load_esm_weights(str(tmp_path / "nowhere"))


def test_mismatched_weights_name_the_file(tmp_path):
    path = write_fair_esm_file(_tiny(), tmp_path / "small.pt")
    arch, state = read_fair_esm_file(path)
    bigger = build_esm2(EsmArch(layers=3, dim=32, heads=4))
    with pytest.raises(OneProtError, match="missing") as err:
        load_into(bigger, state, str(path))
    assert "small.pt" in str(err.value)


def test_pretrain_folder_round_trip_and_3di_from_protein_weights(tmp_path):
    model = _tiny()
    folder = save_esm_folder(model, EsmArch(2, 32, 4), tmp_path / "seq")
    enc = SequenceEncoder({"weights": str(folder)})
    assert torch.equal(enc.esm.layers[0].fc1.weight, model.layers[0].fc1.weight)
    # A 3Di encoder may start from amino-acid weights: special-token rows copied, the rest kept.
    tdi = StructureTokensEncoder({"weights": str(folder)})
    a = tdi.esm.alphabet
    src = make_alphabet("protein")
    assert torch.equal(tdi.esm.embed_tokens.weight[a.mask_idx], model.embed_tokens.weight[src.mask_idx])
    assert torch.equal(tdi.esm.layers[1].fc2.weight, model.layers[1].fc2.weight)
    # ...but a 3Di model cannot seed the amino-acid encoder.
    tdi_folder = save_esm_folder(_tiny("3di"), EsmArch(2, 32, 4, "3di"), tmp_path / "tdi")
    with pytest.raises(OneProtError, match="3di"):
        SequenceEncoder({"weights": str(tdi_folder)})
