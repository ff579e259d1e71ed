"""One structure per distinct sequence; the copies' pockets move onto the kept one by superposition."""

from pathlib import Path

import numpy as np

from engine.data.dedupe import dedupe_structures, kabsch
from engine.data.structure import read_structure
from engine.modality import Pocket

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def _rotation(deg: float) -> np.ndarray:
    t = np.deg2rad(deg)
    return np.array([[np.cos(t), -np.sin(t), 0], [np.sin(t), np.cos(t), 0], [0, 0, 1]])


def test_kabsch_recovers_a_rigid_motion():
    rng = np.random.default_rng(0)
    target = rng.normal(size=(30, 3)) * 10
    rot = _rotation(40)
    mobile = (target - 5.0) @ rot.T
    r, t, rmsd = kabsch(mobile, target)
    assert rmsd < 1e-6 and np.allclose(mobile @ r.T + t, target, atol=1e-6)


def test_copies_merge_and_pockets_are_moved():
    base = read_structure(FIX / "pocket_toy.pdb", min_length=10).records[0]
    copy = read_structure(FIX / "pocket_toy.pdb", min_length=10).records[0]
    copy.id = "copy"
    rot = _rotation(90)
    copy.coords = (copy.coords.reshape(-1, 3) @ rot.T + [100.0, 0, 0]).reshape(copy.coords.shape).astype(np.float32)
    # the copy holds the same ATP pocket (a duplicate) and a new ligand in another site
    same = copy.pockets[0]
    same.center = same.center @ rot.T + [100.0, 0, 0]
    other_center = np.array([0.0, 3.0, 0.0]) @ rot.T + [100.0, 0, 0]
    copy.pockets = [same, Pocket(residues=[0, 1, 2], ligand_code="GDP", center=other_center.astype(np.float32),
                                 ligand_coords=other_center[None].astype(np.float32), ligand_elements=["C"])]
    different = read_structure(FIX / "pocket_toy.pdb", min_length=10).records[0]
    different.id, different.sequence = "different", "M" * 25
    out = dedupe_structures([base, copy, different])
    assert [r.id for r in out] == ["copy", "different"]  # the copy has more pockets, so it is kept
    kept = out[0]
    assert [p.ligand_code for p in kept.pockets] == ["ATP", "GDP"]  # base's ATP pocket is a repeat
    assert kept.extra["copies"] == 2
    # a pocket moved from `base` lands in the kept copy's frame
    base2 = read_structure(FIX / "pocket_toy.pdb", min_length=10).records[0]
    base2.pockets.append(Pocket(residues=[10, 11, 12], ligand_code="HEM", center=np.array([41.8, 3.0, 0.0], np.float32)))
    kept2 = dedupe_structures([copy, base2])[0]
    hem = [p for p in kept2.pockets if p.ligand_code == "HEM"][0]
    assert np.allclose(hem.center, np.array([41.8, 3.0, 0.0]) @ rot.T + [100.0, 0, 0], atol=1e-3)
