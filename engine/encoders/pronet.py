"""ProNet (Wang et al., "Learning Hierarchical Protein Representations via Complete 3D Graph Networks",
ICLR 2023) at its three levels, as upstream OneProt uses it for structures and pockets.

Written from the paper's equations and the layout of DIG's `dig.threedgraph.method.ProNet` (module and
parameter names follow DIG's, so upstream checkpoints load key for key; engine/convert_upstream.py).
Graph operations are plain torch (engine/encoders/graph_ops.py); no torch-geometric.

    levels     aminoacid (residue types), backbone (+ backbone torsions, Euler angles between
               residue frames), allatom (+ side-chain torsions chi1..chi4; needs side-chain atoms)
    network    embedding -> `num_blocks` interaction blocks (three edge-weighted graph convolutions
               over distance/angle bases and sequence offsets) -> sum over residues -> MLP to
               `out_channels` -> dropout (upstream's StructEncoder) -> the model's projection head
    training   upstream's augmentations, only while training: a U(0,1) fraction of residue types
               masked, Gaussian noise (sigma 0.1 A, clipped at 0.3) on N/CA/C, anisotropic scaling
               in [0.9, 1.1] per axis; DIG's Euler-angle and per-block feature noise. Draws come from a
               generator seeded by the trainer's (seed, step, rank), so a resumed run repeats them.

Differences from DIG, kept on purpose (docs/upstream_vs_paper_preset.md): the i-1 / i+1 neighbours
wrap within each protein rather than across the batch (an item's embedding must not depend on its
batch-mates); at most `max_neighbors` nearest neighbours are kept (torch-cluster keeps the first found);
noise is never added at evaluation (DIG adds its Euler and feature noise whenever they are enabled).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.graph_ops import radius_graph, scatter_sum, to_dense_batch
from engine.encoders.pronet_features import (
    NUM_AA_TYPES, NUM_BB_EMBS, NUM_SIDE_CHAIN_EMBS, UNKNOWN_TYPE, angle_basis, backbone_embs, chain_neighbours,
    euler_angles, polar_angles, position_code, residue_dihedral, residue_types, side_chain_embs, theta_phi_basis,
)
from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.modality import Modality, StructureInput

LEVELS = ("aminoacid", "backbone", "allatom")


@dataclass
class ProNetConfig:
    """ProNet's hyper-parameters (DIG's names) plus how items become graphs and how training perturbs them."""

    type: str = "pronet"
    level: str = "allatom"
    num_blocks: int = 4
    hidden_channels: int = 128
    out_channels: int = 1024
    mid_emb: int = 64
    num_radial: int = 6
    num_spherical: int = 2
    cutoff: float = 10.0
    max_neighbors: int = 32
    int_emb_layers: int = 3
    out_layers: int = 2
    num_pos_emb: int = 16
    dropout: float = 0.25
    out_dropout: float = 0.25  # upstream's StructEncoder drops out ProNet's output before the head
    euler_noise: bool = True
    data_augment_eachlayer: bool = True
    mask_types: bool = True  # training: a U(0,1) fraction of residue types set to unknown
    coord_noise: float = 0.1  # training: Gaussian sigma (A) on N, CA, C, clipped at 3 sigma
    scaling: float = 0.1  # training: per-axis scale factor N(1, scaling) clipped to [1 - scaling, 1 + scaling]
    pocket_residues: int = 0  # > 0: a pocket item keeps this many residues nearest its centre (upstream: 100)
    max_residues: int = 0  # > 0: longer chains keep their first residues


def _glorot(linear: nn.Linear) -> nn.Linear:
    nn.init.xavier_uniform_(linear.weight)
    if linear.bias is not None:
        nn.init.zeros_(linear.bias)
    return linear


def _lin(i: int, o: int, bias: bool = True) -> nn.Linear:
    return _glorot(nn.Linear(i, o, bias=bias))


class TwoLinear(nn.Module):
    """Two bias-free linear maps (DIG's feature projection)."""

    def __init__(self, i: int, mid: int, o: int):
        super().__init__()
        self.lin1, self.lin2 = _lin(i, mid, False), _lin(mid, o, False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.lin2(self.lin1(x))


class EdgeGraphConv(nn.Module):
    """out_i = lin_l(sum_j w_ji * x_j) + lin_r(x_i): GraphConv with an edge-feature Hadamard product."""

    def __init__(self, hidden: int):
        super().__init__()
        self.lin_l, self.lin_r = _lin(hidden, hidden), _lin(hidden, hidden, False)

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
        j, i = edge_index
        return self.lin_l(scatter_sum(weight * x[j], i, len(x))) + self.lin_r(x)


class InteractionBlock(nn.Module):
    """ProNet's interaction block: three convolutions (distance+polar, level feature, sequence offset)."""

    def __init__(self, cfg: ProNetConfig):
        super().__init__()
        h, k, n = cfg.hidden_channels, cfg.num_radial, cfg.num_spherical
        self.dropout = nn.Dropout(cfg.dropout)
        self.conv0, self.conv1, self.conv2 = EdgeGraphConv(h), EdgeGraphConv(h), EdgeGraphConv(h)
        self.lin_feature0 = TwoLinear(k * n * n, cfg.mid_emb, h)
        self.lin_feature1 = TwoLinear((1 if cfg.level == "aminoacid" else 3) * k * n, cfg.mid_emb, h)
        self.lin_feature2 = TwoLinear(cfg.num_pos_emb, cfg.mid_emb, h)
        self.lin_1, self.lin_2 = _lin(h, h), _lin(h, h)
        self.lin0, self.lin1, self.lin2 = _lin(h, h), _lin(h, h), _lin(h, h)
        self.lins_cat = nn.ModuleList([_lin(3 * h, h)] + [_lin(h, h) for _ in range(cfg.int_emb_layers - 1)])
        self.lins = nn.ModuleList([_lin(h, h) for _ in range(cfg.int_emb_layers - 1)])
        self.final = _lin(h, h)

    def forward(self, x: torch.Tensor, f0: torch.Tensor, f1: torch.Tensor, fpos: torch.Tensor,
                edge_index: torch.Tensor) -> torch.Tensor:
        x1, x2 = F.silu(self.lin_1(x)), F.silu(self.lin_2(x))
        h0 = self.dropout(F.silu(self.lin0(self.conv0(x1, edge_index, self.lin_feature0(f0)))))
        h1 = self.dropout(F.silu(self.lin1(self.conv1(x1, edge_index, self.lin_feature1(f1)))))
        h2 = self.dropout(F.silu(self.lin2(self.conv2(x1, edge_index, self.lin_feature2(fpos)))))
        h = torch.cat([h0, h1, h2], dim=1)
        for lin in self.lins_cat:
            h = F.silu(lin(h))
        h = h + x2
        for lin in self.lins:
            h = F.silu(lin(h))
        return self.final(h)


# ---- items -> graph batch ------------------------------------------------------------------------
def select_residues(item: StructureInput, cfg: ProNetConfig, where: str) -> np.ndarray:
    """Indices of the residues a graph keeps: those with a CA; for pockets, the `pocket_residues` nearest its centre."""
    coords = np.asarray(item.coords, dtype=np.float32)
    keep = np.nonzero(~np.isnan(coords[:, 1]).any(-1))[0]
    if item.focus is not None and cfg.pocket_residues > 0:
        atoms = coords if item.side_chains is None else np.concatenate([coords, item.side_chains], axis=1)
        with np.errstate(invalid="ignore"):
            centroid = np.nanmean(atoms, axis=1)  # (L, 3) mean of the residue's atoms, as upstream cuts pockets
        center = item.center
        if center is None or not np.isfinite(center).all():
            center = np.nanmean(coords[np.asarray(item.focus), 1], axis=0)  # the lining residues' CA centroid
        d = np.linalg.norm(centroid[keep] - np.asarray(center, dtype=np.float32), axis=1)
        keep = np.sort(keep[np.argsort(d, kind="stable")[: cfg.pocket_residues]])  # back in chain order
    elif item.focus is not None:
        keep = np.intersect1d(keep, np.asarray(item.focus))
    if cfg.max_residues > 0:
        keep = keep[: cfg.max_residues]
    if len(keep) == 0:
        raise OneProtError("no residue with a CA atom", where)
    return keep


def featurize(items: list[StructureInput], cfg: ProNetConfig) -> dict[str, Any]:
    """Structures -> one disjoint graph batch: residue types, N/CA/C positions and node torsion features."""
    out: dict[str, list] = {k: [] for k in ("x", "pos_n", "pos_ca", "pos_c", "bb", "side", "batch")}
    for g, item in enumerate(items):
        where = f"structure item {g}"
        coords = np.asarray(item.coords, dtype=np.float32)
        if coords.ndim != 3 or coords.shape[1:] != (4, 3) or len(coords) != len(item.sequence):
            raise OneProtError(f"coords shape {coords.shape} does not match (L={len(item.sequence)}, 4, 3)", where)
        if cfg.level == "allatom" and item.side_chains is None:
            raise OneProtError(
                "the all-atom ProNet needs side-chain atoms, and this item has none: rebuild the store with "
                "`oneprot data build` (stores built before side chains were read keep backbone atoms only), "
                "or use level 'backbone'", where)
        idx = select_residues(item, cfg, where)
        bb = torch.from_numpy(coords[idx])
        ca = bb[:, 1]
        n = torch.where(torch.isnan(bb[:, 0]), ca, bb[:, 0])  # a missing N or C sits on its CA, as upstream does
        c = torch.where(torch.isnan(bb[:, 2]), ca, bb[:, 2])
        out["x"].append(residue_types("".join(item.sequence[i] for i in idx)))
        out["pos_n"].append(n)
        out["pos_ca"].append(ca)
        out["pos_c"].append(c)
        out["bb"].append(backbone_embs(n, ca, c))
        if cfg.level == "allatom":
            out["side"].append(side_chain_embs(n, ca, torch.from_numpy(np.asarray(item.side_chains, np.float32)[idx])))
        out["batch"].append(torch.full((len(idx),), g, dtype=torch.long))
    batch = {k: torch.cat(v) for k, v in out.items() if v}
    batch["num_graphs"] = len(items)
    return batch


class ProNetEncoder(ModalityEncoder):
    """StructureInputs -> ProNet graph embedding (B, out_channels); structure and pocket use this class.

    Args:
        config: a ProNetConfig or a dict of its fields.
        load_weights: unused (trained from scratch or loaded from a checkpoint).
    """

    config_class = ProNetConfig

    def __init__(self, config: ProNetConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, ProNetConfig) else _pronet_config(config)
        if cfg.level not in LEVELS:
            raise OneProtError(f"unknown ProNet level {cfg.level!r}; choose one of: {', '.join(LEVELS)}", "level")
        if cfg.num_spherical > 2:
            raise OneProtError("num_spherical above 2 is not supported", "num_spherical")
        self.config = cfg
        h = cfg.hidden_channels
        if cfg.level == "aminoacid":
            self.embedding = nn.Embedding(NUM_AA_TYPES, h)
        else:
            extra = NUM_BB_EMBS + (NUM_SIDE_CHAIN_EMBS if cfg.level == "allatom" else 0)
            self.embedding = nn.Linear(NUM_AA_TYPES + extra, h)
        self.interaction_blocks = nn.ModuleList(InteractionBlock(cfg) for _ in range(cfg.num_blocks))
        self.lins_out = nn.ModuleList(_lin(h, h) for _ in range(cfg.out_layers - 1))
        self.lin_out = _lin(h, cfg.out_channels)
        self.dropout = nn.Dropout(cfg.dropout)
        self.out_dropout = nn.Dropout(cfg.out_dropout)
        self.output_dim = cfg.out_channels

    def external_prefixes(self) -> list[str]:
        return []

    def collate(self, items: list[StructureInput]) -> dict[str, Any]:
        """StructureInputs -> graph batch (node features on CPU, without grad)."""
        return featurize(items, self.config)

    # ---- training augmentations ------------------------------------------------------------------
    def _generator(self, batch: dict[str, Any], device: torch.device) -> torch.Generator:
        seed = batch.get("augment_seed")
        if seed is None:  # not called by the trainer: draw a seed from the global RNG (resumed with it)
            seed = (int(torch.randint(0, 2**31 - 1, (1,))),)
        g = torch.Generator(device=device)
        g.manual_seed(int(np.random.SeedSequence([int(s) for s in seed]).generate_state(1)[0]))
        return g

    def augment(self, batch: dict[str, Any], g: torch.Generator) -> dict[str, Any]:
        """Upstream's structure augmentations on a copy of the batch (positions only; torsion features stay clean)."""
        cfg, b = self.config, dict(batch)
        x = b["x"]
        if cfg.mask_types and len(x):
            frac = float(torch.rand((), generator=g, device=x.device))
            hit = torch.randperm(len(x), generator=g, device=x.device)[: int(len(x) * frac)]
            b["x"] = x.clone().index_fill_(0, hit, UNKNOWN_TYPE)
        for key in ("pos_ca", "pos_n", "pos_c"):
            pos = b[key]
            if cfg.coord_noise > 0:
                noise = torch.randn(pos.shape, generator=g, device=pos.device) * cfg.coord_noise
                pos = pos + noise.clamp(-3 * cfg.coord_noise, 3 * cfg.coord_noise)
            b[key] = pos
        if cfg.scaling > 0:
            # one factor per axis for the batch, about each protein's CA centroid (see the module docstring)
            f = (1 + cfg.scaling * torch.randn(3, generator=g, device=x.device)).clamp(1 - cfg.scaling, 1 + cfg.scaling)
            counts = torch.bincount(b["batch"], minlength=b["num_graphs"]).clamp(min=1).unsqueeze(-1)
            centre = (scatter_sum(b["pos_ca"], b["batch"], b["num_graphs"]) / counts)[b["batch"]]
            for key in ("pos_ca", "pos_n", "pos_c"):
                b[key] = (b[key] - centre) * f + centre
        return b

    # ---- forward ---------------------------------------------------------------------------------
    def edge_features(self, b: dict[str, Any], g: torch.Generator | None) -> tuple[torch.Tensor, ...]:
        """Radius graph and the three edge feature sets (distance+polar basis, level feature, offset code)."""
        cfg = self.config
        pos, batch = b["pos_ca"], b["batch"]
        edge_index = radius_graph(pos, batch, cfg.cutoff, cfg.max_neighbors)
        j, i = edge_index
        dist = (pos[i] - pos[j]).norm(dim=-1)
        prev, nxt = chain_neighbours(batch, b["num_graphs"])
        theta, phi = polar_angles(pos, i, j, prev, nxt)
        f0 = theta_phi_basis(dist, theta, phi, cfg.cutoff, cfg.num_spherical, cfg.num_radial)
        if cfg.level == "aminoacid":
            f1 = angle_basis(dist, residue_dihedral(pos, i, j, prev, nxt, dist), cfg.cutoff, cfg.num_spherical,
                             cfg.num_radial)
        else:
            angles = list(euler_angles(pos, b["pos_n"], b["pos_c"], i, j))
            if g is not None and cfg.euler_noise:
                noise = (0.025 * torch.randn((3, len(dist)), generator=g, device=pos.device)).clamp(-0.1, 0.1)
                angles = [a + noise[k] for k, a in enumerate(angles)]
            f1 = torch.cat([angle_basis(dist, a, cfg.cutoff, cfg.num_spherical, cfg.num_radial) for a in angles], 1)
        return edge_index, f0, f1, position_code(j - i, cfg.num_pos_emb)

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        cfg = self.config
        g = self._generator(batch, batch["x"].device) if self.training else None
        b = self.augment(batch, g) if g is not None else batch
        if cfg.level == "aminoacid":
            x = self.embedding(b["x"])
        else:
            parts = [F.one_hot(b["x"], NUM_AA_TYPES).float(), b["bb"]] + ([b["side"]] if cfg.level == "allatom" else [])
            x = self.embedding(torch.cat(parts, dim=1))
        edge_index, f0, f1, fpos = self.edge_features(b, g)
        for block in self.interaction_blocks:
            if g is not None and cfg.data_augment_eachlayer:
                x = x + (0.025 * torch.randn(x.shape, generator=g, device=x.device)).clamp(-0.1, 0.1)
            x = block(x, f0, f1, fpos, edge_index)
        y = scatter_sum(x, b["batch"], b["num_graphs"])  # sum pooling over residues
        for lin in self.lins_out:
            y = self.dropout(F.relu(lin(y)))
        y = self.out_dropout(self.lin_out(y))
        states, mask = to_dense_batch(x, b["batch"], batch_size=b["num_graphs"])
        return EncoderOutput(pooled=y, states=states, mask=mask)


class StructureProNet(ProNetEncoder):
    """ProNet over whole chains (the structure modality)."""

    modality = Modality.STRUCTURE


class PocketProNet(ProNetEncoder):
    """ProNet over pocket residues (the pocket modality)."""

    modality = Modality.POCKET


def _pronet_config(d: dict) -> ProNetConfig:
    return dataclass_from_dict(ProNetConfig, d, "encoder config")
