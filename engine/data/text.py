"""Compose a protein's text description from whatever descriptive fields exist.

Order: name, organism, gene, EC number, function, keywords, GO terms, structure title and
keywords. Empty fields are left out; the same fact is not repeated. Family labels are deliberately
NOT put into the text, so family probes on text embeddings do not read the label back.
"""

from __future__ import annotations

import re


def compose_text(
    name: str | None = None,
    organism: str | None = None,
    gene: str | None = None,
    ec: str | None = None,
    function: str | None = None,
    keywords: list[str] | str | None = None,
    go: list[str] | None = None,
    title: str | None = None,
    structure_keywords: str | None = None,
    max_chars: int = 2000,
) -> str:
    """One readable paragraph from the given fields ('' when none is given)."""
    parts: list[str] = []

    def add(s: str | None) -> None:
        s = re.sub(r"\s+", " ", (s or "")).strip().rstrip(".")
        if s and not any(s.lower() in p.lower() for p in parts):
            parts.append(s)

    add(_tidy(name))
    if organism:
        add(f"Organism: {organism}")
    if gene:
        add(f"Gene: {gene}")
    if ec:
        add(f"EC {ec}")
    add(function)
    if keywords:
        add("Keywords: " + (keywords if isinstance(keywords, str) else ", ".join(keywords)))
    if go:
        add("GO: " + "; ".join(g.split(" ", 1)[-1] for g in go[:10]))
    add(_tidy(title))
    if structure_keywords:
        add("Structure keywords: " + _tidy(structure_keywords))
    text = ". ".join(parts) + ("." if parts else "")
    return text[:max_chars]


def _tidy(s: str | None) -> str:
    """PDB headers are upper case; lower-case them so text models see ordinary prose."""
    s = (s or "").strip()
    if s and s.upper() == s and any(ch.isalpha() for ch in s):
        s = s.lower()
        s = s[0].upper() + s[1:]
    return s
