"""ProNet: hand-computed features, invariance to rigid motions, augmentations, levels, and DIG where it imports."""

import math

import numpy as np
import pytest
import torch

from engine.encoders.pronet import PocketProNet, StructureProNet, featurize, ProNetConfig
from engine.encoders.pronet_features import (
    backbone_embs, euler_angles, position_code, radial_basis, side_chain_embs, theta_phi_basis, torsion,
)
from engine.errors import OneProtError
from engine.modality import StructureInput
from tests_helpers_side_chains import chain_item as chain

torch.set_num_threads(1)
SMALL = {"hidden_channels": 16, "out_channels": 8, "num_blocks": 2, "mid_emb": 8, "dropout": 0.0, "out_dropout": 0.0}


def test_torsion_by_hand():
    a, b, c = torch.tensor([1.0, 0, 0]), torch.zeros(3), torch.tensor([0.0, 1, 0])
    assert torsion(b - a, c - b, torch.tensor([-1.0, 1, 0]) - c).abs().item() == pytest.approx(math.pi)  # trans
    assert torsion(b - a, c - b, torch.tensor([1.0, 1, 0]) - c).item() == pytest.approx(0.0, abs=1e-6)  # cis
    assert torsion(b - a, c - b, torch.tensor([0.0, 1, 1]) - c).item() == pytest.approx(-math.pi / 2)


def test_backbone_and_side_chain_embs_by_hand():
    item = chain(6)
    n, ca, c = (torch.from_numpy(item.coords[:, k]) for k in range(3))
    bb = backbone_embs(n, ca, c)
    # phi of residue 2 = dihedral C1-N2-CA2-C2; stored as (cos phi, ..., sin phi, ...)
    phi = torsion(n[2] - c[1], ca[2] - n[2], c[2] - ca[2])
    assert bb[2, 0].item() == pytest.approx(math.cos(phi)) and bb[2, 3].item() == pytest.approx(math.sin(phi))
    assert bb[0, 0].item() == 1.0 and bb[0, 3].item() == 0.0  # no phi at the first residue: angle 0
    side = torch.from_numpy(item.side_chains)
    sc = side_chain_embs(n, ca, side)
    chi1 = torsion(ca[1] - n[1], side[1, 0] - ca[1], side[1, 1] - side[1, 0])
    assert sc[1, 0].item() == pytest.approx(math.sin(chi1), abs=1e-6) and sc[1, 4].item() == pytest.approx(math.cos(chi1))
    assert sc[3].tolist() == [0, 0, 0, 0, 1, 1, 1, 1]  # glycine-like: every chi undefined -> angle 0


def test_bases_by_hand():
    d = torch.tensor([2.5, 7.0])
    rbf = radial_basis(d, 10.0, 2, 6)
    x = d / 10.0
    for k in range(1, 7):  # order 0: sqrt(2) * sin(k pi x) / x
        assert torch.allclose(rbf[:, 0, k - 1], math.sqrt(2) * torch.sin(k * math.pi * x) / x, atol=1e-5)
    # order 1 vanishes at the cutoff: its argument there is a zero of j1 (4.4934...)
    assert radial_basis(torch.tensor([10.0]), 10.0, 2, 6)[0, 1].abs().max().item() < 1e-5
    f = theta_phi_basis(d, torch.tensor([0.3, 1.0]), torch.tensor([0.2, -2.0]), 10.0, 2, 6)
    assert f.shape == (2, 24)
    assert torch.allclose(f[:, :6], rbf[:, 0] / (2 * math.sqrt(math.pi)))  # Y00 = 1 / (2 sqrt(pi))
    assert torch.allclose(f[:, 6:12], rbf[:, 1] * math.sqrt(3 / (4 * math.pi)) * torch.cos(torch.tensor([0.3, 1.0]))[:, None])
    pc = position_code(torch.tensor([0, 3]))
    assert pc[0].tolist() == [1.0] * 8 + [0.0] * 8 and pc[1, 0].item() == pytest.approx(math.cos(3))


def test_euler_angles_of_identical_frames():
    pos = torch.tensor([[0.0, 0, 0], [5.0, 1, 0]])
    n = pos + torch.tensor([1.0, 0, 0])
    c = pos + torch.tensor([0.0, 1, 0])
    a1, a2, a3 = euler_angles(pos, n, c, torch.tensor([0]), torch.tensor([1]))
    assert a2.item() == pytest.approx(0.0, abs=1e-6)  # parallel frames: no tilt


def _rotation(seed=1):
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    return (q * np.sign(np.linalg.det(q))).astype(np.float32)


@pytest.mark.parametrize("level", ["aminoacid", "backbone", "allatom"])
def test_invariant_to_rotation_and_translation(level):
    torch.manual_seed(0)
    enc = StructureProNet({"level": level, **SMALL}).eval()
    item = chain()
    r, t = _rotation(), np.array([30.0, -12.0, 4.0], np.float32)
    moved = StructureInput(item.sequence, item.coords @ r.T + t, side_chains=item.side_chains @ r.T + t)
    with torch.no_grad():
        a, b = enc(enc.collate([item])).pooled, enc(enc.collate([moved])).pooled
    assert torch.allclose(a, b, atol=1e-4), (a - b).abs().max()
    # and the embedding of an item does not depend on its batch-mates
    with torch.no_grad():
        both = enc(enc.collate([chain(seed=5), item])).pooled
    assert torch.allclose(both[1], a[0], atol=1e-4)


def test_all_atom_without_side_chains_fails_clearly():
    enc = StructureProNet({"level": "allatom", **SMALL})
    item = chain()
    with pytest.raises(OneProtError, match="side-chain atoms"):
        enc.collate([StructureInput(item.sequence, item.coords)])
    StructureProNet({"level": "backbone", **SMALL}).collate([StructureInput(item.sequence, item.coords)])


def test_pocket_keeps_the_residues_nearest_its_centre():
    item = chain(60)
    center = item.coords[10, 1]
    pocket = StructureInput(item.sequence, item.coords, focus=np.array([10, 11]), center=center)
    cfg = ProNetConfig(level="backbone", pocket_residues=20)
    batch = featurize([pocket], cfg)
    assert len(batch["x"]) == 20
    centroid = np.nanmean(item.coords, axis=1)
    nearest = np.sort(np.argsort(np.linalg.norm(centroid - center, axis=1))[:20])
    assert torch.equal(batch["pos_ca"], torch.from_numpy(item.coords[nearest, 1]))


def test_augmentations_only_in_training_and_repeatable_from_the_seed():
    torch.manual_seed(0)
    enc = PocketProNet({"level": "backbone", **SMALL})
    batch = enc.collate([chain(), chain(seed=3)])
    enc.eval()
    with torch.no_grad():
        clean1, clean2 = enc(batch).pooled, enc(batch).pooled
    assert torch.equal(clean1, clean2)
    enc.train()
    seeded = dict(batch, augment_seed=(0, 7, 0, 5))
    with torch.no_grad():
        a, b = enc(seeded).pooled, enc(seeded).pooled
        c = enc(dict(batch, augment_seed=(0, 8, 0, 5))).pooled
    assert torch.equal(a, b) and not torch.allclose(a, c) and not torch.allclose(a, clean1)
    g = enc._generator(seeded, torch.device("cpu"))
    aug = enc.augment(batch, g)
    masked = (aug["x"] == 20).float().mean().item()
    assert 0.0 <= masked <= 1.0 and (aug["pos_ca"] - batch["pos_ca"]).abs().max() > 0
    assert torch.equal(aug["bb"], batch["bb"])  # torsion features stay those of the clean structure


def test_dig_pronet_gives_the_same_output_with_the_same_weights(monkeypatch):
    """Runs wherever DIG (dive-into-graphs + torch-geometric + torch-scatter/cluster/sparse) imports.

    Ran on 2026-12-01 on the 2-core build machine: dive-into-graphs 1.1.0 (--no-deps), torch-geometric, and
    torch-scatter 2.1.2 / torch-cluster 1.6.3 / torch-sparse built from source against torch 2.13 CPU, in a side
    venv (not a project dependency: the three take ~45 min to compile here), with torch-geometric 2.6.1 (2.8 wants
    pyg-lib for radius_graph): passed, max |difference| 2.4e-7 (amino-acid level), 3e-8 (backbone, all-atom) over
    5 seeds and chains of 20-48 residues."""
    dig = pytest.importorskip("dig.threedgraph.method")
    if not hasattr(np, "math"):  # DIG 1.1.0 calls np.math.factorial; NumPy 2 removed that alias of the math module
        monkeypatch.setattr(np, "math", math, raising=False)
    from torch_geometric.data import Batch, Data

    for level in ("aminoacid", "backbone", "allatom"):
        torch.manual_seed(0)
        ours = StructureProNet({"level": level, **SMALL, "euler_noise": False, "data_augment_eachlayer": False}).eval()
        ref = dig.ProNet(level=level, num_blocks=2, hidden_channels=16, out_channels=8, mid_emb=8,
                         cutoff=10.0, max_num_neighbors=32, dropout=0.0).eval()
        state = {k: v for k, v in ours.state_dict().items()}
        missing, unexpected = ref.load_state_dict(state, strict=False)
        assert not missing and not unexpected, (missing, unexpected)
        item = chain(20)
        b = ours.collate([item])
        data = Data(x=b["x"].unsqueeze(1), coords_ca=b["pos_ca"], coords_n=b["pos_n"], coords_c=b["pos_c"],
                    bb_embs=b["bb"], side_chain_embs=b.get("side", torch.zeros(len(b["x"]), 8)))
        with torch.no_grad():
            want = ref(Batch.from_data_list([data]))
            got = ours(b).pooled
        # one chain per batch: DIG takes the i-1 / i+1 neighbours across batch-mates, this project within each
        # protein (on purpose, see engine/encoders/pronet.py), so batches of several chains differ at chain ends
        assert torch.allclose(got, want, atol=1e-5, rtol=1e-5), (level, (got - want).abs().max())
