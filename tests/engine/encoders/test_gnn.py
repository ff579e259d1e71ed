"""Invariant residue-graph GNN: rigid-motion invariance, radius graph, chain breaks, bad input."""

import numpy as np
import pytest
import torch

from engine.encoders.gnn import featurize, node_angles, radius_graph, GnnConfig
from engine.encoders.pocket import PocketEncoder
from engine.encoders.structure import StructureEncoder
from engine.errors import OneProtError
from engine.modality import StructureInput

torch.set_num_threads(1)


def _chain(length, seed=0):
    rng = np.random.default_rng(seed)
    steps = rng.normal(size=(length, 3))
    ca = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    coords = np.stack([ca + rng.normal(scale=0.9, size=ca.shape) for _ in range(4)], axis=1)
    coords[:, 1] = ca
    return StructureInput("".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), size=length)), coords.astype(np.float32))


def _random_rotation(rng):
    q, r = np.linalg.qr(rng.normal(size=(3, 3)))
    q = q * np.sign(np.diag(r))
    if np.linalg.det(q) < 0:
        q[:, 0] = -q[:, 0]
    return q


@pytest.mark.parametrize("cls", [StructureEncoder, PocketEncoder])
def test_invariant_to_rotation_and_translation(cls):
    torch.manual_seed(0)
    enc = cls({"hidden": 32, "layers": 2}).eval()
    items = [_chain(30, 1), _chain(17, 2)]
    rng = np.random.default_rng(3)
    moved = []
    for it in items:
        rot, shift = _random_rotation(rng), rng.normal(scale=50, size=3)
        moved.append(StructureInput(it.sequence, (it.coords @ rot.T + shift).astype(np.float32)))
    a, b = enc(enc.collate(items)).pooled, enc(enc.collate(moved)).pooled
    assert torch.allclose(a, b, atol=1e-4)
    # ...but not blind to geometry: a mirror image or a different fold changes the output.
    other = enc(enc.collate([_chain(30, 9), items[1]])).pooled
    assert not torch.allclose(a[0], other[0], atol=1e-3)


def test_radius_graph_matches_brute_force():
    torch.manual_seed(0)
    pos = torch.randn(25, 3) * 6
    batch = torch.tensor([0] * 12 + [1] * 13)
    edges = radius_graph(pos, batch, cutoff=8.0, max_neighbors=100)
    got = set(map(tuple, edges.T.tolist()))
    want = {(j, i) for i in range(25) for j in range(25)
            if i != j and batch[i] == batch[j] and (pos[i] - pos[j]).norm() < 8.0}
    assert got == want
    capped = radius_graph(pos, batch, cutoff=8.0, max_neighbors=2)
    assert torch.bincount(capped[1], minlength=25).max() <= 2


def test_no_dihedral_across_a_gap():
    item = _chain(10)
    coords = item.coords.copy()
    coords[5:] += np.array([30.0, 0, 0], dtype=np.float32)  # residues 4 and 5 are no longer bonded
    feats = node_angles(torch.from_numpy(coords))
    assert torch.all(feats[4, [1, 7]] == torch.tensor([0.0, 0.0]))  # psi of 4 needs N of 5: undefined
    assert torch.any(feats[3, [1, 7]] != 0)


def test_missing_ca_dropped_and_errors():
    item = _chain(12)
    coords = item.coords.copy()
    coords[3, 1] = np.nan
    batch = featurize([StructureInput(item.sequence, coords)], GnnConfig(hidden=8))
    assert batch["residue_type"].shape[0] == 11
    assert torch.isfinite(batch["edge_features"]).all() and torch.isfinite(batch["node_features"]).all()
    with pytest.raises(OneProtError, match="does not match"):
        featurize([StructureInput("AAA", np.zeros((2, 4, 3), np.float32))], GnnConfig())
    with pytest.raises(OneProtError, match="no residue with a CA"):
        featurize([StructureInput("AA", np.full((2, 4, 3), np.nan, np.float32))], GnnConfig())


def test_states_and_mask_shapes():
    enc = StructureEncoder({"hidden": 16, "layers": 1})
    out = enc(enc.collate([_chain(8), _chain(5)]))
    assert out.states.shape == (2, 8, 16) and out.mask.sum().item() == 13


def test_pocket_shell_keeps_focus_and_nearby_residues():
    from engine.encoders.gnn import focus_mask

    ca = np.zeros((6, 3), np.float32)
    ca[:, 0] = [0.0, 3.8, 7.6, 11.4, 15.2, 30.0]  # a straight line, the last residue far away
    ca[4] = np.nan  # a residue without CA is never kept
    assert focus_mask(ca, np.array([0]), 0.0).tolist() == [True, False, False, False, False, False]
    assert focus_mask(ca, np.array([0]), 8.0).tolist() == [True, True, True, False, False, False]
    assert focus_mask(ca, np.array([0, 5]), 4.0).tolist() == [True, True, False, False, False, True]
    with pytest.raises(OneProtError, match="outside"):
        focus_mask(ca, np.array([9]), 8.0)


def test_pocket_encoder_sees_its_shell():
    from engine.data.items import pocket_input
    from engine.encoders.pocket import PocketEncoder

    item = _chain(40, seed=3)
    pocket = pocket_input(item.sequence, item.coords, [10, 11, 12])
    narrow = PocketEncoder({"hidden": 16, "layers": 1, "shell": 0.0}).collate([pocket])
    wide = PocketEncoder({"hidden": 16, "layers": 1, "shell": 8.0}).collate([pocket])
    assert len(narrow["residue_type"]) == 3 and len(wide["residue_type"]) > 3
