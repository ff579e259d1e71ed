"""The rule that keeps test for reporting: every sweep or choice runs on valid, and asking for test is refused."""

from __future__ import annotations

from engine.errors import OneProtError

SELECTION_SPLIT = "valid"


def require_selection_split(split: str | None, where: str) -> str:
    """`split` if a choice may be made on it; a clear OneProtError for test (and for no split at all)."""
    if split == "test":
        raise OneProtError("the test split is for reporting only: sweeps and choices run on valid "
                           "(report the chosen setting on test afterwards with `oneprot evaluate --split test`)", where)
    if split not in ("train", SELECTION_SPLIT):
        raise OneProtError(f"unknown split {split!r}; choices are made on {SELECTION_SPLIT!r}", where)
    return split
