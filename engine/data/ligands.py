"""Ligand files beside protein files (PDBbind / PoseBusters / CrossDocked layout) -> ligand-contact pockets.

Pairing: a structure `<base>_protein.pdb` (or `<stem>.pdb`) takes `<base>_ligand.sdf|.mol2` (or
`<stem>_ligand.sdf|.mol2`) from its own folder, else from `--ligands DIR`. Ligands are read with
RDKit (SDF: every record; MOL2: the first molecule) without sanitising, since docking outputs often
fail RDKit's valence rules although their coordinates are fine; hydrogens are dropped. The pocket
is the protein residues with a heavy atom within 4.5 A of a ligand heavy atom (the same rule as
HETATM ligands, engine.data.pockets); its centre is the ligand's heavy-atom centroid.
A file that does not parse, or whose ligand touches fewer than 3 residues of any chain (a
mismatched pair), is reported with its reason and adds no pocket.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import OneProtError
from engine.modality import Pocket, ProteinRecord

LIGAND_SUFFIXES = (".sdf", ".mol2")
CONTACT_CUTOFF = 4.5  # same as engine.data.pockets.CONTACT_CUTOFF
MIN_POCKET_RESIDUES = 3


@dataclass
class Ligand:
    """Heavy atoms of one ligand molecule."""

    name: str
    coords: np.ndarray  # (K, 3) float32
    elements: list[str]


def is_ligand_path(path: Path) -> bool:
    """True for .sdf / .mol2 files (optionally gzipped)."""
    return path.name.lower().removesuffix(".gz").endswith(LIGAND_SUFFIXES)


def _protein_base(stem: str) -> str:
    return stem[: -len("_protein")] if stem.endswith("_protein") else stem


def ligand_base(path: Path) -> str:
    """The stem a ligand file pairs on: '1abc_ligand.sdf' -> '1abc'."""
    name = path.name.removesuffix(".gz")
    stem = name.rsplit(".", 1)[0]
    return stem[: -len("_ligand")] if stem.endswith("_ligand") else stem


def find_ligand_files(structure: Path, stem: str, ligand_dir: Path | None = None) -> list[Path]:
    """Ligand files paired with a structure file whose stem (no extensions) is `stem`."""
    base = _protein_base(stem)
    names = [f"{b}_ligand{ext}{gz}" for b in dict.fromkeys((base, stem)) for ext in LIGAND_SUFFIXES for gz in ("", ".gz")]
    for folder in (structure.parent, ligand_dir):
        if folder is None:
            continue
        found = [folder / n for n in names if (folder / n).is_file()]
        if found:
            return found
    return []


def _text(path: Path) -> str:
    import gzip

    try:
        raw = gzip.open(path, "rb").read() if path.name.lower().endswith(".gz") else path.read_bytes()
    except (OSError, EOFError) as exc:
        raise OneProtError(f"unreadable ligand file: {exc}", str(path)) from None
    if b"\x00" in raw[:4096]:
        raise OneProtError("binary file, not SDF/MOL2", str(path))
    return raw.decode("utf-8", errors="replace")


def read_ligands(path: str | Path) -> list[Ligand]:
    """Every molecule of an SDF, or the first of a MOL2; OneProtError naming the file when none parses."""
    from rdkit import Chem
    from rdkit.rdBase import BlockLogs

    path = Path(path)
    text = _text(path)
    if not text.strip():
        raise OneProtError("empty ligand file", str(path))
    _block = BlockLogs()  # RDKit prints parse errors to stderr; the reason is reported per file instead
    mols = []
    if path.name.lower().removesuffix(".gz").endswith(".sdf"):
        blocks = [b for b in text.split("$$$$") if b.strip()]
        for b in blocks:
            mols.append(Chem.MolFromMolBlock(b, sanitize=False, removeHs=False))
        bad = sum(m is None for m in mols)
        if bad == len(mols):
            raise OneProtError(f"no parsable molecule ({len(blocks)} record(s); truncated or not SDF)", str(path))
    else:
        if "@<TRIPOS>ATOM" not in text:
            raise OneProtError("no @<TRIPOS>ATOM section (truncated or not MOL2)", str(path))
        mols.append(Chem.MolFromMol2Block(text, sanitize=False, removeHs=False, cleanupSubstructures=False))
        if mols[0] is None:
            raise OneProtError("RDKit cannot parse this MOL2 (truncated or malformed atom/bond records)", str(path))
    out = []
    for k, m in enumerate(mols):
        if m is None or m.GetNumConformers() == 0:
            continue
        pos = m.GetConformer().GetPositions()
        heavy = [a.GetIdx() for a in m.GetAtoms() if a.GetAtomicNum() > 1]
        if not heavy:
            continue
        name = m.GetProp("_Name").strip() if m.HasProp("_Name") else ""
        out.append(Ligand(name=name or f"{ligand_base(path)}#{k + 1}", coords=pos[heavy].astype(np.float32),
                          elements=[m.GetAtomWithIdx(i).GetSymbol() for i in heavy]))
    if not out:
        raise OneProtError("no ligand heavy atoms with coordinates", str(path))
    if any(not np.isfinite(lig.coords).all() for lig in out):
        raise OneProtError("non-finite ligand coordinates", str(path))
    return out


def ligand_file_pockets(structure_path: str | Path, records: list[ProteinRecord], ligand_path: Path,
                        cutoff: float = CONTACT_CUTOFF) -> tuple[dict[str, list[Pocket]], list[str]]:
    """Pockets per record id from a ligand file, and per-molecule problems (e.g. far from every chain)."""
    from scipy.spatial import cKDTree

    from engine.data.gemmi_io import load_gemmi_structure

    ligands = read_ligands(ligand_path)
    st = load_gemmi_structure(Path(structure_path))
    by_key = {(r.extra.get("chain", ""), str(num)): (r, i)
              for r in records if r.coords is not None for i, num in enumerate(r.residue_numbers or [])}
    atoms, owner = [], []
    for chain in st[0]:
        for res in chain:
            hit = by_key.get((chain.name, f"{res.seqid.num}{res.seqid.icode.strip()}"))
            if hit is None:
                continue
            for a in res:
                if not a.is_hydrogen():
                    atoms.append(a.pos.tolist())
                    owner.append(hit)
    if not atoms:
        raise OneProtError("no protein atoms to pair the ligand with", str(ligand_path))
    xyz = np.asarray(atoms, dtype=np.float64)
    tree = cKDTree(xyz)
    out: dict[str, list[Pocket]] = {}
    problems = []
    for lig in ligands:
        per_record: dict[str, tuple[ProteinRecord, set[int]]] = {}
        for idx in tree.query_ball_point(lig.coords.astype(np.float64), r=cutoff):
            for k in idx:
                rec, i = owner[k]
                per_record.setdefault(rec.id, (rec, set()))[1].add(i)
        kept = {rid: v for rid, v in per_record.items() if len(v[1]) >= MIN_POCKET_RESIDUES}
        if not kept:
            dmin = float(tree.query(lig.coords.astype(np.float64))[0].min())
            problems.append(f"ligand {lig.name}: nearest protein atom {dmin:.1f} A away, "
                            f"fewer than {MIN_POCKET_RESIDUES} residues within {cutoff} A (mismatched file?)")
            continue
        for rid, (rec, residues) in kept.items():
            out.setdefault(rid, []).append(Pocket(
                residues=sorted(residues), ligand_code="", ligand_name=lig.name, source="ligand-file",
                center=lig.coords.mean(axis=0), ligand_coords=lig.coords, ligand_elements=lig.elements))
    return out, problems


def attach_ligand_files(structure_path: Path, records: list[ProteinRecord], ligand_files: list[Path]) -> dict:
    """Add each paired ligand file's pockets to `records`; {'ligand_used': {file: pockets},
    'ligand_skipped': [[file, reason]]} for the build report (JSON-able, so it is cached with the parse)."""
    used: dict[str, int] = {}
    skipped: list[list[str]] = []
    for lf in ligand_files:
        try:
            found, problems = ligand_file_pockets(structure_path, records, lf)
        except OneProtError as exc:
            skipped.append([str(lf), exc.message])
            continue
        except Exception as exc:  # an RDKit/gemmi surprise on one file must not end the build
            skipped.append([str(lf), f"unexpected {exc.__class__.__name__} while reading: {exc}"])
            continue
        n = 0
        for r in records:
            r.pockets += found.get(r.id, [])
            n += len(found.get(r.id, []))
        if n:
            used[str(lf)] = n
            skipped += [[str(lf), p] for p in problems]  # other molecules of the file that paired with nothing
        else:
            skipped.append([str(lf), "; ".join(problems) or "no pocket"])
    return {"ligand_used": used, "ligand_skipped": skipped}
