"""Turn what a user typed or uploaded into one raw item of one modality, or a clear error.

Sources: a sequence string, a FASTA file (first record), a structure file (PDB/mmCIF; first
protein chain or the chain asked for; as a structure, its first pocket, or its 3Di string), a text,
or the id of a protein already embedded. Every failure is a OneProtError naming the input.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine.errors import OneProtError
from engine.modality import Modality, parse_modality

MAX_QUERY_RESIDUES = 5_000  # longer queries are almost always a pasted genome or a whole file by mistake
MAX_QUERY_TEXT = 20_000  # characters


@dataclass
class Query:
    """One parsed query: its modality, the raw item the encoder takes, and what to call it."""

    modality: str
    item: Any = None  # str or StructureInput; None for an id query (its vector is looked up instead)
    label: str = ""
    protein_id: str | None = None  # set for --query-id
    summary: dict | None = None  # significance summary, set by run_query
    warnings: list[str] | None = None  # e.g. a query too short to mean much, set by run_query


def parse_sequence(raw: str, where: str = "query sequence", max_length: int = MAX_QUERY_RESIDUES) -> str:
    """A pasted sequence (FASTA header lines allowed) -> a cleaned amino-acid string."""
    from engine.data.sequence import clean_sequence, is_protein_like

    if raw is None or not raw.strip():
        raise OneProtError("empty sequence", where)
    lines = [l for l in raw.strip().splitlines() if not l.startswith((">", ";"))]
    if raw.strip().startswith(">") and sum(l.startswith(">") for l in raw.splitlines()) > 1:
        raise OneProtError("several FASTA records pasted; give one sequence", where)
    seq = clean_sequence("".join(lines), where=where, max_length=max_length)
    if not is_protein_like(seq):
        raise OneProtError("this looks like a nucleotide sequence (only A/C/G/T/U/N) or mostly X; give a protein", where)
    return seq


def parse_text(raw: str, where: str = "query text", max_length: int = MAX_QUERY_TEXT) -> str:
    """A free-text query, whitespace-normalised; empty or huge texts are refused."""
    text = " ".join((raw or "").split())
    if not text:
        raise OneProtError("empty text", where)
    if len(text) > max_length:
        raise OneProtError(f"text has {len(text)} characters, above the limit of {max_length}", where)
    return text


def read_fasta_query(path: str | Path, max_length: int = MAX_QUERY_RESIDUES) -> tuple[str, str]:
    """(id, cleaned sequence) of the first record of a FASTA file."""
    from engine.data.fasta import read_fasta

    path = Path(path)
    if not path.is_file():
        raise OneProtError("no such file", str(path))
    for entry in read_fasta(path):
        return entry.id, parse_sequence(entry.sequence, where=f"{path}:{entry.id}", max_length=max_length)
    raise OneProtError("no FASTA record in the file (empty?)", str(path))


def read_structure_query(
    path: str | Path, modality: str | Modality = Modality.STRUCTURE, chain: str | None = None
) -> tuple[str, Any]:
    """(chain id, raw item) from a PDB/mmCIF file for structure, pocket or structure_tokens."""
    from engine.data.items import pocket_input
    from engine.data.structure import read_structure
    from engine.modality import StructureInput

    path = Path(path)
    m = parse_modality(modality)
    if not path.is_file():
        raise OneProtError("no such file", str(path))
    parsed = read_structure(path)
    usable = [r for r in parsed.records if r.coords is not None]
    if not usable:
        why = "; ".join(f"chain {c}: {r}" for c, r in parsed.skipped) or "no protein chain with backbone atoms"
        raise OneProtError(f"no usable protein chain ({why})", str(path))
    if chain is not None:
        found = [r for r in usable if r.extra.get("chain") == chain]
        if not found:
            have = ", ".join(str(r.extra.get("chain")) for r in usable)
            raise OneProtError(f"no protein chain {chain!r}; usable chains: {have}", str(path))
        rec = found[0]
    else:
        rec = usable[0]
    if len(rec.sequence) > MAX_QUERY_RESIDUES:
        raise OneProtError(f"chain has {len(rec.sequence)} residues, above the limit of {MAX_QUERY_RESIDUES}", str(path))
    if m is Modality.STRUCTURE:
        return rec.id, StructureInput(sequence=rec.sequence, coords=rec.coords, side_chains=rec.extra.get("side_chains"))
    if m is Modality.POCKET:
        if not rec.pockets:
            raise OneProtError(f"chain {rec.extra.get('chain')} has no ligand pocket to query with", str(path))
        return rec.id, pocket_input(rec.sequence, rec.coords, rec.pockets[0].residues, str(path),
                                    side_chains=rec.extra.get("side_chains"), center=rec.pockets[0].center)
    if m is Modality.STRUCTURE_TOKENS:
        from engine.data.tokens3di import structure_tokens

        return rec.id, structure_tokens(rec.coords, rec.extra.get("cb"))
    if m is Modality.SEQUENCE:
        return rec.id, rec.sequence
    raise OneProtError(f"a structure file cannot be read as {m.value}", "query modality")


def parse_query(
    *,
    sequence: str | None = None,
    fasta: str | Path | None = None,
    structure: str | Path | None = None,
    text: str | None = None,
    protein_id: str | None = None,
    as_modality: str | None = None,
    chain: str | None = None,
    available: list[str] | None = None,
) -> Query:
    """Exactly one source -> Query. `available` (the checkpoint's modalities) rejects a modality it lacks.

    `as_modality` picks how a structure file is read (structure, pocket, structure_tokens) or which
    embedded vector an id query uses (default: sequence).
    """
    given = {k: v for k, v in {"sequence": sequence, "fasta": fasta, "structure": structure, "text": text,
                               "id": protein_id}.items() if v is not None}
    if len(given) != 1:
        got = ", ".join(given) or "none"
        raise OneProtError(f"give exactly one query (sequence, fasta, structure, text or id); got: {got}", "query")
    if sequence is not None:
        q = Query(Modality.SEQUENCE.value, parse_sequence(sequence), "pasted sequence")
    elif fasta is not None:
        rid, seq = read_fasta_query(fasta)
        q = Query(Modality.SEQUENCE.value, seq, rid)
    elif structure is not None:
        m = parse_modality(as_modality or Modality.STRUCTURE)
        _check_available(m.value, available)
        rid, item = read_structure_query(structure, m, chain)
        q = Query(m.value, item, rid)
    elif text is not None:
        q = Query(Modality.TEXT.value, parse_text(text), "text")
    else:
        pid = str(protein_id).strip()
        if not pid:
            raise OneProtError("empty protein id", "query id")
        m = parse_modality(as_modality or Modality.SEQUENCE)
        q = Query(m.value, None, pid, protein_id=pid)
    _check_available(q.modality, available)
    return q


def _check_available(modality: str, available: list[str] | None) -> None:
    if available is not None and modality not in available:
        raise OneProtError(
            f"this checkpoint has no {modality} encoder, so it cannot embed a {modality} query; "
            f"it has: {', '.join(available)}",
            "query modality",
        )


def run_query(eset, query: Query, target: str, k: int = 10, model=None) -> list[dict]:
    """Top-k hits of `target` modality for a parsed query: rank, id, score, E-value, labels.

    Each hit also carries `evalue`, `probability` and `significant` (engine.significance) when the
    embeddings have a significance table; `query.summary` gets that summary and any warnings.

    `model` embeds the query item; it must be the model that made `eset` (checked by hash and
    dimension). An id query reuses the stored vector and needs no model.
    """
    import numpy as np

    from engine.embed import model_identity

    tgt = parse_modality(target).value
    if k < 1:
        raise OneProtError(f"k must be >= 1, got {k}", "k")
    if query.protein_id is not None:
        vec = eset.vector(query.modality, query.protein_id)
    else:
        if model is None:
            raise OneProtError("a checkpoint is needed to embed this query", "checkpoint")
        eset.check_model(model_identity(model), model.config.dim)
        vec = model.embed(query.modality, [query.item])[0]
    index = eset.index(tgt)
    scores, pos = index.search(np.asarray(vec, dtype=np.float32)[None, :], k)
    ids = eset.ids(tgt)
    labels = eset.labels.set_index("id") if len(eset.labels) else None
    hits = []
    for rank, (s, p) in enumerate(zip(scores[0], pos[0]), 1):
        if p < 0:
            continue
        pid = ids[int(p)]
        hit = {"rank": rank, "id": pid, "score": round(float(s), 6), "modality": tgt}
        for col in ("name", "family", "ec", "organism"):
            v = labels[col].get(pid) if labels is not None and col in labels.columns else None
            hit[col] = None if v is None or (isinstance(v, float) and v != v) else v
        hits.append(hit)
    from engine.significance import annotate, short_query_warning

    query.summary = annotate(eset, query.modality, tgt, hits)
    warning = short_query_warning(query.modality, query_length(query))
    query.warnings = [warning] if warning else []
    return hits


def query_length(query: Query) -> int | None:
    """Residues of a sequence/structure query (None for text, or an id query)."""
    item = query.item
    if isinstance(item, str) and query.modality in ("sequence", "structure_tokens"):
        return len(item)
    seq = getattr(item, "sequence", None)
    return len(seq) if isinstance(seq, str) else None
