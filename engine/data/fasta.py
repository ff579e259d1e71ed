"""FASTA reader (plain or .gz) with UniProt header parsing (name, OS= organism, GN= gene)."""

from __future__ import annotations

import gzip
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from engine.errors import OneProtError

FASTA_SUFFIXES = (".fasta", ".fa", ".faa", ".fas", ".fsa", ".seq", ".pep")
_UNIPROT = re.compile(r"^(sp|tr)\|([^|]+)\|(\S+)\s*(.*)$")
_FIELD = re.compile(r"\b(OS|OX|GN|PE|SV)=")


@dataclass
class FastaEntry:
    """One FASTA record; `sequence` is raw (not yet cleaned)."""

    id: str
    description: str
    sequence: str


def is_fasta_path(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith(FASTA_SUFFIXES)


def open_text(path: Path):
    """Open plain or gzipped text; binary content surfaces as UnicodeDecodeError on read."""
    return gzip.open(path, "rt") if path.name.lower().endswith(".gz") else open(path)


def read_fasta(path: str | Path) -> Iterator[FastaEntry]:
    """Yield entries; raise OneProtError for files that are not FASTA (naming the file and line)."""
    path = Path(path)
    ident, desc, chunks = None, "", []
    try:
        with open_text(path) as fh:
            for lineno, line in enumerate(fh, 1):
                line = line.rstrip("\n\r")
                if line.startswith(">"):
                    if ident is not None:
                        yield FastaEntry(ident, desc, "".join(chunks))
                    head = line[1:].strip()
                    ident, _, desc = head.partition(" ")
                    if not ident:
                        ident = f"{path.name}:{lineno}"
                    chunks = []
                elif line.startswith(";") or not line.strip():
                    continue
                elif ident is None:
                    raise OneProtError(f"line {lineno}: sequence data before any '>' header; not FASTA", str(path))
                else:
                    chunks.append(line)
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise OneProtError(f"cannot read as FASTA text ({exc.__class__.__name__}); binary or truncated?", str(path)) from None
    if ident is not None:
        yield FastaEntry(ident, desc, "".join(chunks))


def parse_uniprot_header(ident: str, description: str) -> dict:
    """'sp|P69905|HBA_HUMAN Hemoglobin subunit alpha OS=Homo sapiens OX=9606 GN=HBA1 PE=1 SV=2' -> fields.

    Returns accession, entry_name, name, organism, gene (missing ones are None); for a non-UniProt
    header `name` is the whole description.
    """
    out = {"accession": None, "entry_name": None, "name": description.strip(), "organism": None, "gene": None}
    m = _UNIPROT.match(f"{ident} {description}".strip())
    if m:
        out["accession"], out["entry_name"] = m.group(2), m.group(3)
        description = m.group(4)
    first = _FIELD.search(description)
    out["name"] = (description[: first.start()] if first else description).strip()
    for key, value in re.findall(r"\b(OS|GN)=(.*?)(?=\s+\b(?:OS|OX|GN|PE|SV|Split)=|$)", description):
        out["organism" if key == "OS" else "gene"] = value.strip()
    return out
