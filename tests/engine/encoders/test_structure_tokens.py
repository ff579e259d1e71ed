"""3Di encoder: the 3Di alphabet, lower-case input, unknown letters."""

import torch

from engine.encoders.structure_tokens import StructureTokensEncoder

torch.set_num_threads(1)


def test_3di_alphabet_and_case_insensitive_collate():
    enc = StructureTokensEncoder({"layers": 1, "dim": 16, "heads": 2})
    a = enc.alphabet
    assert len(a) == 25
    upper, lower = enc.collate(["DVVLCP"])["tokens"], enc.collate(["dvvlcp"])["tokens"]
    assert torch.equal(upper, lower)
    assert enc.collate(["D*"])["tokens"][0, 2] == a.unk_idx
    out = enc(enc.collate(["DVVLCP", "AC"]))
    assert out.pooled.shape == (2, 16) and out.mask.sum().item() == 8
