"""OneProt: one encoder per modality, a projection head each, into one L2-normalised space.

Encoders and heads live in `nn.ModuleDict`s keyed by modality name; `forward` takes a dict of only
the modalities present and returns a dict, so adding a modality is one builder and one key.
Sequence is the anchor; the loss (engine.loss) only ever pairs sequence with one other modality.
"""

from __future__ import annotations

import contextlib
import math
from dataclasses import asdict, dataclass, field
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.modality import ANCHOR, Modality, parse_modality
from engine.token_batching import DEFAULT_BATCH_TOKENS, background_map, item_cost, token_budget_batches

if TYPE_CHECKING:  # only a type here; the ESM encoders import it when they are built
    from engine.encoders.packed_esm import PackedOptions


@dataclass
class ModelConfig:
    """What to build. `encoders` maps modality name -> that encoder's config fields (JSON-able)."""

    encoders: dict[str, dict] = field(default_factory=dict)
    dim: int = 1024  # shared space (paper: 1024)
    head: str = "linear"  # one of HEADS; "ln_linear" / "ln_mlp" are upstream OneProt's
    heads: dict[str, str] = field(default_factory=dict)  # per-modality override of `head`
    temperature: float = 0.07  # paper keeps it fixed
    learn_temperature: bool = False

    def to_dict(self) -> dict:
        d = asdict(self)
        if not d["heads"]:  # added later: left out when unused so older checkpoints keep their model hash
            del d["heads"]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "ModelConfig":
        """The config from its dict form, refusing unknown fields."""
        return dataclass_from_dict(cls, {k: (dict(v) if k in ("encoders", "heads") else v) for k, v in d.items()}, "model config")


def compact_config(config: Any) -> dict:
    """An encoder config dataclass as a dict, without the fields its class lists in `OMIT_WHEN_DEFAULT`.

    Fields added after checkpoints were published stay out of config.json while unused, so those
    checkpoints (and the embeddings named by their model hash) keep their hash.
    """
    d = asdict(config)
    fields = type(config).__dataclass_fields__
    for name in getattr(type(config), "OMIT_WHEN_DEFAULT", ()):
        if d.get(name) == fields[name].default:
            d.pop(name, None)
    return d


# a config's optional "type" field; first is the default
ENCODER_TYPES = {Modality.SEQUENCE: ("esm", "unirep"), Modality.STRUCTURE: ("gnn", "pronet", "proteinmpnn"),
                 Modality.POCKET: ("gnn", "pronet", "proteinmpnn")}


def encoder_class(modality: Modality, kind: str | None = None) -> type:
    """The encoder class for a modality and its config's `type` (imported lazily so unused backbones cost nothing)."""
    if kind is not None and kind not in ENCODER_TYPES.get(modality, ()):
        raise OneProtError(f"unknown {modality.value} encoder type {kind!r}; choose one of: "
                           f"{', '.join(ENCODER_TYPES.get(modality, ())) or '(none: leave type out)'}",
                           f"config.encoders.{modality.value}.type")
    if kind == "pronet":
        from engine.encoders.pronet import PocketProNet, StructureProNet

        return StructureProNet if modality is Modality.STRUCTURE else PocketProNet
    if kind == "proteinmpnn":
        from engine.encoders.proteinmpnn import PocketProteinMPNN, StructureProteinMPNN

        return StructureProteinMPNN if modality is Modality.STRUCTURE else PocketProteinMPNN
    if modality is Modality.SEQUENCE and kind == "unirep":
        from engine.encoders.unirep import UniRepEncoder as cls
    elif modality is Modality.SEQUENCE:
        from engine.encoders.sequence import SequenceEncoder as cls
    elif modality is Modality.STRUCTURE_TOKENS:
        from engine.encoders.structure_tokens import StructureTokensEncoder as cls
    elif modality is Modality.STRUCTURE:
        from engine.encoders.structure import StructureEncoder as cls
    elif modality is Modality.POCKET:
        from engine.encoders.pocket import PocketEncoder as cls
    else:
        from engine.encoders.text import TextEncoder as cls
    return cls


HEADS = ("linear", "mlp", "ln_linear", "ln_mlp")


def make_head(kind: str, in_dim: int, out_dim: int) -> nn.Module:
    """Projection head into the shared space.

    linear     Linear with bias (the demo's choice)
    mlp        Linear-GELU-Linear
    ln_linear  LayerNorm, then Linear without bias (upstream OneProt's "linear" projection)
    ln_mlp     LayerNorm, Linear to (in+out)//2, GELU, LayerNorm, Linear; no biases (upstream's text head)
    """
    if kind == "linear":
        return nn.Linear(in_dim, out_dim)
    if kind == "mlp":
        return nn.Sequential(nn.Linear(in_dim, in_dim), nn.GELU(), nn.Linear(in_dim, out_dim))
    if kind == "ln_linear":
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, out_dim, bias=False))
    if kind == "ln_mlp":
        mid = (in_dim + out_dim) // 2
        return nn.Sequential(nn.LayerNorm(in_dim), nn.Linear(in_dim, mid, bias=False), nn.GELU(),
                             nn.LayerNorm(mid), nn.Linear(mid, out_dim, bias=False))
    raise OneProtError(f"unknown head {kind!r}; choose one of: {', '.join(HEADS)}", "head")


def move_batch(batch: Any, device: torch.device) -> Any:
    """Tensors in a (nested) batch dict -> device; everything else unchanged."""
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, dict):
        return {k: move_batch(v, device) for k, v in batch.items()}
    return batch


class OneProt(nn.Module):
    """The aligned multi-modal model.

    Args:
        config: a ModelConfig or its dict form; must include the sequence anchor.
        load_weights: False when a checkpoint will supply all weights (skips pretrained sources
            except backbones the checkpoint leaves out, e.g. a frozen bundled text model).
    """

    def __init__(self, config: ModelConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, ModelConfig) else ModelConfig.from_dict(config)
        names = [parse_modality(m) for m in cfg.encoders]
        if ANCHOR not in names:
            raise OneProtError("the sequence encoder (the anchor) is required", "config.encoders")
        self.config = cfg
        self.encoders = nn.ModuleDict()
        self.heads = nn.ModuleDict()
        for m in Modality:  # canonical order, whatever order the config lists
            if m not in names:
                continue
            enc_cfg = dict(cfg.encoders[m.value] if m.value in cfg.encoders else cfg.encoders[m])
            encoder = encoder_class(m, enc_cfg.get("type"))(enc_cfg, load_weights=load_weights)
            # Encoders may resolve their config (e.g. the ESM shape read from a weights file):
            # keep the resolved form so a checkpoint rebuilds the same architecture.
            cfg.encoders[m.value] = compact_config(encoder.config)
            self.encoders[m.value] = encoder
            self.heads[m.value] = make_head(cfg.heads.get(m.value, cfg.head), encoder.output_dim, cfg.dim)
        init = math.log(1.0 / cfg.temperature)
        if cfg.learn_temperature:
            self.log_inv_temperature = nn.Parameter(torch.tensor(init))
        else:
            self.register_buffer("log_inv_temperature", torch.tensor(init))

    # ---- properties ---------------------------------------------------------------------------------
    @property
    def modalities(self) -> list[str]:
        return list(self.encoders.keys())

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    @property
    def logit_scale(self) -> torch.Tensor:
        """1 / temperature, clamped at 100 as CLIP does so a learned value cannot blow up."""
        return self.log_inv_temperature.exp().clamp(max=100.0)

    def ensure_loaded(self) -> "OneProt":
        """Read every encoder part deferred to first use (e.g. a frozen text backbone) now."""
        for enc in self.encoders.values():
            enc.ensure_loaded()
        return self

    def external_keys(self) -> set[str]:
        """State-dict keys checkpoints leave out because they are re-read from a named source."""
        keys = set()
        for m, enc in self.encoders.items():
            prefixes = [f"encoders.{m}.{p}" for p in enc.external_prefixes()]
            for k in enc.state_dict():
                full = f"encoders.{m}.{k}"
                if any(full.startswith(p) for p in prefixes) and "lora_" not in full:
                    keys.add(full)
        return keys

    # ---- forward ------------------------------------------------------------------------------------
    def _encoder(self, modality: str | Modality) -> tuple[str, nn.Module]:
        m = parse_modality(modality).value
        if m not in self.encoders:
            raise OneProtError(f"this model has no {m} encoder; it has: {', '.join(self.modalities)}", "modality")
        return m, self.encoders[m]

    def project(self, modality: str | Modality, pooled: torch.Tensor) -> torch.Tensor:
        """(B, H) pooled encoder outputs -> (B, D) L2-normalised embeddings (float32) through the head."""
        m, _ = self._encoder(modality)
        return F.normalize(self.heads[m](pooled).float(), dim=-1)

    def encode(self, modality: str | Modality, batch: dict[str, Any]) -> torch.Tensor:
        """One collated batch -> (B, D) L2-normalised embeddings (float32)."""
        m, encoder = self._encoder(modality)
        return self.project(m, encoder(move_batch(batch, self.device)).pooled)

    def forward(self, batches: dict[str, dict[str, Any]]) -> dict[str, torch.Tensor]:
        """{modality: collated batch} -> {modality: (B, D) normalised embeddings}."""
        return {str(m): self.encode(m, b) for m, b in batches.items()}

    def collate(self, modality: str | Modality, items: list[Any]) -> dict[str, Any]:
        """Raw items -> a batch for `forward` (the encoder's own collate)."""
        return self._encoder(modality)[1].collate(items)

    # ---- embedding: the one path from raw items to vectors ---------------------------------------------
    def pooled_batches(self, modality: str | Modality, items: list[Any], batch_tokens: int = DEFAULT_BATCH_TOKENS,
                       packed: bool = True, options: PackedOptions | None = None,
                       ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (positions in items, (B, H) pooled encoder outputs) over length-sorted token-budget batches.

        An encoder that packs (`packs = True`, the ESM encoders) takes raw items padding-free in its own
        token-budget batches (`pooled_packed`; `options` choose its attention backend, compile, ...); any other
        encoder gets its own collate (one batch ahead, in a background thread) + forward, and a batch costs its
        padded size. Call under torch.no_grad().
        """
        m, encoder = self._encoder(modality)
        if packed and encoder.packs:
            yield from encoder.pooled_packed(items, batch_tokens, options)
            return
        batches = token_budget_batches([item_cost(x, m) for x in items], batch_tokens, padded=True)
        for idx, batch in background_map(lambda idx: (idx, encoder.collate([items[i] for i in idx])), batches):
            yield torch.from_numpy(idx), encoder(move_batch(batch, self.device)).pooled

    @torch.no_grad()
    def embed(self, modality: str | Modality, items: list[Any], batch_tokens: int = DEFAULT_BATCH_TOKENS,
              packed: bool = True, options: PackedOptions | None = None) -> np.ndarray:
        """Raw items -> (N, D) float32 normalised embeddings, in input order (eval mode; on CUDA an fp32 model runs
        under bf16 autocast, a model cast with `.to(torch.bfloat16)` runs pure bf16)."""
        return self._run(modality, items, batch_tokens, packed, options, project=True)

    @torch.no_grad()
    def pooled(self, modality: str | Modality, items: list[Any], batch_tokens: int = DEFAULT_BATCH_TOKENS,
               options: PackedOptions | None = None) -> np.ndarray:
        """Raw items -> (N, H) float32 encoder outputs before the head, in input order."""
        return self._run(modality, items, batch_tokens, True, options, project=False)

    @torch.no_grad()
    def residues(self, modality: str | Modality, items: list[Any], batch_tokens: int = DEFAULT_BATCH_TOKENS,
                 options: PackedOptions | None = None) -> list[np.ndarray]:
        """Raw items -> each item's per-residue final encoder states (L_i, H) float32 (token encoders only)."""
        _, encoder = self._encoder(modality)
        with self._evaluating():
            return [r.numpy() for r in encoder.residues_packed(list(items), batch_tokens, options)]

    def _run(self, modality: str | Modality, items: list[Any], batch_tokens: int, packed: bool,
             options: PackedOptions | None, project: bool) -> np.ndarray:
        m, encoder = self._encoder(modality)
        items = list(items)
        dim = self.config.dim if project else encoder.output_dim
        if not items:
            return np.zeros((0, dim), dtype=np.float32)
        # results stay on the device until the end: one device->host copy, no sync per batch
        out = torch.zeros((len(items), dim), dtype=torch.float32, device=self.device)
        with self._evaluating():
            for idx, pooled in self.pooled_batches(m, items, batch_tokens, packed, options):
                z = self.project(m, pooled) if project else pooled
                out.index_copy_(0, idx.to(out.device), z.float())
        return out.cpu().numpy()

    @contextlib.contextmanager
    def _evaluating(self) -> Iterator[None]:
        """Eval mode and the device's autocast for the duration; the training flag is restored after."""
        was_training = self.training
        self.eval()
        try:
            with autocast_for(self.device, next(self.parameters()).dtype):
                yield
        finally:
            self.train(was_training)


def autocast_for(device: torch.device, dtype: torch.dtype = torch.float32):
    """bf16 autocast for an fp32 model on CUDA (what the anchors were measured with); a model cast to bf16/fp16
    runs as it is (autocast would lift its layer norms to fp32), and so does everything on the CPU."""
    if device.type == "cuda" and dtype == torch.float32:
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()
