"""3Di tokens: length, alphabet, determinism, and the missing-atom rule."""

from pathlib import Path

import numpy as np

from engine.data.structure import read_structure
from engine.data.tokens3di import ALPHABET_3DI, structure_tokens

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def _chain():
    r = read_structure(FIX / "d1cih__.pdb.gz").records[0]
    return r.coords, r.extra["cb"]


def test_length_alphabet_determinism():
    coords, cb = _chain()
    a = structure_tokens(coords, cb)
    assert len(a) == len(coords) == 108
    assert set(a) <= set(ALPHABET_3DI)
    assert a == structure_tokens(coords.copy(), cb.copy())
    assert len(set(a)) > 5  # a real fold uses many states


def test_missing_cb_is_rebuilt_and_close_to_real():
    coords, cb = _chain()
    with_cb, without = structure_tokens(coords, cb), structure_tokens(coords)
    same = np.mean([x == y for x, y in zip(with_cb, without)])
    assert same > 0.8


def test_missing_backbone_keeps_length():
    coords, cb = _chain()
    gappy = coords.copy()
    gappy[50:53] = np.nan
    t = structure_tokens(gappy, cb)
    assert len(t) == len(coords)
    assert t[51] == "D"  # invalid state letter for residues without backbone
    assert structure_tokens(coords[:2]) == "DD"
    assert structure_tokens(np.zeros((0, 4, 3), np.float32)) == ""
