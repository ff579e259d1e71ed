"""PDB and mmCIF reader (plain or .gz) built on gemmi: one ProteinRecord per protein chain.

Per chain (first model only): the one-letter sequence (modified residues mapped to their parent
through gemmi's residue table, e.g. MSE -> M; unknown residues -> X), N/CA/C/O coordinates
(L, 4, 3) with NaN for missing atoms (first alternative location wins), author residue numbers
with insertion codes, header text and EC/organism from the header, and ligand-contact pockets
(engine.data.pockets). Chains that are not protein (DNA/RNA, sugar) or shorter than
`min_length` are reported in `StructureFile.skipped`. CA-only chains (fewer than half of the
residues with N and C atoms) are kept as sequence-only records (coords=None) and reported.
"""

from __future__ import annotations

import gzip
import re
from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from engine.data.header import Header, read_cif_header, read_pdb_header
from engine.data.pockets import CONTACT_CUTOFF, ligand_pockets
from engine.data.sequence import DEFAULT_MAX_LENGTH, clean_sequence
from engine.errors import OneProtError
from engine.modality import BACKBONE_ATOMS, SIDE_CHAIN_SLOTS, ProteinRecord

MIN_CHAIN_LENGTH = 20
STRUCTURE_SUFFIXES = (".pdb", ".ent", ".cif", ".mmcif", ".pdb1")


@dataclass
class StructureFile:
    """What one structure file yielded: protein chains and the chains left out, with reasons."""

    records: list[ProteinRecord]
    skipped: list[tuple[str, str]] = field(default_factory=list)  # (chain, reason)
    header: Header = field(default_factory=Header)
    notes: list[str] = field(default_factory=list)  # kept-but-degraded chains, e.g. CA-only


def is_structure_path(path: Path) -> bool:
    """True when the file name says PDB/mmCIF (optionally gzipped)."""
    name = path.name.lower()
    if name.endswith(".gz"):
        name = name[:-3]
    return name.endswith(STRUCTURE_SUFFIXES)


def file_stem(path: Path) -> str:
    """File name without .gz and the structure extension: '1abc.cif.gz' -> '1abc'."""
    name = path.name
    if name.lower().endswith(".gz"):
        name = name[:-3]
    return name.rsplit(".", 1)[0] if "." in name else name


def residue_letter(name: str) -> str:
    """One-letter code of a residue name via gemmi's table; modified residues map to their parent."""
    info = gemmi.find_tabulated_residue(name)
    if info is None or not info.found() or not info.is_amino_acid():
        return "X"
    code = info.one_letter_code.strip()
    return code.upper() if code and code != "?" else "X"


def _is_amino_acid(res: gemmi.Residue) -> bool:
    """Amino acid by gemmi's table; a residue the table does not know counts when it has a CA (-> X)."""
    info = gemmi.find_tabulated_residue(res.name)
    if info is None or not info.found():
        return res.find_atom("CA", "*") is not None
    return info.is_amino_acid()


def _read_text(path: Path) -> str:
    # trust the content over the name: some '.gz' files are plain text
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    opener = gzip.open if gz else open
    try:
        with opener(path, "rt", errors="strict") as fh:
            return fh.read()
    except (OSError, EOFError) as exc:  # truncated gzip -> EOFError, garbled gzip -> OSError
        raise OneProtError(f"cannot read file ({exc.__class__.__name__}: {exc}); truncated or not gzip?", str(path)) from None
    except UnicodeDecodeError:
        raise OneProtError("binary content, not a text PDB/mmCIF file", str(path)) from None


def _drop_old_stamps(text: str) -> str:
    """Cut pre-1996 'IDCODE serial' stamps in columns 73-80 of coordinate lines.

    Old files put e.g. '1CIH 205' where element and charge live today, or a serial number in the
    charge columns; gemmi would read the digits as a charge and fail. Without the stamp gemmi
    infers the element from the atom name.
    """
    lines = text.splitlines()
    changed = False
    for i, line in enumerate(lines):
        if line.startswith(("ATOM  ", "HETATM")) and len(line) > 76:
            elem = line[76:78].strip()
            if elem and not elem.isalpha():
                lines[i] = line[:72]
                changed = True
            elif len(line) > 78 and not re.fullmatch(r"\s*|[0-9][+-]|[+-][0-9]", line[78:80]):
                lines[i] = line[:78]  # a serial number where the charge belongs
                changed = True
    return "\n".join(lines) + "\n" if changed else text


def _parse(path: Path) -> tuple[gemmi.Structure, "gemmi.cif.Block | None", bool, str]:
    """gemmi Structure (plus CIF block, format flag and raw text) of a PDB/mmCIF file."""
    text = _read_text(path)
    if not text.strip():
        raise OneProtError("empty file", str(path))
    name = path.name.lower().removesuffix(".gz")
    block = None
    is_cif = name.endswith((".cif", ".mmcif")) or bool(re.match(r"(\s*#.*\n)*\s*data_", text))
    try:
        if is_cif:
            doc = gemmi.cif.read_string(text)
            # multi-block files: take the first block with atoms (others are dictionaries, restraints)
            block = next((b for b in doc if b.find_values("_atom_site.Cartn_x")), doc[0] if len(doc) else None)
            if block is None:
                raise OneProtError("no data block", str(path))
            st = gemmi.make_structure_from_block(block)
        else:
            st = gemmi.read_pdb_string(_drop_old_stamps(text))
    except (RuntimeError, ValueError, IndexError) as exc:
        raise OneProtError(f"gemmi cannot parse it: {exc}", str(path)) from None
    if len(st) == 0 or not any(len(ch) for ch in st[0]):
        raise OneProtError("no atoms (header-only, chemical dictionary or truncated file)", str(path))
    return st, block, is_cif, text


def load_gemmi_structure(path: Path) -> gemmi.Structure:
    """The gemmi Structure of a file, with the same checks and fixes as read_structure."""
    st, _, _, _ = _parse(Path(path))
    st.setup_entities()
    return st


def read_structure(
    path: str | Path,
    min_length: int = MIN_CHAIN_LENGTH,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    cutoff: float = CONTACT_CUTOFF,
    source: str = "",
) -> StructureFile:
    """Read a PDB/mmCIF file into per-chain records; raise OneProtError if the file is unusable."""
    path = Path(path)
    st, block, is_cif, text = _parse(path)
    st.setup_entities()
    header = read_cif_header(block, st) if is_cif else read_pdb_header(text.splitlines())
    model = st[0]
    stem = file_stem(path)
    out = StructureFile(records=[], header=header)
    chains: dict[str, list[gemmi.Residue]] = {}
    seen_names: set[str] = set()
    for chain in model:
        if chain.name in seen_names:  # PDB files may split one chain around ligands/waters
            continue
        seen_names.add(chain.name)
        polymer = chain.get_polymer()
        residues = list(polymer) if len(polymer) else []
        ptype = polymer.check_polymer_type() if len(polymer) else gemmi.PolymerType.Unknown
        if ptype in (gemmi.PolymerType.Dna, gemmi.PolymerType.Rna, gemmi.PolymerType.DnaRnaHybrid):
            out.skipped.append((chain.name, f"non-protein chain ({ptype.name})"))
            continue
        aa = [r for r in residues if _is_amino_acid(r)]
        if not residues:
            out.skipped.append((chain.name, "no polymer chain (ligands/waters only)"))
            continue
        if len(aa) < 0.5 * len(residues):
            out.skipped.append((chain.name, "non-protein chain (not amino acids)"))
            continue
        if len(aa) < min_length:
            out.skipped.append((chain.name, f"too short ({len(aa)} residues < {min_length})"))
            continue
        chains[chain.name] = aa
    if not chains:
        return out
    pockets = ligand_pockets(model, chains, cutoff=cutoff)
    for cname, residues in chains.items():
        label = cname.strip() or "_"  # old files may have a blank chain id
        rid = stem if stem.endswith(f"_{label}") else f"{stem}_{label}"
        raw = "".join(residue_letter(r.name) for r in residues)
        try:
            seq = clean_sequence(raw, where=f"{path}:{cname}", max_length=max_length)
        except OneProtError as exc:
            out.skipped.append((cname, exc.message))
            continue
        coords = np.full((len(residues), 4, 3), np.nan, dtype=np.float32)
        cb = np.full((len(residues), 3), np.nan, dtype=np.float32)
        side = np.full((len(residues), len(SIDE_CHAIN_SLOTS), 3), np.nan, dtype=np.float32)
        for i, res in enumerate(residues):
            for j, atom_name in enumerate(BACKBONE_ATOMS):
                a = res.find_atom(atom_name, "*")
                if a is not None:
                    coords[i, j] = a.pos.tolist()
            a = res.find_atom("CB", "*")
            if a is not None:
                cb[i] = a.pos.tolist()
            for k, names in enumerate(SIDE_CHAIN_SLOTS):
                for name in names:
                    a = res.find_atom(name, "*")
                    if a is not None:
                        side[i, k] = a.pos.tolist()
                        break
        has_nc = np.isfinite(coords[:, [0, 2], 0]).all(axis=1).mean()
        ca_only = has_nc < 0.5
        mol = header.molecule_for(cname)
        rec = ProteinRecord(
            id=rid, sequence=seq, name=(mol.name if mol else "") or header.title,
            coords=None if ca_only else coords,
            residue_numbers=[f"{r.seqid.num}{r.seqid.icode.strip()}" for r in residues],
            pockets=[] if ca_only else pockets.get(cname, []),
            ec=mol.ec if mol else None, organism=mol.organism if mol else None,
            source=source or str(path),
            extra={"chain": cname, "file": str(path), "cb": None if ca_only else cb,
                   "side_chains": None if ca_only else side,
                   "title": header.title, "keywords": header.keywords,
                   "classification": header.classification, "pdb_id": header.pdb_id,
                   "gene": mol.gene if mol else None},
        )
        if ca_only:
            out.notes.append(f"chain {cname}: CA-only (backbone N/C missing), kept as sequence-only")
        out.records.append(rec)
    return out
