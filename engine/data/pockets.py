"""Binding pockets: residues in contact with a bound ligand, and import of P2Rank / fpocket output.

Ligand-contact rule: a pocket is every protein residue with at least one heavy atom within
`CONTACT_CUTOFF` = 4.5 Angstrom of a heavy atom of one ligand group, kept when at least
`MIN_POCKET_RESIDUES` = 3 residues of that chain are in contact. A ligand group is one HETATM
residue that is not part of any polymer chain (protein, DNA, RNA), not water, has at least 2 heavy atoms (single
atoms are ions), and is not in `EXCLUDED_LIGANDS` (ions, buffers, cryo-protectants and other
crystallisation additives). Ligand names come from the Chemical Component Dictionary shipped in
biotite (biotite.structure.info).

Ligand-free structures can get a predicted pocket from fpocket-rs (PyPI, a Rust port of fpocket):
`predict_pockets` runs it on the chain alone (ligands and waters removed) and keeps the best-ranked
pockets. fpocket-rs reports residue numbers without insertion codes; each maps to the chain
residue with that number and no insertion code, else the first residue with that number.
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
from engine.files import write_text_atomic
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


@lru_cache(maxsize=2)
def _protein_only(path: str) -> gemmi.Structure:
    """First model without ligands, waters and hydrogens; cached because big files have many chains."""
    from engine.data.structure import load_gemmi_structure

    st = load_gemmi_structure(Path(path))
    st.remove_ligands_and_waters()
    st.remove_hydrogens()
    for m in range(len(st) - 1, 0, -1):
        del st[m]
    return st


def chain_pdb_text(path: str | Path, chain: str) -> str:
    """PDB text of one protein chain (first model, amino acids only, coordinates jittered by a seeded
    0.002 A so degenerate geometry cannot stall the predictor) for pocket predictors."""
    st = _protein_only(str(path)).clone()
    model = st[0]
    for i in range(len(model) - 1, -1, -1):
        if model[i].name != chain:
            del model[i]
    from engine.data.structure import _is_amino_acid

    for ch in model:
        for j in range(len(ch) - 1, -1, -1):
            if not _is_amino_acid(ch[j]):
                del ch[j]  # leftover solvent/ions of MD systems (e.g. TIP3, SOD) would swamp the predictor
        if len(ch.name) > 1:  # mmCIF chain ids like 'SZ0' do not fit PDB columns; one chain is left anyway
            ch.name = "A"
    # fpocket-rs 0.1 can loop forever on degenerate atom geometry (co-spherical points in the Delaunay
    # step); a seeded 0.002 A jitter, below the precision of PDB coordinates, breaks the degeneracy
    rng = np.random.default_rng(0)
    for ch in model:
        for res in ch:
            for a in res:
                dx, dy, dz = rng.normal(0.0, 0.002, 3)
                a.pos = gemmi.Position(a.pos.x + dx, a.pos.y + dy, a.pos.z + dz)
    return st.make_minimal_pdb()


PREDICT_TIMEOUT = 15.0  # seconds (a chain normally takes 0.3-3 s); fpocket-rs 0.1 can hang on a few chains


def _detect_worker(detect, pdb_text: str, out) -> None:
    try:
        out.put(detect(pdb_text))
    except Exception as exc:  # reported to the parent as text
        out.put(f"{exc.__class__.__name__}: {exc}")


def _detect_with_timeout(detect, pdb_text: str, timeout: float) -> dict:
    """Run the predictor in a child process so a hang can be stopped after `timeout` seconds."""
    import multiprocessing as mp
    import queue

    ctx = mp.get_context("fork") if "fork" in mp.get_all_start_methods() else mp.get_context()
    out = ctx.Queue()
    proc = ctx.Process(target=_detect_worker, args=(detect, pdb_text, out), daemon=True)
    proc.start()
    try:
        result = out.get(timeout=timeout)
    except queue.Empty:
        proc.kill()
        proc.join()
        raise OneProtError(f"fpocket-rs gave no answer within {timeout:g} s", "fpocket-rs timeout") from None
    proc.join()
    if isinstance(result, str):
        raise OneProtError(f"fpocket-rs failed: {result}", "fpocket-rs run")
    return result


def predict_pockets(pdb_text: str, record: ProteinRecord, top: int = 1,
                    timeout: float | None = PREDICT_TIMEOUT) -> list[Pocket]:
    """Best `top` fpocket-rs pockets of a protein-only chain, as Pocket(source='fpocket-rs').

    The predictor runs in a child process stopped after `timeout` seconds (None: in-process).
    """
    try:
        import fpocket_rs
    except ImportError:
        raise OneProtError("pocket prediction needs the PyPI package fpocket-rs (pip install fpocket-rs)",
                           "fpocket-rs") from None
    result = _detect_with_timeout(fpocket_rs.detect_pockets, pdb_text, timeout) if timeout else \
        fpocket_rs.detect_pockets(pdb_text)
    numbers = record.residue_numbers or []
    index: dict[str, int] = {}
    for i, num in enumerate(numbers):
        plain = re.match(r"-?\d+", num)
        key = plain.group(0) if plain else num
        if key not in index or num == key:  # prefer the residue without insertion code
            index[key] = i
    out = []
    for p in sorted(result.get("pockets", []), key=lambda q: q.get("rank", 0))[:top]:
        residues = sorted({index[str(num)] for _, num in p.get("residues", []) if str(num) in index})
        if len(residues) < MIN_POCKET_RESIDUES:
            continue
        spheres = np.asarray([s[:3] for s in p.get("alpha_spheres", [])], dtype=np.float32)
        out.append(Pocket(residues=residues, source="fpocket-rs", score=float(p.get("score", 0.0)),
                          center=spheres.mean(axis=0) if len(spheres) else None))
    return out


def predict_pockets_cached(path: str | Path, record: ProteinRecord, top: int = 1,
                           cache_dir: Path | None = None) -> list[Pocket]:
    """predict_pockets on one chain of a file, cached as JSON under <cache>/pockets/ (keyed by file + chain)."""
    import hashlib
    import json

    from engine.paths import CACHE_DIR

    path = Path(path)
    st = path.stat()
    key = hashlib.sha256(json.dumps([str(path.resolve()), st.st_size, st.st_mtime_ns, record.extra.get("chain"),
                                     record.sequence, top, 2]).encode()).hexdigest()[:32]
    f = Path(cache_dir or CACHE_DIR / "pockets") / f"{key}.json"
    if f.is_file():
        try:
            rows = json.loads(f.read_text())
            return [Pocket(residues=r["residues"], source=r["source"], score=r["score"],
                           center=None if r["center"] is None else np.asarray(r["center"], np.float32)) for r in rows]
        except (ValueError, KeyError):
            pass  # damaged entry: predict again
    try:
        pockets = predict_pockets(chain_pdb_text(path, record.extra.get("chain", "")), record, top=top)
    except OneProtError as exc:
        if exc.where != "fpocket-rs timeout":
            raise
        pockets = []  # remembered as "no pocket", so a rebuild does not wait on the same chain again
    f.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(f, json.dumps([{"residues": p.residues, "source": p.source, "score": p.score,
                                      "center": None if p.center is None else [float(x) for x in p.center]}
                                     for p in pockets]))
    return pockets
