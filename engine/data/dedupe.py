"""Keep one structure per distinct chain sequence, carrying over the ligand pockets of its copies.

Identical chains (the same protein solved with different ligands, or the subunits of one
oligomer) would give retrieval twin answers, so one copy is kept: the one with the most pockets,
then the fewest missing backbone atoms, then the longest text. Pockets of the other copies are
moved onto the kept copy: residue indices carry over unchanged (same sequence), the ligand
coordinates and centre are moved by the least-squares superposition (Kabsch) of the copy's CA
atoms onto the kept copy's. Copies that superpose worse than `max_rmsd` Angstrom (different
conformations) keep their pockets to themselves. A moved pocket that repeats one already there
(same ligand code, residue sets overlapping by Jaccard >= 0.5) is dropped.
"""

from __future__ import annotations

import numpy as np

from engine.modality import Pocket, ProteinRecord

MAX_RMSD = 2.0


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rotation R, translation t and RMSD with mobile @ R.T + t ~ target, for (N, 3) point sets."""
    mc, tc = mobile.mean(axis=0), target.mean(axis=0)
    h = (mobile - mc).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))
    rot = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    moved = (mobile - mc) @ rot.T + tc
    rmsd = float(np.sqrt(((moved - target) ** 2).sum(axis=1).mean()))
    return rot, tc - mc @ rot.T, rmsd


def _same_pocket(a: Pocket, b: Pocket) -> bool:
    sa, sb = set(a.residues), set(b.residues)
    return a.ligand_code == b.ligand_code and len(sa & sb) / max(len(sa | sb), 1) >= 0.5


def _moved(p: Pocket, rot: np.ndarray, t: np.ndarray) -> Pocket:
    def tf(x):
        return None if x is None else (np.asarray(x, np.float64).reshape(-1, 3) @ rot.T + t).astype(np.float32)

    center = tf(p.center)
    return Pocket(residues=list(p.residues), ligand_code=p.ligand_code, ligand_name=p.ligand_name, source=p.source,
                  center=None if center is None else center[0], ligand_coords=tf(p.ligand_coords),
                  ligand_elements=list(p.ligand_elements), score=p.score)


def _rank(r: ProteinRecord) -> tuple:
    return (len(r.pockets), -int(np.isnan(r.coords).sum()), len(r.text or ""))


def dedupe_structures(records: list[ProteinRecord], max_rmsd: float = MAX_RMSD) -> list[ProteinRecord]:
    """One record per distinct sequence (records must have coords), in first-seen order."""
    groups: dict[str, list[ProteinRecord]] = {}
    for r in records:
        groups.setdefault(r.sequence, []).append(r)
    out = []
    for copies in groups.values():
        keep = max(copies, key=_rank)
        keep.family = keep.family or next((c.family for c in copies if c.family), None)
        if not (keep.text or "").strip():
            donor = next((c for c in copies if (c.text or "").strip()), None)
            if donor is not None:
                keep.text, keep.name = donor.text, keep.name or donor.name
        merged = list(keep.pockets)
        ca_keep = keep.coords[:, 1]
        for other in copies:
            if other is keep or not other.pockets:
                continue
            ok = np.isfinite(ca_keep).all(axis=1) & np.isfinite(other.coords[:, 1]).all(axis=1)
            if ok.sum() < 3:
                continue
            rot, t, rmsd = kabsch(other.coords[ok, 1].astype(np.float64), ca_keep[ok].astype(np.float64))
            if rmsd > max_rmsd:
                continue
            for p in other.pockets:
                if not any(_same_pocket(p, q) for q in merged):
                    merged.append(_moved(p, rot, t))
        keep.pockets = merged
        keep.extra["copies"] = len(copies)
        out.append(keep)
    return out
