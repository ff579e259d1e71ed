"""Turn what a user typed or uploaded into one raw item of one modality, or a clear error.

Sources: a sequence string, a FASTA file (first record), a structure file (PDB/mmCIF; first
protein chain or the chain asked for; as a structure, its first pocket, or its 3Di string), a text,
or the id of a protein already embedded. Every failure is a OneProtError naming the input.
"""

from __future__ import annotations

from dataclasses import dataclass, field
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
        raise OneProtError(f"text has {len(text):,} characters, above the limit of {max_length:,}", where)
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
        raise OneProtError(f"chain has {len(rec.sequence):,} residues, above the limit of {MAX_QUERY_RESIDUES:,}", str(path))
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


LABEL_FIELDS = ("name", "family", "ec", "organism")


@dataclass
class Hit:
    """One search result: rank (1 = nearest, counted after exclusion), stored protein, cosine score."""

    rank: int
    id: str
    score: float
    modality: str
    labels: dict = field(default_factory=dict)  # LABEL_FIELDS from the embeddings' labels; None where missing
    evalue: float | None = None  # engine.significance: expected chance hits this good (None: no table)
    probability: float | None = None  # of being a relative, where calibrated for this modality pair
    significant: bool | None = None

    def to_dict(self) -> dict:
        """The JSON form `oneprot search --json` prints (significance keys only where there is a table)."""
        out = {"rank": self.rank, "id": self.id, "score": round(self.score, 6), "modality": self.modality,
               **self.labels}
        if self.evalue is not None:
            out.update(evalue=float(f"{self.evalue:.3g}"), probability=self.probability, significant=self.significant)
        return out


def search(eset, vector, target: str, k: int = 10, exclude: str | None = None, labels: bool = True,
           query_modality: str | None = None) -> list[Hit]:
    """The top-k stored proteins of `target` modality nearest (cosine) to one (D,) vector, without `exclude`
    (a query protein itself); with `labels`, each hit carries LABEL_FIELDS (store.missing_to_none rule);
    with `query_modality`, each hit's significance (engine.significance) where the embeddings have a table."""
    import numpy as np

    from engine.data.store import missing_to_none

    tgt = parse_modality(target).value
    if k < 1:
        raise OneProtError(f"k must be >= 1, got {k}", "k")
    ids = eset.ids(tgt)
    extra = 1 if exclude else 0
    scores, pos = eset.index(tgt).search(np.asarray(vector, dtype=np.float32)[None, :], int(k) + extra)
    table = eset.labels.set_index("id") if labels and len(eset.labels) else None
    hits: list[Hit] = []
    for s, p in zip(scores[0], pos[0]):
        if p < 0 or ids[int(p)] == exclude:
            continue
        pid = ids[int(p)]
        fields = {}
        if labels:
            for col in LABEL_FIELDS:
                fields[col] = missing_to_none(table[col].get(pid)) if table is not None and col in table.columns else None
        hits.append(Hit(rank=len(hits) + 1, id=pid, score=float(s), modality=tgt, labels=fields))
    hits = hits[: int(k)]
    if query_modality is not None:
        from engine.significance import annotate

        annotate(eset, parse_modality(query_modality).value, tgt, hits)
    return hits


def run_query(eset, query: Query, target: str, k: int = 10, model=None, exclude: str | None = None) -> list[Hit]:
    """Top-k hits of `target` modality for a parsed query (engine.query.search), with their significance;
    `query.summary` gets the significance summary and `query.warnings` any warnings.

    `model` embeds the query item; it must be the model that made `eset` (checked by hash and
    dimension). An id query reuses the stored vector and needs no model.
    """
    from engine.embed import model_identity

    if query.protein_id is not None:
        vec = eset.vector(query.modality, query.protein_id)
    else:
        if model is None:
            raise OneProtError("a checkpoint is needed to embed this query", "checkpoint")
        eset.check_model(model_identity(model), model.config.dim)
        vec = model.embed(query.modality, [query.item])[0]
    hits = search(eset, vec, target, k, exclude)
    from engine.significance import annotate, short_query_warning

    query.summary = annotate(eset, query.modality, parse_modality(target).value, hits)
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
