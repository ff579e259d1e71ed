"""An ESM-2-architecture encoder over a token alphabet; the sequence and 3Di encoders are this class.

Collate is the only place that adds BOS/EOS and padding. Pooling never sees them: the output
`states` are cut to residue positions (states[:, j] is residue j) and `mask` is True only there.

On CPU the forward pass (training included) runs padding-free through
`engine.encoders.packed_esm` (same maths as fair-esm's `ESM2.forward`, one fused attention call per
sequence): 2.6-3x faster for a demo training batch (benchmarks/esm_train_step.py). On other
devices it runs fair-esm's padded forward. Embedding (OneProt.embed / pooled / residues) always takes
the packed methods `pooled_packed` / `residues_packed`: raw strings, token-budget batches, no padding.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.esm_arch import RELEASED_ESM2, EsmArch, build_esm2, load_esm_weights, load_into
from engine.encoders.packed_esm import (
    ESMTokenizer,
    PackedOptions,
    mean_pool,
    pack_padded,
    packed_batches,
    packed_forward,
    packed_to_padded,
)
from engine.encoders.pooling import MeanPooling, make_pooling, pooled_width
from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.token_batching import DEFAULT_BATCH_TOKENS


@dataclass
class EsmEncoderConfig:
    """How to build an ESM-2-style encoder. Field values are stored in checkpoints as JSON."""

    weights: str | None = None  # released name, fair-esm .pt file, or `oneprot pretrain` folder; None = random
    layers: int = 6  # architecture, used when `weights` is None; overwritten by what `weights` holds
    dim: int = 320
    heads: int = 20
    pooling: str = "mean"  # "mean" or "attention" (the paper's choice for the frozen ESM-2 650M)
    freeze: bool = False  # frozen backbone: no grads, always eval mode; pooling stays trainable
    max_length: int = 1022  # residues kept per item (ESM-2 was trained on 1,024 tokens incl. BOS/EOS)
    token_dropout: bool = True
    train_mask: float = 0.0  # augmentation: fraction of residue tokens replaced by <mask> while training
    train_crop: float = 0.0  # augmentation: while training, each item is cut to a random contiguous window of
    #                          at least this fraction of its residues (uniform in [train_crop, 1]); 0 = off
    alphabet: str = ""  # "" = the encoder's own; "3di_upstream" = ESM-2's 33 tokens + upstream's 21 added 3Di tokens

    OMIT_WHEN_DEFAULT: ClassVar[tuple[str, ...]] = ("alphabet",)


class EsmTokenEncoder(ModalityEncoder):
    """ESM-2 network + pooling over one alphabet ('protein' or '3di').

    Args:
        config: an EsmEncoderConfig (or a dict of its fields).
        alphabet: 'protein' for amino acids, '3di' for Foldseek structure tokens.
        load_weights: False when a OneProt checkpoint will supply the weights (skips the source).
    """

    config_class = EsmEncoderConfig

    alphabet_kind = "protein"

    def __init__(self, config: EsmEncoderConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, EsmEncoderConfig) else _config_from_dict(config)
        kind = cfg.alphabet or self.alphabet_kind
        arch = EsmArch(cfg.layers, cfg.dim, cfg.heads, kind, cfg.token_dropout)
        state = None
        if cfg.weights and (load_weights or self.external_prefixes_for(cfg)):
            src_arch, state = load_esm_weights(cfg.weights, kind)
            if src_arch.alphabet != kind and src_arch.alphabet != "protein":
                raise OneProtError(
                    f"weights are a {src_arch.alphabet!r}-alphabet model; the {self.modality.value} encoder "
                    f"expects {kind!r} (or amino-acid ESM-2 weights to start from)",
                    cfg.weights,
                )
            arch = EsmArch(src_arch.layers, src_arch.dim, src_arch.heads, kind, src_arch.token_dropout)
            cfg.layers, cfg.dim, cfg.heads, cfg.token_dropout = arch.layers, arch.dim, arch.heads, arch.token_dropout
        self.config = cfg
        self.esm = build_esm2(arch)
        if state is not None:
            load_into(self.esm, state, cfg.weights or "weights")
        self.alphabet = self.esm.alphabet
        self._upstream_3di = kind == "3di_upstream"
        self._lookup = {tok: i for tok, i in self.alphabet.tok_to_idx.items() if len(tok) == 1}
        self._table = np.full(256, self.alphabet.unk_idx, dtype=np.int64)
        for tok, i in self._lookup.items():
            if ord(tok) < 256:
                self._table[ord(tok)] = i
        self._special = torch.tensor([self.alphabet.cls_idx, self.alphabet.eos_idx, self.alphabet.padding_idx])
        self.pool = make_pooling(cfg.pooling, arch.dim)
        self.state_dim = arch.dim
        self.output_dim = pooled_width(self.pool, arch.dim)
        self._packed_tokenizer = ESMTokenizer(self.alphabet, residue_ids=self._residue_ids)
        # upstream's poolings weigh every non-padding token, BOS and EOS included (engine.encoders.pooling)
        self._pool_includes_special = bool(getattr(self.pool, "includes_special", False))
        if cfg.freeze:
            self.esm.requires_grad_(False)

    @property
    def packs(self) -> bool:
        """Padding-free embedding (pooled_packed) unless the pooling needs the BOS/EOS states it drops."""
        return not self._pool_includes_special

    @staticmethod
    def external_prefixes_for(cfg: EsmEncoderConfig) -> list[str]:
        """Frozen released weights are re-fetched by name, so checkpoints need not carry them."""
        return ["esm."] if cfg.freeze and cfg.weights in RELEASED_ESM2 else []

    def external_prefixes(self) -> list[str]:
        """State-dict prefixes that checkpoints leave out (rebuilt from the config's source)."""
        return self.external_prefixes_for(self.config)

    def train(self, mode: bool = True) -> "EsmTokenEncoder":
        super().train(mode)
        if self.config.freeze:
            self.esm.eval()  # a frozen backbone keeps dropout off even while the heads train
        return self

    # ---- batching -----------------------------------------------------------------------------
    def tokenize(self, text: str) -> list[int]:
        """Letters -> token ids (no BOS/EOS), truncated to `max_length`; unknown letters -> <unk>."""
        return self._residue_ids(text).tolist()

    def _residue_ids(self, text: str) -> np.ndarray:
        """`tokenize` as an int64 array, through a byte table (the packed path tokenises every item)."""
        if self._upstream_3di:
            from engine.data.tokens3di import upstream_3di_letters

            # upstream's added tokens are the lowercase 3Di letters; '#' is removed before tokenising
            letters = upstream_3di_letters(text)[: self.config.max_length]
            return np.array([self._lookup.get(ch, self.alphabet.unk_idx) for ch in letters], dtype=np.int64)
        # a character outside latin-1 becomes "?", which no alphabet has: <unk>, as the lookup gives
        raw = text.strip().upper()[: self.config.max_length].encode("latin-1", "replace")
        return self._table[np.frombuffer(raw, dtype=np.uint8)]

    def collate(self, items: list[str]) -> dict[str, Any]:
        """Strings -> {'tokens': (B, T) with BOS/EOS and padding}."""
        if isinstance(items, str):
            raise OneProtError("expected a list of strings, got one string", "items")
        ids = [self.tokenize(s) for s in items]
        width = max((len(x) for x in ids), default=0) + 2
        tokens = torch.full((len(ids), width), self.alphabet.padding_idx, dtype=torch.long)
        for i, x in enumerate(ids):
            tokens[i, 0] = self.alphabet.cls_idx
            tokens[i, 1 : len(x) + 1] = torch.tensor(x, dtype=torch.long)
            tokens[i, len(x) + 1] = self.alphabet.eos_idx
        return {"tokens": tokens}

    # ---- forward --------------------------------------------------------------------------------
    def residue_states(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Final-layer states at residue positions (B, T-2, H) and their mask (B, T-2)."""
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze):
            out = self.esm(tokens, repr_layers=[self.esm.num_layers])
        states = out["representations"][self.esm.num_layers][:, 1:-1]  # drop BOS and the last column
        inner = tokens[:, 1:-1]
        mask = ~torch.isin(inner, self._special.to(inner.device))  # EOS of shorter items and padding
        return states, mask

    def packed_residue_states(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Same result as `residue_states(tokens)`, without computing on padding (every row needs a residue)."""
        packed = pack_padded(tokens, self.alphabet.padding_idx)
        with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze):
            return packed_to_padded(packed_forward(self.esm, packed).last, packed)

    def pooled_packed(self, items: list[str], batch_tokens: int = DEFAULT_BATCH_TOKENS,
                      options: PackedOptions | None = None) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
        """Yield (positions in `items`, (B, H) pooled states) per token-budget batch, padding-free, same tokens
        as `collate`; both stay on the device. Mean pooling is a segment sum over the packed states. Call under
        torch.no_grad() (OneProt.embed does); a frozen backbone records no graph either way."""
        mean = isinstance(self.pool, MeanPooling)
        for packed, states in packed_batches(self.esm, self._packed_tokenizer, list(items), batch_tokens, options):
            yield packed.order, mean_pool(states, packed) if mean else self.pool(*packed_to_padded(states, packed))

    def residues_packed(self, items: list[str], batch_tokens: int = DEFAULT_BATCH_TOKENS,
                        options: PackedOptions | None = None) -> list[torch.Tensor]:
        """Final-layer states of each item's residues, (L_i, H) float32 on the host, in input order."""
        items = list(items)
        n_res = [self._packed_tokenizer.n_residues(s, f"sequences[{i}]") if isinstance(s, str) else 0
                 for i, s in enumerate(items)]
        # offsets[i] = first row of item i; the extra last row swallows BOS/EOS
        offsets = np.concatenate([[0], np.cumsum(n_res)]).astype(np.int64)
        out = torch.zeros(int(offsets[-1]) + 1, self.state_dim, device=next(self.esm.parameters()).device)
        for packed, states in packed_batches(self.esm, self._packed_tokenizer, items, batch_tokens, options,
                                             residue_offsets=offsets):
            out.index_copy_(0, packed.residue_dest, states.float().detach())
        return list(out[:-1].cpu().split(n_res))  # the only device->host copy

    def crop_for_training(self, tokens: torch.Tensor) -> torch.Tensor:
        """Augmentation: each row keeps a random contiguous window of its residues, at least `train_crop` of
        them, between its BOS and EOS (global torch RNG, so resumable). Rows are re-padded to the new width."""
        pad = self.alphabet.padding_idx
        residues = ((tokens != pad).sum(1) - 2).tolist()  # BOS and EOS excluded
        draws = torch.rand(len(residues), 2).tolist()
        rows = []
        for i, (n, (size, place)) in enumerate(zip(residues, draws)):
            keep = max(1, min(n, round(n * (self.config.train_crop + (1 - self.config.train_crop) * size))))
            start = min(n - keep, int(place * (n - keep + 1)))
            rows.append(torch.cat((tokens[i, :1], tokens[i, 1 + start : 1 + start + keep], tokens[i, 1 + n : 2 + n])))
        out = tokens.new_full((len(rows), max((len(r) for r in rows), default=2)), pad)
        for i, row in enumerate(rows):
            out[i, : len(row)] = row
        return out

    def mask_for_training(self, tokens: torch.Tensor) -> torch.Tensor:
        """Augmentation: `train_mask` of the residue tokens become <mask> (global torch RNG, so resumable)."""
        residue = ~torch.isin(tokens, self._special.to(tokens.device))
        hit = (torch.rand(tokens.shape, device=tokens.device) < self.config.train_mask) & residue
        return tokens.masked_fill(hit, self.alphabet.mask_idx)

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        tokens = batch["tokens"]
        if self.training and self.config.train_crop > 0 and not self.config.freeze:
            tokens = self.crop_for_training(tokens)
        if self.training and self.config.train_mask > 0 and not self.config.freeze:
            tokens = self.mask_for_training(tokens)
        if self._pool_includes_special:
            with torch.set_grad_enabled(torch.is_grad_enabled() and not self.config.freeze):
                full = self.esm(tokens, repr_layers=[self.esm.num_layers])["representations"][self.esm.num_layers]
            pooled = self.pool(full, tokens != self.alphabet.padding_idx)
            inner = tokens[:, 1:-1]
            mask = ~torch.isin(inner, self._special.to(inner.device))
            return EncoderOutput(pooled=pooled, states=full[:, 1:-1], mask=mask)
        if tokens.device.type == "cpu" and tokens.shape[0] and bool((tokens[:, 1] != self.alphabet.eos_idx).all()):
            states, mask = self.packed_residue_states(tokens)
        else:
            states, mask = self.residue_states(tokens)
        pooled = self.pool(states, mask)  # (B, H)
        return EncoderOutput(pooled=pooled, states=states, mask=mask)


def _config_from_dict(d: dict) -> EsmEncoderConfig:
    return dataclass_from_dict(EsmEncoderConfig, d, "encoder config", ignore={"type"})
