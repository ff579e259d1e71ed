"""gemmi helpers shared by the structure reader and pocket prediction: read a PDB/mmCIF file (plain or .gz)
into a gemmi Structure with the same checks and fixes everywhere, and the residue table lookups."""

from __future__ import annotations

import gzip
import re
from pathlib import Path

import gemmi

from engine.errors import OneProtError


def residue_letter(name: str) -> str:
    """One-letter code of a residue name via gemmi's table; modified residues map to their parent."""
    info = gemmi.find_tabulated_residue(name)
    if info is None or not info.found() or not info.is_amino_acid():
        return "X"
    code = info.one_letter_code.strip()
    return code.upper() if code and code != "?" else "X"


def is_amino_acid(res: gemmi.Residue) -> bool:
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


def parse_structure_file(path: Path) -> tuple[gemmi.Structure, "gemmi.cif.Block | None", bool, str]:
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
    st, _, _, _ = parse_structure_file(Path(path))
    st.setup_entities()
    return st
