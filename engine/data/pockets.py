"""Binding pockets: residues in contact with a bound ligand, and import of P2Rank / fpocket output.

Ligand-contact rule: a pocket is every protein residue with at least one heavy atom within
`CONTACT_CUTOFF` = 4.5 Angstrom of a heavy atom of one ligand group, kept when at least
`MIN_POCKET_RESIDUES` = 3 residues of that chain are in contact. A ligand group is one HETATM
residue that is not part of any polymer chain (protein, DNA, RNA), not water, has at least 2 heavy atoms (single
atoms are ions), and is not in `EXCLUDED_LIGANDS` (ions, buffers, cryo-protectants and other
crystallisation additives). Ligand names come from the Chemical Component Dictionary shipped in
biotite (biotite.structure.info).

Ligand-free structures get predicted pockets in engine.data.pocket_prediction (fpocket-rs).
"""

from __future__ import annotations

import csv
import re
from functools import lru_cache
from pathlib import Path

import gemmi
import numpy as np
from scipy.spatial import cKDTree

from engine.errors import OneProtError
from engine.modality import Pocket, ProteinRecord

CONTACT_CUTOFF = 4.5
MIN_POCKET_RESIDUES = 3
WATERS = frozenset({"HOH", "WAT", "DOD", "H2O", "TIP", "TIP3", "SOL"})
# Ions and common crystallisation additives: contacts with these are not binding pockets.
EXCLUDED_LIGANDS = frozenset({
    # ions (multi-atom ones; single-atom ions are excluded by the 2-heavy-atom rule)
    "SO4", "PO4", "NO3", "NH4", "CO3", "SCN", "AZI", "CYN", "OH", "PER", "IOD", "VO4", "WO4", "MOO",
    "SF4", "FES", "PI", "2HP", "PO3", "SO3", "NO2", "CAC", "ARS", "BCT",
    # buffers, cryo-protectants, detergents, precipitants, reductants
    "GOL", "EDO", "PEG", "PGE", "PG4", "1PE", "P6G", "2PE", "PE4", "PE8", "15P", "MPD", "MRD", "DMS",
    "ACT", "ACY", "FMT", "TRS", "EPE", "MES", "HEPES", "BME", "DTT", "DTU", "CIT", "FLC", "TAR", "MLI",
    "IPA", "EOH", "MOH", "ACE", "NH2", "BU3", "PGO", "PGR", "1BO", "POL", "BOG", "LDA", "C8E", "SDS",
    "DMF", "IMD", "MLA", "SIN", "GAI", "URE", "TLA", "BTB", "B3P", "CAD", "NHE", "CXS", "PIN", "MPO",
    "ETF", "TFA", "CL3", "HEZ", "P33", "7PE", "12P", "XPE", "PEU", "DOX", "DIO", "OXY", "PEO", "HTO",
    # pseudo-atoms: OPM membrane boundary markers, unknown ligands
    "DUM", "UNX", "UNL",
})


@lru_cache(maxsize=4096)
def ligand_name(code: str) -> str:
    """CCD full name of a chemical component code ('' if the dictionary does not know it)."""
    try:
        import biotite.structure.info as info

        return info.full_name(code.upper()) or ""
    except Exception:  # unknown codes raise or return None depending on biotite version
        return ""


def is_ligand(residue: gemmi.Residue) -> bool:
    """True for a HETATM group that counts as a bound ligand under the module's rule."""
    name = residue.name.upper()
    if name in WATERS or name in EXCLUDED_LIGANDS:
        return False
    return sum(1 for a in residue if not a.is_hydrogen()) >= 2


def ligand_pockets(
    model: gemmi.Model,
    chains: dict[str, list[gemmi.Residue]],
    cutoff: float = CONTACT_CUTOFF,
    min_residues: int = MIN_POCKET_RESIDUES,
) -> dict[str, list[Pocket]]:
    """Pockets per chain name. `chains` maps a chain name to its protein residues in sequence order."""
    polymer_ids = {id(r) for residues in chains.values() for r in residues}
    atoms, owner = [], []  # protein heavy atoms and (chain, residue index) of each
    for cname, residues in chains.items():
        for i, res in enumerate(residues):
            for a in res:
                if not a.is_hydrogen():
                    atoms.append(a.pos.tolist())
                    owner.append((cname, i))
    out: dict[str, list[Pocket]] = {c: [] for c in chains}
    if not atoms:
        return out
    tree = cKDTree(np.asarray(atoms, dtype=np.float64))
    polymer_keys = {(c, str(r.seqid)) for c, rs in chains.items() for r in rs}
    for chain in model:
        for res in chain:
            if id(res) in polymer_ids or (chain.name, str(res.seqid)) in polymer_keys:
                continue
            if res.entity_type in (gemmi.EntityType.Polymer, gemmi.EntityType.Water):
                continue  # residues of other polymers (RNA/DNA, other proteins) are partners, not ligands
            info = gemmi.find_tabulated_residue(res.name)
            if res.het_flag != "H" and info is not None and info.found() and info.is_amino_acid():
                continue  # stray ATOM amino acids outside the polymer are not ligands
            if not is_ligand(res):
                continue
            heavy = [a for a in res if not a.is_hydrogen()]
            lig = np.array([a.pos.tolist() for a in heavy], dtype=np.float32)
            hits: dict[str, set[int]] = {}
            for idx_list in tree.query_ball_point(lig, r=cutoff):
                for k in idx_list:
                    c, i = owner[k]
                    hits.setdefault(c, set()).add(i)
            for cname, residue_set in hits.items():
                if len(residue_set) < min_residues:
                    continue
                out[cname].append(Pocket(
                    residues=sorted(residue_set), ligand_code=res.name.upper(),
                    ligand_name=ligand_name(res.name), source="ligand",
                    center=lig.mean(axis=0), ligand_coords=lig,
                    ligand_elements=[a.element.name for a in heavy],
                ))
    return out


# ---- predicted pockets from external tools ----------------------------------------------
def _residue_lookup(records: list[ProteinRecord]) -> dict[tuple[str, str], tuple[ProteinRecord, int]]:
    out = {}
    for r in records:
        chain = r.extra.get("chain", "")
        for i, num in enumerate(r.residue_numbers or []):
            out[(chain, str(num))] = (r, i)
    return out


def _group(keys: list[tuple[str, str]], lookup) -> dict[str, tuple[ProteinRecord, list[int]]]:
    by_record: dict[str, tuple[ProteinRecord, list[int]]] = {}
    for key in keys:
        hit = lookup.get(key)
        if hit:
            rec, i = hit
            by_record.setdefault(rec.id, (rec, []))[1].append(i)
    return by_record


def import_p2rank(csv_path: str | Path, records: list[ProteinRecord]) -> dict[str, list[Pocket]]:
    """Pockets from a P2Rank `<name>_predictions.csv` (columns incl. center_x/y/z and residue_ids).

    residue_ids look like "A_45 A_46 B_102A" (chain_number+insertion code); each predicted pocket is
    attached to every chain it touches, with P2Rank's score.
    """
    path = Path(csv_path)
    try:
        with open(path, newline="") as fh:
            rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k} for row in csv.DictReader(fh)]
    except (OSError, UnicodeDecodeError, csv.Error) as exc:
        raise OneProtError(f"cannot read P2Rank predictions: {exc}", str(path)) from None
    if rows and "residue_ids" not in rows[0]:
        raise OneProtError("no residue_ids column (is this a P2Rank *_predictions.csv?)", str(path))
    lookup = _residue_lookup(records)
    out: dict[str, list[Pocket]] = {}
    for row in rows:
        keys = []
        for tok in row.get("residue_ids", "").split():
            chain, _, num = tok.partition("_")
            keys.append((chain, num))
        center = np.array([float(row.get(f"center_{a}", "nan") or "nan") for a in "xyz"], dtype=np.float32)
        score = float(row["score"]) if row.get("score") else None
        for rid, (rec, idx) in _group(keys, lookup).items():
            out.setdefault(rid, []).append(Pocket(residues=sorted(set(idx)), source="p2rank",
                                                  center=center, score=score))
    return out


_FPOCKET_HEAD = re.compile(r"^Pocket\s+(\d+)\s*:", re.M)


def import_fpocket(out_dir: str | Path, records: list[ProteinRecord]) -> dict[str, list[Pocket]]:
    """Pockets from an fpocket output folder `<name>_out/` (`<name>_info.txt` + `pockets/pocketN_atm.pdb`)."""
    out_dir = Path(out_dir)
    infos = sorted(out_dir.glob("*_info.txt"))
    if not infos:
        raise OneProtError("no *_info.txt (is this an fpocket <name>_out folder?)", str(out_dir))
    text = infos[0].read_text(errors="replace")
    scores: dict[int, float] = {}
    for m in _FPOCKET_HEAD.finditer(text):
        block = text[m.end(): m.end() + 600]
        s = re.search(r"^\s*Score\s*:\s*([-\d.]+)", block, re.M)
        if s:
            scores[int(m.group(1))] = float(s.group(1))
    lookup = _residue_lookup(records)
    out: dict[str, list[Pocket]] = {}
    for n in sorted(scores):
        atm = out_dir / "pockets" / f"pocket{n}_atm.pdb"
        if not atm.is_file():
            continue
        keys, xyz = [], []
        for line in atm.read_text(errors="replace").splitlines():
            if line.startswith(("ATOM", "HETATM")) and len(line) >= 54:
                try:
                    xyz.append([float(line[30:38]), float(line[38:46]), float(line[46:54])])
                except ValueError:
                    raise OneProtError(f"bad coordinate line: {line[:54]!r}", str(atm)) from None
                keys.append((line[21].strip(), (line[22:26].strip() + line[26].strip())))
        center = np.asarray(xyz, dtype=np.float32).mean(axis=0) if xyz else None
        for rid, (rec, idx) in _group(keys, lookup).items():
            out.setdefault(rid, []).append(Pocket(residues=sorted(set(idx)), source="fpocket",
                                                  center=center, score=scores[n]))
    return out
