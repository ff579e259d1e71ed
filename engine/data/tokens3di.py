"""Foldseek 3Di structure tokens per chain, computed with mini3di (a numpy port of Foldseek's encoder).

Missing-atom rule: residues keep their position (the token string always has the chain's length).
A missing CB is rebuilt from N, CA and C (mini3di does this, as Foldseek does for glycine); a
residue whose 3Di state cannot be computed (missing N/CA/C here or in a neighbour the descriptor
needs, and the first and last residue of the chain) gets Foldseek's invalid state, the letter
'D'. Output letters are upper-case from the 20-letter 3Di alphabet.
"""

from __future__ import annotations

from functools import lru_cache

import numpy as np

ALPHABET_3DI = "ACDEFGHIKLMNPQRSTVWY"


@lru_cache(maxsize=1)
def _encoder():
    import mini3di

    return mini3di.Encoder()


def structure_tokens(coords: np.ndarray, cb: np.ndarray | None = None) -> str:
    """3Di string for (L, 4, 3) N/CA/C/O coords (NaN = missing); optional (L, 3) CB coords."""
    coords = np.asarray(coords, dtype=np.float32)
    n_res = coords.shape[0]
    if n_res == 0:
        return ""
    if cb is None:
        cb = np.full((n_res, 3), np.nan, dtype=np.float32)
    enc = _encoder()
    n, ca, c = coords[:, 0], coords[:, 1], coords[:, 2]
    if n_res < 3:  # mini3di needs neighbours on both sides
        return "D" * n_res
    with np.errstate(invalid="ignore", divide="ignore"):
        states = enc.encode_atoms(ca=ca, cb=np.asarray(cb, dtype=np.float32), n=n, c=c)
    out = enc.build_sequence(states).upper()
    assert len(out) == n_res
    return out


def saprot_to_3di(text: str) -> str:
    """The 3Di part of a SaProt string ("MdEvVp..." = residue letter, then its lowercase 3Di letter).

    '#' (SaProt's mark of a low-confidence residue) is removed, as upstream OneProt does before tokenising.
    """
    return text.strip()[1::2].replace("#", "")


def is_saprot(text: str) -> bool:
    """True for a SaProt-format string: upper-case residue letters alternating with lowercase 3Di or '#'."""
    t = text.strip()
    if len(t) < 2 or len(t) % 2:
        return False
    return all(c.isupper() for c in t[0::2]) and all(c.islower() or c == "#" for c in t[1::2])


def upstream_3di_letters(text: str) -> str:
    """Any 3Di item (plain Foldseek letters in either case, or a SaProt string) -> lowercase 3Di, '#' removed."""
    t = saprot_to_3di(text) if is_saprot(text) else text.strip()
    return t.replace("#", "").lower()
