"""Pfam Stockholm alignments as family labels: every sequence in a family's alignment gets #=GF ID/AC."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from engine.data.fasta import open_text
from engine.errors import OneProtError


@dataclass
class StockholmFamily:
    """One alignment block: family id/accession/description and its member sequences (gaps removed)."""

    family_id: str = ""
    accession: str = ""
    description: str = ""
    members: dict[str, str] = field(default_factory=dict)  # sequence name (e.g. "Q9XYZ_HUMAN/12-200") -> residues

    @property
    def label(self) -> str:
        """'Pkinase (PF00069)'-style label, or whichever of the two exists."""
        if self.family_id and self.accession:
            return f"{self.family_id} ({self.accession.split('.')[0]})"
        return self.family_id or self.accession


def is_stockholm_path(path: Path) -> bool:
    name = path.name.lower().removesuffix(".gz")
    return name.endswith((".sto", ".sth", ".stk", ".stockholm"))


def read_stockholm(path: str | Path) -> list[StockholmFamily]:
    """All alignment blocks of a Stockholm file (one per '# STOCKHOLM 1.0' ... '//')."""
    path = Path(path)
    fams: list[StockholmFamily] = []
    cur: StockholmFamily | None = None
    try:
        with open_text(path) as fh:
            for line in fh:
                line = line.rstrip("\n")
                if line.startswith("# STOCKHOLM"):
                    cur = StockholmFamily()
                elif cur is None:
                    if line.strip():
                        raise OneProtError("missing '# STOCKHOLM 1.0' header", str(path))
                elif line.startswith("//"):
                    fams.append(cur)
                    cur = None
                elif line.startswith("#=GF"):
                    parts = line.split(None, 2)
                    if len(parts) == 3:
                        tag, value = parts[1], parts[2].strip()
                        if tag == "ID":
                            cur.family_id = value
                        elif tag == "AC":
                            cur.accession = value
                        elif tag == "DE":
                            cur.description = value
                elif line.startswith("#") or not line.strip():
                    continue
                else:
                    parts = line.split()
                    if len(parts) == 2:
                        name, aligned = parts
                        residues = "".join(ch for ch in aligned if ch.isalpha()).upper()
                        cur.members[name] = cur.members.get(name, "") + residues
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise OneProtError(f"cannot read as Stockholm text ({exc.__class__.__name__})", str(path)) from None
    if cur is not None:
        raise OneProtError("alignment has no closing '//' (truncated file?)", str(path))
    return fams
