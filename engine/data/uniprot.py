"""UniProt readers: Swiss-Prot flat files (.dat/.txt/.swiss) and UniProt TSV downloads."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from engine.data.fasta import open_text
from engine.errors import OneProtError

_EC = re.compile(r"EC=([\d.n-]+)")
_PUBMED = re.compile(r"\s*\{ECO:[^}]*\}|\(PubMed:[^)]*\)")


@dataclass
class UniProtEntry:
    """Fields of one UniProt entry; any may be empty."""

    entry_name: str
    accession: str = ""
    name: str = ""
    function: str = ""
    keywords: list[str] = field(default_factory=list)
    ec: str | None = None
    go: list[str] = field(default_factory=list)  # "GO:0005515 protein binding"
    organism: str = ""
    gene: str = ""
    pfam: list[str] = field(default_factory=list)  # "PF00042 Globin"
    pdb: list[str] = field(default_factory=list)
    sequence: str = ""


def read_swissprot(path: str | Path) -> Iterator[UniProtEntry]:
    """Yield entries of a Swiss-Prot flat file ('ID ... //' records)."""
    path = Path(path)
    lines: list[str] = []
    try:
        with open_text(path) as fh:
            for line in fh:
                if line.startswith("//"):
                    if lines:
                        yield _parse_entry(lines, path)
                    lines = []
                else:
                    lines.append(line.rstrip("\n"))
    except (UnicodeDecodeError, EOFError, OSError) as exc:
        raise OneProtError(f"cannot read as Swiss-Prot text ({exc.__class__.__name__})", str(path)) from None
    if any(l.strip() for l in lines):
        raise OneProtError("last entry has no '//' terminator (truncated file?)", str(path))


def _parse_entry(lines: list[str], path: Path) -> UniProtEntry:
    if not lines[0].startswith("ID   "):
        raise OneProtError(f"entry does not start with an ID line: {lines[0][:40]!r}", str(path))
    e = UniProtEntry(entry_name=lines[0][5:].split()[0])
    de, cc, kw, os_, seq = [], [], [], [], []
    in_seq = False
    for line in lines[1:]:
        tag, body = line[:2], line[5:]
        if in_seq:
            seq.append(line.replace(" ", ""))
        elif tag == "AC" and not e.accession:
            e.accession = body.split(";")[0].strip()
        elif tag == "DE":
            de.append(body)
        elif tag == "GN" and not e.gene:
            m = re.search(r"Name=([^;{]+)", body)
            e.gene = m.group(1).strip() if m else ""
        elif tag == "OS":
            os_.append(body)
        elif tag == "CC":
            cc.append(body)
        elif tag == "KW":
            kw.append(body)
        elif tag == "DR":
            parts = [p.strip() for p in body.rstrip(".").split(";")]
            if parts[0] == "GO" and len(parts) >= 3:
                e.go.append(f"{parts[1]} {parts[2].split(':', 1)[-1]}")
            elif parts[0] == "Pfam" and len(parts) >= 3:
                e.pfam.append(f"{parts[1]} {parts[2]}")
            elif parts[0] == "PDB" and len(parts) >= 2:
                e.pdb.append(parts[1])
        elif tag == "SQ":
            in_seq = True
    de_text = " ".join(de)
    m = re.search(r"RecName: Full=([^;{]+)", de_text) or re.search(r"^\s*([^;]+?)\s*(?:\(EC|\.$|;)", de_text)
    e.name = m.group(1).strip() if m else de_text.strip().rstrip(".")
    ec = _EC.search(de_text) or re.search(r"\(EC ([\d.n-]+)\)", de_text)
    e.ec = ec.group(1) if ec else None
    e.organism = re.sub(r"\s*\(.*$", "", " ".join(os_).strip().rstrip(".")).strip()
    e.function = _comment(cc, "FUNCTION")
    e.keywords = [k.strip() for k in " ".join(kw).rstrip(".").split(";") if k.strip()]
    e.keywords = [_PUBMED.sub("", k).strip() for k in e.keywords]
    e.sequence = "".join(seq)
    return e


def _strip_evidence(text: str) -> str:
    """Remove {ECO:...} and (PubMed:...) tags and the doubled full stops they leave."""
    text = _PUBMED.sub("", text)
    return re.sub(r"\s*\.(\s*\.)+", ".", re.sub(r"\s+", " ", text)).strip()


def _comment(cc: list[str], topic: str) -> str:
    """Text of one '-!- TOPIC:' block of CC lines, without evidence tags."""
    text, on = [], False
    for line in cc:
        if line.startswith("-!-"):
            on = line[4:].startswith(f"{topic}:")
            if on:
                text.append(line[4 + len(topic) + 1:].strip())
        elif on and not line.startswith("---"):
            text.append(line.strip())
    return _strip_evidence(" ".join(text))


# UniProt TSV column headers (as the website/REST API names them) -> entry field
TSV_COLUMNS = {
    "Entry": "accession", "Entry Name": "entry_name", "Protein names": "name",
    "Function [CC]": "function", "Keywords": "keywords", "EC number": "ec",
    "Gene Ontology (GO)": "go", "Organism": "organism", "Gene Names": "gene",
    "Pfam": "pfam", "Sequence": "sequence", "PDB": "pdb",
}


def read_uniprot_tsv(path: str | Path) -> Iterator[UniProtEntry]:
    """Yield entries from a UniProt TSV export; needs at least Entry and Sequence columns."""
    path = Path(path)
    try:
        with open_text(path) as fh:
            reader = csv.DictReader(fh, delimiter="\t")
            cols = reader.fieldnames or []
            if "Sequence" not in cols or not ({"Entry", "Entry Name"} & set(cols)):
                raise OneProtError(f"UniProt TSV needs 'Entry' and 'Sequence' columns; found {cols[:8]}", str(path))
            for row in reader:
                f = {TSV_COLUMNS[k]: (v or "").strip() for k, v in row.items() if k in TSV_COLUMNS}
                e = UniProtEntry(entry_name=f.get("entry_name") or f.get("accession", ""))
                e.accession = f.get("accession", "")
                e.name = re.split(r" \(", f.get("name", ""), maxsplit=1)[0]
                e.function = _strip_evidence(f.get("function", "").removeprefix("FUNCTION: "))
                e.keywords = [k.strip() for k in f.get("keywords", "").split(";") if k.strip()]
                e.ec = f.get("ec", "").split(";")[0].strip() or None
                e.go = [g.strip() for g in f.get("go", "").split(";") if g.strip()]
                e.organism = re.sub(r"\s*\(.*$", "", f.get("organism", ""))
                e.gene = f.get("gene", "").split(" ")[0]
                e.pfam = [p for p in f.get("pfam", "").split(";") if p]
                e.pdb = [p for p in f.get("pdb", "").split(";") if p]
                e.sequence = f.get("sequence", "")
                yield e
    except (UnicodeDecodeError, EOFError, OSError, csv.Error) as exc:
        raise OneProtError(f"cannot read as UniProt TSV ({exc.__class__.__name__})", str(path)) from None
