"""A rotation- and translation-invariant residue-graph GNN (ProNet-style), shared by structure and pocket.

Reference idea: ProNet (Wang et al., "Learning hierarchical protein representations via complete 3D
graph networks", ICLR 2023) builds a residue graph and feeds it only invariant geometry (distances,
angles, dihedrals, relative frame orientations), so its output cannot change under a rigid motion.
This is our own, smaller rendering of that idea:

  nodes  residue-type embedding + backbone dihedrals (phi, psi, omega) + N-CA-C angle + CA virtual
         bond angle and virtual dihedral, each as (sin, cos)
  edges  CA-CA within `cutoff` Angstrom (at most `max_neighbors` nearest), featurised by an RBF of
         the distance, the direction to the neighbour in the residue's local backbone frame (3),
         the relative rotation of the two frames (9) and the clipped sequence separation

Every feature is computed in `featurize` from coordinates; the network never sees raw coordinates.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.graph_ops import radius_graph, scatter_mean, to_dense_batch
from engine.encoders.pooling import make_pooling, pooled_width
from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.modality import StructureInput

RESIDUES = "ACDEFGHIKLMNPQRSTVWYX"
_RES_INDEX = {c: i for i, c in enumerate(RESIDUES)}
NODE_ANGLE_FEATURES = 12  # 6 angles x (sin, cos)
MAX_SEPARATION = 32  # sequence separations beyond this share one bucket per direction


@dataclass
class GnnConfig:
    """Shape of the invariant GNN. The paper uses 4 blocks of width 128 and a 10 A cutoff."""

    hidden: int = 128
    layers: int = 4
    cutoff: float = 10.0  # Angstrom, CA-CA
    max_neighbors: int = 32  # bounds memory on dense regions
    rbf: int = 16  # Gaussian radial basis functions over [0, cutoff]
    max_residues: int = 1000  # longer chains are cropped to their first residues
    dropout: float = 0.0
    pooling: str = "mean"
    # Items with a focus (pockets): keep the focus residues plus every residue whose CA lies within
    # `shell` Angstrom of a focus residue's CA. 0 keeps the focus residues only.
    shell: float = 0.0


# ---- geometry ------------------------------------------------------------------------------------
def _unit(v: torch.Tensor) -> torch.Tensor:
    return v / v.norm(dim=-1, keepdim=True).clamp(min=1e-8)


def _dihedral(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor, d: torch.Tensor) -> torch.Tensor:
    """Dihedral angle a-b-c-d in radians; shapes (..., 3) -> (...)."""
    b0, b1, b2 = a - b, c - b, d - c
    b1n = _unit(b1)
    v = b0 - (b0 * b1n).sum(-1, keepdim=True) * b1n
    w = b2 - (b2 * b1n).sum(-1, keepdim=True) * b1n
    x = (v * w).sum(-1)
    y = (torch.cross(b1n, v, dim=-1) * w).sum(-1)
    return torch.atan2(y, x)


def _angle(a: torch.Tensor, b: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
    """Angle a-b-c in radians."""
    cos = (_unit(a - b) * _unit(c - b)).sum(-1).clamp(-1.0, 1.0)
    return torch.acos(cos)


def _shift(x: torch.Tensor, k: int) -> torch.Tensor:
    """x shifted by k along dim 0, NaN-filled, so x_shift[i] = x[i + k]."""
    if k == 0:
        return x.clone()
    out = torch.full_like(x, float("nan"))
    if k > 0:
        out[:-k] = x[k:]
    elif k < 0:
        out[-k:] = x[:k]
    return out


def _neighbour(x: torch.Tensor, k: int, linked: torch.Tensor) -> torch.Tensor:
    """x[i + k] where residues i..i+k are chain-linked, else NaN (chain breaks, pocket gaps)."""
    out = _shift(x, k)
    ok = torch.ones(len(x), dtype=torch.bool)
    step = 1 if k > 0 else -1
    for s in range(0, k, step):  # every bond between i and i + k must exist
        ok &= _shift(linked.float(), s if k > 0 else s - 1).nan_to_num(0.0).bool()
    return out.masked_fill(~ok.unsqueeze(-1), float("nan"))


def node_angles(bb: torch.Tensor) -> torch.Tensor:
    """Backbone (L, 4, 3) [N, CA, C, O] -> (L, 12) sin/cos of six invariant angles (0 where undefined)."""
    n, ca, c = bb[:, 0], bb[:, 1], bb[:, 2]
    # linked[i]: residue i+1 follows i in the chain (CA-CA ~3.8 A); false across gaps, so a pocket's
    # non-adjacent residues never get a fake dihedral.
    linked = torch.nan_to_num((_shift(ca, 1) - ca).norm(dim=-1), nan=99.0) < 4.3
    prev_c, next_n, next_ca = _neighbour(c, -1, linked), _neighbour(n, 1, linked), _neighbour(ca, 1, linked)
    prev_ca, next2_ca = _neighbour(ca, -1, linked), _neighbour(ca, 2, linked)
    phi = _dihedral(prev_c, n, ca, c)
    psi = _dihedral(n, ca, c, next_n)
    omega = _dihedral(ca, c, next_n, next_ca)
    tau = _angle(n, ca, c)
    virt_angle = _angle(prev_ca, ca, next_ca)
    virt_dihedral = _dihedral(prev_ca, ca, next_ca, next2_ca)
    ang = torch.stack([phi, psi, omega, tau, virt_angle, virt_dihedral], dim=-1)  # (L, 6)
    feats = torch.cat([torch.sin(ang), torch.cos(ang)], dim=-1)
    return torch.nan_to_num(feats, nan=0.0)  # chain ends and missing atoms carry no angle


def local_frames(bb: torch.Tensor) -> torch.Tensor:
    """(L, 4, 3) -> (L, 3, 3) orthonormal frames (rows are axes) from N, CA, C; zeros where undefined."""
    n, ca, c = bb[:, 0], bb[:, 1], bb[:, 2]
    e1 = _unit(c - ca)
    u = n - ca
    e2 = _unit(u - (u * e1).sum(-1, keepdim=True) * e1)
    e3 = torch.cross(e1, e2, dim=-1)
    return torch.nan_to_num(torch.stack([e1, e2, e3], dim=1), nan=0.0)


def focus_mask(ca: np.ndarray, focus: np.ndarray, shell: float, where: str = "pocket") -> np.ndarray:
    """(L,) bool: the focus residues, plus residues with a CA within `shell` A of a focus residue's CA."""
    focus = np.asarray(focus, dtype=np.int64)
    if focus.size == 0 or focus.min() < 0 or focus.max() >= len(ca):
        raise OneProtError(f"focus residues fall outside the chain of {len(ca)} residues", where)
    mask = np.zeros(len(ca), dtype=bool)
    mask[focus] = True
    if shell > 0:
        centres = ca[focus][~np.isnan(ca[focus]).any(-1)]
        if len(centres):
            with np.errstate(invalid="ignore"):
                d2 = ((ca[:, None, :] - centres[None, :, :]) ** 2).sum(-1).min(1)  # (L,), NaN for missing CA
            mask |= d2 <= shell * shell
    return mask


def featurize(items: list[StructureInput], cfg: GnnConfig) -> dict[str, Any]:
    """Structures -> one disjoint graph batch of invariant node and edge features."""
    types, angles, frames, cas, resid, batch = [], [], [], [], [], []
    for g, item in enumerate(items):
        coords = np.asarray(item.coords, dtype=np.float32)
        if coords.ndim != 3 or coords.shape[1:] != (4, 3) or len(coords) != len(item.sequence):
            raise OneProtError(
                f"structure item {g}: coords shape {coords.shape} does not match (L={len(item.sequence)}, 4, 3)",
                "structure",
            )
        keep = ~np.isnan(coords[:, 1]).any(-1)  # residues without a CA cannot be placed
        if item.focus is not None:
            keep &= focus_mask(coords[:, 1], item.focus, cfg.shell, f"structure item {g}")
        idx = np.nonzero(keep)[0][: cfg.max_residues]
        if len(idx) == 0:
            raise OneProtError(f"structure item {g} has no residue with a CA atom", "structure")
        bb = torch.from_numpy(coords)
        # Angles use the full chain so neighbours of dropped residues stay NaN -> 0, then we select.
        angles.append(node_angles(bb)[idx])
        frames.append(local_frames(bb)[idx])
        cas.append(bb[idx, 1])
        types.append(torch.tensor([_RES_INDEX.get(item.sequence[i].upper(), _RES_INDEX["X"]) for i in idx]))
        resid.append(torch.from_numpy(idx.astype(np.int64)))
        batch.append(torch.full((len(idx),), g, dtype=torch.long))
    ca, frame, batch_t, resid_t = torch.cat(cas), torch.cat(frames), torch.cat(batch), torch.cat(resid)
    edge_index = radius_graph(ca, batch_t, cfg.cutoff, cfg.max_neighbors)
    src, dst = edge_index
    vec = ca[src] - ca[dst]  # (E, 3) target -> source
    dist = vec.norm(dim=-1)
    centres = torch.linspace(0.0, cfg.cutoff, cfg.rbf)
    width = cfg.cutoff / cfg.rbf
    rbf = torch.exp(-(((dist.unsqueeze(-1) - centres) / width) ** 2))  # (E, rbf)
    direction = torch.einsum("eij,ej->ei", frame[dst], _unit(vec))  # in the target's frame
    rel_rot = torch.einsum("eij,ekj->eik", frame[dst], frame[src]).reshape(-1, 9)
    sep = (resid_t[src] - resid_t[dst]).clamp(-MAX_SEPARATION, MAX_SEPARATION) + MAX_SEPARATION
    return {
        "residue_type": torch.cat(types),
        "node_features": torch.cat(angles),
        "edge_index": edge_index,
        "edge_features": torch.cat([rbf, direction, rel_rot], dim=-1),
        "separation": sep,
        "batch": batch_t,
        "num_graphs": len(items),
    }


# ---- network -------------------------------------------------------------------------------------
class InvariantBlock(nn.Module):
    """One message-passing block: gated edge messages, mean aggregation, residual update.

    Shapes:
        h (N, H), edge_index (2, E), e (E, H) -> (N, H)
    """

    def __init__(self, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.message = nn.Sequential(nn.Linear(3 * hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.gate = nn.Linear(3 * hidden, hidden)
        self.update = nn.Sequential(nn.Linear(2 * hidden, hidden), nn.SiLU(), nn.Dropout(dropout), nn.Linear(hidden, hidden))
        self.norm = nn.LayerNorm(hidden)

    def forward(self, h: torch.Tensor, edge_index: torch.Tensor, e: torch.Tensor) -> torch.Tensor:
        src, dst = edge_index
        z = torch.cat([h[dst], h[src], e], dim=-1)  # (E, 3H)
        msg = self.message(z) * torch.sigmoid(self.gate(z))
        agg = scatter_mean(msg, dst, dim_size=h.shape[0])  # (N, H)
        return self.norm(h + self.update(torch.cat([h, agg], dim=-1)))


class ResidueGraphEncoder(ModalityEncoder):
    """Invariant residue-graph GNN; subclasses set `modality` (structure or pocket).

    Args:
        config: a GnnConfig or a dict of its fields.
        load_weights: unused (trained from scratch); kept so every encoder builds the same way.
    """

    config_class = GnnConfig

    def __init__(self, config: GnnConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, GnnConfig) else _gnn_config(config)
        self.config = cfg
        h = cfg.hidden
        self.residue_embedding = nn.Embedding(len(RESIDUES), h)
        self.node_in = nn.Linear(NODE_ANGLE_FEATURES, h)
        self.edge_in = nn.Sequential(nn.Linear(cfg.rbf + 12, h), nn.SiLU(), nn.Linear(h, h))
        self.separation_embedding = nn.Embedding(2 * MAX_SEPARATION + 1, h)
        self.blocks = nn.ModuleList(InvariantBlock(h, cfg.dropout) for _ in range(cfg.layers))
        self.pool = make_pooling(cfg.pooling, h)
        self.output_dim = pooled_width(self.pool, h)

    def external_prefixes(self) -> list[str]:
        return []

    def collate(self, items: list[StructureInput]) -> dict[str, Any]:
        """StructureInputs -> graph batch (features are computed here, on CPU, without grad)."""
        return featurize(items, self.config)

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        h = self.residue_embedding(batch["residue_type"]) + self.node_in(batch["node_features"])  # (N, H)
        e = self.edge_in(batch["edge_features"]) + self.separation_embedding(batch["separation"])  # (E, H)
        for block in self.blocks:
            h = block(h, batch["edge_index"], e)
        states, mask = to_dense_batch(h, batch["batch"], batch_size=batch["num_graphs"])  # (B, L, H)
        return EncoderOutput(pooled=self.pool(states, mask), states=states, mask=mask)


def _gnn_config(d: dict) -> GnnConfig:
    return dataclass_from_dict(GnnConfig, d, "encoder config", ignore={"type"})


