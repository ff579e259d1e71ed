"""NoisyTokens3Di: 3Di strings from jittered coordinates: length, alphabet, determinism, noise scale, errors."""

from pathlib import Path

import numpy as np
import pytest

from engine.data.noisy_tokens3di import NoisyTokens3Di
from engine.data.structure import read_structure
from engine.data.tokens3di import ALPHABET_3DI, structure_tokens
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


class FakeStore:
    """row/coords of one real chain (d1cih) and one protein with tokens but no coordinates."""

    def __init__(self):
        r = read_structure(FIX / "d1cih__.pdb.gz").records[0]
        self._coords = {"real": r.coords, "flat": None}
        self._rows = {"real": {"structure_tokens": structure_tokens(r.coords, r.extra["cb"])},
                      "flat": {"structure_tokens": "DDAC"}}

    def row(self, pid):
        return self._rows[pid]

    def coords(self, pid):
        return self._coords[pid]


def _changed(a: str, b: str) -> float:
    return float(np.mean([x != y for x, y in zip(a, b)]))


def test_length_alphabet_and_determinism():
    store = FakeStore()
    noisy = NoisyTokens3Di(store, sigma=0.2)
    a = noisy(["real"], np.random.default_rng(7))[0]
    b = noisy(["real"], np.random.default_rng(7))[0]
    c = noisy(["real"], np.random.default_rng(8))[0]
    stored = store.row("real")["structure_tokens"]
    assert a == b and a != c
    assert len(a) == len(stored) and set(a) <= set(ALPHABET_3DI)


def test_more_noise_changes_more_letters():
    store = FakeStore()
    stored = store.row("real")["structure_tokens"]
    rng = np.random.default_rng(0)
    small = np.mean([_changed(stored, NoisyTokens3Di(store, 0.05).one("real", rng)) for _ in range(5)])
    large = np.mean([_changed(stored, NoisyTokens3Di(store, 0.5).one("real", rng)) for _ in range(5)])
    assert 0.0 < small < 0.4 and large > small + 0.15


def test_no_coordinates_keeps_the_stored_string_and_prob_keeps_some():
    store = FakeStore()
    assert NoisyTokens3Di(store, 0.3)(["flat"], np.random.default_rng(0)) == ["DDAC"]
    stored = store.row("real")["structure_tokens"]
    out = NoisyTokens3Di(store, 0.3, prob=0.5)(["real"] * 40, np.random.default_rng(0))
    kept = sum(s == stored for s in out)
    assert 5 < kept < 35


@pytest.mark.parametrize("sigma, prob", [(0.0, 1.0), (-0.1, 1.0), (5.0, 1.0), (0.1, 0.0), (0.1, 1.5)])
def test_bad_settings_name_the_field(sigma, prob):
    with pytest.raises(OneProtError, match="structure_tokens_noise"):
        NoisyTokens3Di(FakeStore(), sigma, prob)
