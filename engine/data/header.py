"""Descriptive header fields of a PDB or mmCIF file: title, molecules, EC, organism, keywords.

gemmi reads coordinates but keeps only part of the PDB header (COMPND and SOURCE specification
lists are not exposed), so the PDB records are read here as text; mmCIF headers come from
gemmi's CIF document. Both give the same `Header`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import gemmi

_EC = re.compile(r"\b(\d+\.(?:\d+|-)\.(?:\d+|-)\.(?:n?\d+|-))\b")


@dataclass
class Molecule:
    """One COMPND/_entity molecule: the chains it covers and what it is."""

    name: str = ""
    chains: list[str] = field(default_factory=list)
    ec: str | None = None
    organism: str | None = None
    gene: str | None = None


@dataclass
class Header:
    """File-level descriptive text plus per-molecule details."""

    pdb_id: str = ""
    classification: str = ""  # HEADER class, e.g. "OXIDOREDUCTASE"
    title: str = ""
    keywords: str = ""
    molecules: list[Molecule] = field(default_factory=list)

    def molecule_for(self, chain: str) -> Molecule | None:
        """The molecule that lists this chain, or the only molecule when there is one."""
        for m in self.molecules:
            if chain in m.chains:
                return m
        return self.molecules[0] if len(self.molecules) == 1 and not self.molecules[0].chains else None


def read_pdb_header(lines: list[str]) -> Header:
    """Header from the text lines of a PDB file (only lines before the coordinates are needed)."""
    records: dict[str, list[str]] = {}
    pdb_id = classification = ""
    for line in lines:
        rec = line[:6].strip()
        if rec in ("ATOM", "HETATM", "MODEL"):
            break
        if rec == "HEADER":
            classification = line[10:50].strip()
            pdb_id = line[62:66].strip()
        elif rec in ("TITLE", "COMPND", "SOURCE", "KEYWDS"):
            # columns 11-80 hold the text; 73-80 may be an old-style sequence stamp
            body = line[10:72] if len(line) > 72 and re.match(r"\s*\w{4}\s*\d+\s*$", line[72:80]) else line[10:80]
            records.setdefault(rec, []).append(body.rstrip())
    h = Header(pdb_id=pdb_id, classification=classification)
    h.title = _join(records.get("TITLE", []))
    h.keywords = _join(records.get("KEYWDS", []))
    compnd = _join(records.get("COMPND", []), sep="")
    source = _join(records.get("SOURCE", []), sep="")
    h.molecules = _spec_molecules(compnd, source)
    return h


def _join(parts: list[str], sep: str = " ") -> str:
    # continuation lines start with a 2-3 character counter we drop
    out = []
    for i, p in enumerate(parts):
        out.append(re.sub(r"^\s*\d+\s?", "", p, count=1) if i else p.strip())
    return re.sub(r"\s+", " ", sep.join(out)).strip()


def _spec_list(text: str) -> list[dict[str, str]]:
    """'MOL_ID: 1; MOLECULE: X; CHAIN: A, B;' -> list of dicts, one per MOL_ID."""
    blocks: list[dict[str, str]] = []
    for item in text.split(";"):
        if ":" not in item:
            continue
        key, _, value = item.partition(":")
        key = key.strip().upper()
        if key == "MOL_ID" or not blocks:
            blocks.append({})
        blocks[-1][key] = value.strip()
    return blocks


def _spec_molecules(compnd: str, source: str) -> list[Molecule]:
    if compnd and ":" not in compnd:  # pre-1996 free-text COMPND, e.g. "HEMOGLOBIN (DEOXY)"
        org = re.search(r"\(([A-Z][A-Z]+ [A-Z]+)\)", source or "")
        return [Molecule(name=compnd.strip(), organism=org.group(1).capitalize() if org else None)]
    mols = []
    sources = {b.get("MOL_ID", ""): b for b in _spec_list(source)}
    for b in _spec_list(compnd):
        src = sources.get(b.get("MOL_ID", ""), {})
        ec = _EC.search(b.get("EC", ""))
        mols.append(Molecule(
            name=b.get("MOLECULE", "").strip(),
            chains=[c.strip() for c in b.get("CHAIN", "").split(",") if c.strip()],
            ec=ec.group(1) if ec else None,
            organism=(src.get("ORGANISM_SCIENTIFIC") or "").capitalize() or None,
            gene=src.get("GENE") or None,
        ))
    return mols


def read_cif_header(block: gemmi.cif.Block, structure: gemmi.Structure) -> Header:
    """Header from an mmCIF block; molecules are the polymer entities."""
    h = Header(pdb_id=block.name)
    h.title = _value(block, "_struct.title")
    h.keywords = _value(block, "_struct_keywords.text")
    h.classification = _value(block, "_struct_keywords.pdbx_keywords")
    desc = {r[0]: (r[1], r[2]) for r in _rows(block, "_entity.", ["id", "pdbx_description", "pdbx_ec"])}
    orgs: dict[str, str] = {}
    for cat, col in (("_entity_src_gen.", "pdbx_gene_src_scientific_name"),
                     ("_entity_src_nat.", "pdbx_organism_scientific"),
                     ("_pdbx_entity_src_syn.", "organism_scientific")):
        for r in _rows(block, cat, ["entity_id", col]):
            orgs.setdefault(r[0], r[1])
    for ent in structure.entities:
        if ent.entity_type != gemmi.EntityType.Polymer:
            continue
        name, ec_text = desc.get(ent.name, ("", ""))
        ec = _EC.search(ec_text or "")
        chains = sorted({ch.name for ch in structure[0] for sub in ent.subchains
                         if ch.get_subchain(sub).length() > 0}) if len(structure) else []
        h.molecules.append(Molecule(name=name, chains=chains, ec=ec.group(1) if ec else None,
                                    organism=orgs.get(ent.name) or None))
    return h


def _value(block: gemmi.cif.Block, tag: str) -> str:
    v = block.find_value(tag)
    return "" if v is None or v in ("?", ".") else gemmi.cif.as_string(v).strip()


def _rows(block: gemmi.cif.Block, prefix: str, cols: list[str]) -> list[list[str]]:
    table = block.find(prefix, cols)
    out = []
    for row in table:
        vals = ["" if row[i] in ("?", ".") else gemmi.cif.as_string(row[i]).strip() for i in range(len(cols))]
        out.append(vals)
    return out
