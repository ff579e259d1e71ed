"""Backbone coordinates -> PDB text for the 3D viewer, and Kabsch superposition on aligned CA atoms."""

from __future__ import annotations

import numpy as np

from engine.modality import BACKBONE_ATOMS

_THREE = {
    "A": "ALA", "C": "CYS", "D": "ASP", "E": "GLU", "F": "PHE", "G": "GLY", "H": "HIS", "I": "ILE",
    "K": "LYS", "L": "LEU", "M": "MET", "N": "ASN", "P": "PRO", "Q": "GLN", "R": "ARG", "S": "SER",
    "T": "THR", "V": "VAL", "W": "TRP", "Y": "TYR",
}


def backbone_pdb(
    sequence: str,
    coords: np.ndarray,
    chain: str = "A",
    ligand_coords: np.ndarray | None = None,
    ligand_elements: list[str] | None = None,
    ligand_code: str = "LIG",
) -> str:
    """PDB ATOM records for N/CA/C/O of each residue (NaN atoms skipped) plus optional ligand HETATMs."""
    coords = np.asarray(coords, dtype=np.float32)
    lines, serial = [], 1
    for i, aa in enumerate(sequence):
        resn = _THREE.get(aa, "UNK")
        for j, atom in enumerate(BACKBONE_ATOMS):
            x, y, z = coords[i, j]
            if not np.isfinite([x, y, z]).all():
                continue
            lines.append(
                f"ATOM  {serial:5d}  {atom:<3s} {resn:3s} {chain:1s}{(i + 1) % 10000:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {atom[0]:>2s}"
            )
            serial += 1
    lines.append("TER")
    if ligand_coords is not None and len(ligand_coords):
        code = (ligand_code or "LIG")[:3].upper()
        elements = ligand_elements or []
        for k, (x, y, z) in enumerate(np.asarray(ligand_coords, dtype=np.float32).reshape(-1, 3)):
            el = (elements[k] if k < len(elements) else "C")[:2].upper()
            lines.append(
                f"HETATM{serial:5d} {el + str(k % 100):<4s} {code:>3s} L{1:4d}    "
                f"{x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00          {el:>2s}"
            )
            serial += 1
    lines.append("END")
    return "\n".join(lines) + "\n"


def align_residues(seq_a: str, seq_b: str) -> list[tuple[int, int]]:
    """Global alignment (BLOSUM62, affine gaps) -> matched residue index pairs (i in a, j in b)."""
    from biotite.sequence import ProteinSequence
    from biotite.sequence.align import SubstitutionMatrix, align_optimal

    clean = lambda s: "".join(c if c in _THREE else "X" for c in s)  # noqa: E731 - biotite rejects odd letters
    a, b = ProteinSequence(clean(seq_a)), ProteinSequence(clean(seq_b))
    ali = align_optimal(a, b, SubstitutionMatrix.std_protein_matrix(), gap_penalty=(-10, -1), max_number=1)[0]
    return [(int(i), int(j)) for i, j in ali.trace if i >= 0 and j >= 0]


def kabsch(mobile: np.ndarray, target: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rotation R and translation t minimising |mobile @ R.T + t - target| (both (N, 3))."""
    mc, tc = mobile.mean(0), target.mean(0)
    h = (mobile - mc).T @ (target - tc)
    u, _, vt = np.linalg.svd(h)
    d = np.sign(np.linalg.det(vt.T @ u.T))  # avoid a reflection
    r = vt.T @ np.diag([1.0, 1.0, d]) @ u.T
    return r, tc - mc @ r.T


def superpose(
    seq_mobile: str, coords_mobile: np.ndarray, seq_target: str, coords_target: np.ndarray
) -> tuple[np.ndarray, np.ndarray, float, int]:
    """Kabsch fit of mobile onto target on aligned CA atoms -> (R, t, RMSD, n pairs); apply as x @ R.T + t."""
    pairs = align_residues(seq_mobile, seq_target)
    ca_m = np.asarray(coords_mobile, dtype=np.float64)[:, 1]
    ca_t = np.asarray(coords_target, dtype=np.float64)[:, 1]
    pairs = [(i, j) for i, j in pairs if np.isfinite(ca_m[i]).all() and np.isfinite(ca_t[j]).all()]
    if len(pairs) < 3:
        return np.eye(3), np.zeros(3), float("nan"), len(pairs)
    im, it = np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs])
    r, t = kabsch(ca_m[im], ca_t[it])
    moved = ca_m[im] @ r.T + t
    rmsd = float(np.sqrt(np.mean(np.sum((moved - ca_t[it]) ** 2, axis=1))))
    return r, t, rmsd, len(pairs)


def transform(xyz: np.ndarray, r: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Apply a superposition to any (..., 3) coordinates (NaNs stay NaN)."""
    return (np.asarray(xyz, dtype=np.float64) @ r.T + t).astype(np.float32)
