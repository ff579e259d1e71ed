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

from dataclasses import dataclass, field
from pathlib import Path

import gemmi
import numpy as np

from engine.data.gemmi_io import is_amino_acid, parse_structure_file, residue_letter
from engine.data.header import Header, read_cif_header, read_pdb_header
from engine.data.plddt import chain_plddt
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


def read_structure(
    path: str | Path,
    min_length: int = MIN_CHAIN_LENGTH,
    max_length: int | None = DEFAULT_MAX_LENGTH,
    cutoff: float = CONTACT_CUTOFF,
    source: str = "",
    plddt: str = "auto",
) -> StructureFile:
    """Read a PDB/mmCIF file into per-chain records; raise OneProtError if the file is unusable.

    plddt: "auto" | "bfactor" | "off", where per-residue confidence comes from (engine.data.plddt);
    records of predicted models carry it as extra["plddt"] (a list, NaN where a residue has none).
    """
    path = Path(path)
    st, block, is_cif, text = parse_structure_file(path)
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
        aa = [r for r in residues if is_amino_acid(r)]
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
        conf = chain_plddt(residues, block, is_cif, text, plddt, f"{path}:{cname}")
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
                   "plddt": None if conf is None else [float(x) for x in conf],
                   "title": header.title, "keywords": header.keywords,
                   "classification": header.classification, "pdb_id": header.pdb_id,
                   "gene": mol.gene if mol else None},
        )
        if ca_only:
            out.notes.append(f"chain {cname}: CA-only (backbone N/C missing), kept as sequence-only")
        out.records.append(rec)
    return out
