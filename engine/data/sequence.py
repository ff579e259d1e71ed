"""The one cleaning rule every protein sequence passes through before it enters a store.

Rule (applied in this order):
1. remove all whitespace (spaces, tabs, newlines) and upper-case the rest;
2. drop trailing '*' stop symbols (a '*' anywhere else is rejected);
3. map the rare amino acids to their closest standard letter: U (selenocysteine) -> C,
   O (pyrrolysine) -> K;
4. map ambiguity codes B (D/N), Z (E/Q) and J (I/L) to X; X (unknown) is kept as X;
5. reject any other character (digits, '-', '.', '?', ...) and empty sequences;
6. reject sequences longer than `max_length` residues (default 10,000; configurable).

A rejection raises OneProtError naming the record, so a build can report and skip it.
"""

from __future__ import annotations

import re

from engine.errors import OneProtError

STANDARD = "ACDEFGHIKLMNPQRSTVWY"
ALPHABET = STANDARD + "X"  # what a cleaned sequence may contain
DEFAULT_MAX_LENGTH = 10_000
_MAP = str.maketrans({"U": "C", "O": "K", "B": "X", "Z": "X", "J": "X"})
_WHITESPACE = re.compile(r"\s+")
_BAD = re.compile(f"[^{ALPHABET}]")


def clean_sequence(raw: str, where: str = "sequence", max_length: int | None = DEFAULT_MAX_LENGTH) -> str:
    """Apply the module's cleaning rule; raise OneProtError (naming `where`) if the sequence is unusable."""
    seq = _WHITESPACE.sub("", raw or "").upper().rstrip("*")
    seq = seq.translate(_MAP)
    if not seq:
        raise OneProtError("empty sequence", where)
    bad = _BAD.search(seq)
    if bad:
        chars = "".join(sorted(set(_BAD.findall(seq))))
        raise OneProtError(
            f"invalid character {bad.group()!r} at position {bad.start() + 1} (invalid: {chars!r}); "
            f"allowed: {ALPHABET} plus B/Z/J/U/O and trailing '*'",
            where,
        )
    if max_length is not None and len(seq) > max_length:
        raise OneProtError(f"sequence has {len(seq):,} residues, above the limit of {max_length:,}", where)
    return seq


def is_protein_like(seq: str, min_standard_fraction: float = 0.5) -> bool:
    """True unless the sequence looks like nucleotides (only A/C/G/T/U/N) or is mostly unknown (X)."""
    s = seq.upper()
    if s and set(s) <= set("ACGTUN"):
        return False
    known = sum(ch in STANDARD for ch in s)
    return bool(s) and known / len(s) >= min_standard_fraction
