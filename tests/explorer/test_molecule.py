"""Backbone -> PDB text and Kabsch superposition."""

from __future__ import annotations

import numpy as np

from explorer.molecule import backbone_pdb, kabsch, superpose, transform


def _rotation(seed: int) -> np.ndarray:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return q * np.sign(np.linalg.det(q))


def test_backbone_pdb_has_fixed_columns_and_skips_missing_atoms():
    coords = np.arange(2 * 4 * 3, dtype=np.float32).reshape(2, 4, 3)
    coords[1, 3] = np.nan  # missing O
    text = backbone_pdb("AG", coords, ligand_coords=np.zeros((2, 3)), ligand_elements=["C", "O"], ligand_code="NAD")
    atoms = [line for line in text.splitlines() if line.startswith("ATOM")]
    het = [line for line in text.splitlines() if line.startswith("HETATM")]
    assert len(atoms) == 7 and len(het) == 2
    assert atoms[1][12:16].strip() == "CA" and atoms[1][17:20] == "ALA" and atoms[4][17:20] == "GLY"
    assert float(atoms[1][30:38]) == 3.0 and float(atoms[1][46:54]) == 5.0
    assert het[0][17:20] == "NAD" and het[1][76:78].strip() == "O"


def test_kabsch_recovers_a_rigid_motion():
    x = np.random.default_rng(0).normal(size=(30, 3))
    r_true, t_true = _rotation(1), np.array([1.0, -2.0, 3.0])
    y = x @ r_true.T + t_true
    r, t = kabsch(x, y)
    np.testing.assert_allclose(x @ r.T + t, y, atol=1e-8)


def test_superpose_aligns_by_sequence_and_reports_rmsd():
    rng = np.random.default_rng(2)
    seq = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 40))
    coords = rng.normal(scale=8, size=(40, 4, 3)).astype(np.float32)
    moved = transform(coords, _rotation(3), np.array([5.0, 5.0, -5.0]))
    # the mobile copy lacks its first 5 residues: alignment must pair the rest correctly
    r, t, rmsd, n = superpose(seq[5:], moved[5:], seq, coords)
    assert n == 35 and rmsd < 1e-3
    np.testing.assert_allclose(transform(moved[5:], r, t), coords[5:], atol=1e-3)
