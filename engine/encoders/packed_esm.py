"""Packed (padding-free) forward pass and token-budget batching for fair-esm `esm.model.esm2.ESM2` encoders.

Any ESM-2-architecture module works: the released sizes (8M..15B), small from-scratch configs and
custom alphabets (e.g. Foldseek 3Di letters). The forward pass reads the module's own parameters,
so there is no second copy of the model and fine-tuned weights are picked up as they change.

How it differs from `ESM2.forward` (same maths, different layout):
- the sequences of a batch are concatenated into one `(T, D)` tensor (T = total tokens, BOS/EOS
  included) described by `cu_seqlens` (start offsets, like flash-attention), so no FLOP is spent on
  padding;
- rotary embeddings are computed for the packed positions (position 0 = BOS of each sequence): angles
  in float32 from the head size (exactly fair-esm's tables for an fp32 model), products in the
  model's dtype;
- attention stays inside each sequence: `varlen` (flash-attention on CUDA through
  `torch.nn.attention.varlen.varlen_attn`, bf16/fp16), `per_sequence` (one fused SDPA call per
  sequence; the CPU default, faster than fair-esm's explicit softmax), or `padded` (gather into a
  padded block + SDPA with a key mask; the CUDA fallback for fp32 or unusual head sizes);
- token-dropout rescaling (`x * 0.88 / (1 - mask_fraction)` per sequence) and the final layer norm
  are reproduced exactly; pooling is a segment sum over residues (BOS/EOS excluded).

Public API:
    pack_sequences(tokenizer, sequences) -> PackedTokens (engine/token_batching.py layout)
    pack_padded(tokens, padding_idx) -> PackedTokens           from a padded (B, T) batch
    packed_forward(model, packed, repr_layers=()) -> PackedStates   (T, D) last-layer states
    packed_batches(model, tokenizer, seqs, token_budget, options) -> (packed, (T, D) states) per batch
    mean_pool(states, packed) -> (N, D) float32                    mean over residues
    packed_to_padded(states, packed) -> ((N, L, D), (N, L) mask)    residues only, for attention pooling

This module is the engine; the one embedding path is `OneProt.embed` / `OneProt.pooled` /
`OneProt.residues`, which reach it through the ESM encoder's packed methods
(`EsmTokenEncoder.pooled_packed`, `residues_packed`, engine/encoders/esm_encoder.py) with the
encoder's own tokens. `PackedOptions` carries the attention backend, the fused GELU epilogue,
torch.compile and CUDA graphs. The forward runs in the parameters' dtype: cast the model
(`model.to(torch.bfloat16)`) for pure bf16, or let `OneProt.embed`'s CUDA autocast run an fp32 model
in mixed bf16. `packed_batches` sorts sequences by length into token-budget batches, tokenises and
pins the next batch in a background thread and keeps results on the device (no per-batch
`.item()`/`.cpu()`). `compile` compiles the dense part of each layer with
`torch.compile(dynamic=True)`; `cuda_graphs` additionally pads the token count to a multiple of
`pad_multiple` (a dummy sequence of padding tokens) and uses the "reduce-overhead" mode.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import OneProtError
from engine.token_batching import (
    PackedTokens,
    background_map,
    pack_token_arrays,
    token_budget_batches,
)

ATTENTION_BACKENDS = ("auto", "varlen", "per_sequence", "padded")
_MASK_RATIO_TRAIN = 0.15 * 0.8  # the constant ESM-2 was trained with; its forward rescales by it


class ESMTokenizer:
    """Strings -> ESM token ids with BOS/EOS, as fair-esm's BatchConverter does, via a byte table.

    `residue_ids` (optional) replaces the letter lookup with the caller's own function returning
    residue ids without BOS/EOS, e.g. `EsmTokenEncoder.tokenize`, so both paths see the same tokens.
    """

    def __init__(self, alphabet: Any, max_residues: int | None = None,
                 residue_ids: Callable[[str], Any] | None = None):
        self.alphabet = alphabet
        self.max_residues = max_residues
        self.residue_ids = residue_ids
        self.prepend_bos = bool(alphabet.prepend_bos)
        self.append_eos = bool(alphabet.append_eos)
        # one-character tokens cover every ordinary sequence; anything else goes through fair-esm
        self.table = np.full(256, -1, dtype=np.int64)
        for token, index in alphabet.tok_to_idx.items():
            if len(token) == 1 and ord(token) < 256:
                self.table[ord(token)] = index

    def _residues(self, sequence: str, where: str) -> np.ndarray:
        if self.residue_ids is not None:
            return np.asarray(self.residue_ids(sequence), dtype=np.int64).reshape(-1)
        try:
            ids = self.table[np.frombuffer(sequence.encode("latin-1"), dtype=np.uint8)]
        except UnicodeEncodeError:
            ids = np.array([-1])
        if (ids < 0).any():  # special tokens such as "<mask>" or an unknown letter
            try:
                ids = np.asarray(self.alphabet.encode(sequence), dtype=np.int64)
            except KeyError as error:
                raise OneProtError(f"unknown token {error} for this alphabet", where) from None
        return ids

    def n_residues(self, sequence: str, where: str = "sequence") -> int:
        """Residue tokens `encode` will produce (cheap when every letter is one token)."""
        if self.residue_ids is None and "<" not in sequence:  # multi-letter tokens start with "<"
            n = len(sequence)
        else:
            n = len(self._residues(sequence, where))
        return n if self.max_residues is None else min(n, self.max_residues)

    def encode(self, sequence: str, where: str = "sequence") -> np.ndarray:
        """Token ids of one sequence with BOS/EOS as the alphabet asks, int64."""
        ids = self._residues(sequence, where)
        if self.max_residues is not None:
            ids = ids[: self.max_residues]
        parts = [ids]
        if self.prepend_bos:
            parts.insert(0, np.array([self.alphabet.cls_idx], dtype=np.int64))
        if self.append_eos:
            parts.append(np.array([self.alphabet.eos_idx], dtype=np.int64))
        return np.concatenate(parts)


def pack_sequences(tokenizer: ESMTokenizer, sequences: list[str], **kwargs: Any) -> PackedTokens:
    """Tokenise and pack `sequences` (in the given order) into one batch."""
    for i, seq in enumerate(sequences):
        if not seq:
            raise OneProtError("empty sequence", f"sequences[{i}]")
    arrays = [tokenizer.encode(s, f"sequences[{i}]") for i, s in enumerate(sequences)]
    return pack_token_arrays(arrays, prepend_bos=tokenizer.prepend_bos,
                             append_eos=tokenizer.append_eos,
                             padding_idx=tokenizer.alphabet.padding_idx, **kwargs)


def pack_padded(tokens: torch.Tensor, padding_idx: int) -> PackedTokens:
    """A padded (B, T) batch whose rows are BOS, residues, EOS, then padding -> the packed layout."""
    lengths = (tokens != padding_idx).sum(1).tolist()
    arrays = [row[:n].cpu().numpy() for row, n in zip(tokens, lengths)]
    return pack_token_arrays(arrays, prepend_bos=True, append_eos=True, padding_idx=padding_idx).to(tokens.device)


# ----------------------------------------------------------------------------------------------
# attention on the packed layout


def _varlen_attn() -> Callable[..., torch.Tensor]:
    """torch's flash varlen entry point (imported lazily: the module is slow to import)."""
    from torch.nn.attention.varlen import varlen_attn

    return varlen_attn


def _varlen_supported(q: torch.Tensor) -> bool:
    """Flash varlen needs CUDA, half precision and a head size that is a multiple of 8 up to 256."""
    if not q.is_cuda or q.dtype not in (torch.float16, torch.bfloat16):
        return False
    if q.shape[-1] % 8 or q.shape[-1] > 256:
        return False
    try:
        from torch.nn.attention.varlen import varlen_attn  # noqa: F401
    except ImportError:
        return False
    return True


def resolve_attention(name: str, q: torch.Tensor) -> str:
    """Pick the concrete backend for `name` ("auto" -> varlen / padded on CUDA, per_sequence on CPU)."""
    if name not in ATTENTION_BACKENDS:
        raise OneProtError(f"unknown attention backend {name!r}; choose from {ATTENTION_BACKENDS}",
                           "attention")
    if name == "auto":
        if _varlen_supported(q):
            return "varlen"
        return "padded" if q.is_cuda else "per_sequence"
    if name == "varlen" and not _varlen_supported(q):
        raise OneProtError("varlen attention needs CUDA, bf16/fp16 and head size % 8 == 0",
                           "attention")
    return name


def packed_attention(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, packed: PackedTokens,
                     backend: str, scale: float) -> torch.Tensor:
    """Self-attention inside each segment. q, k, v: (T, H, hd) -> (T, H, hd)."""
    if backend == "varlen":
        varlen_attn = _varlen_attn()
        if abs(scale - q.shape[-1] ** -0.5) > 1e-12:  # older torch releases take no `scale`
            q = q * (scale * q.shape[-1] ** 0.5)
        args = (packed.cu_seqlens, packed.cu_seqlens, packed.max_len, packed.max_len)
        try:  # q, k, v are strided views of one (T, 3, H, hd) projection: no copy when accepted
            return varlen_attn(q, k, v, *args)
        except RuntimeError:  # a kernel build that insists on contiguous inputs
            return varlen_attn(q.contiguous(), k.contiguous(), v.contiguous(), *args)
    if backend == "per_sequence":
        outs = []
        # (1, H, L, hd) strided views: SDPA's fused CPU kernel takes them without a copy
        for qs, ks, vs in zip(q.split(packed.lengths), k.split(packed.lengths),
                              v.split(packed.lengths)):
            o = F.scaled_dot_product_attention(qs.unsqueeze(0).transpose(1, 2),
                                               ks.unsqueeze(0).transpose(1, 2),
                                               vs.unsqueeze(0).transpose(1, 2), scale=scale)
            outs.append(o[0].transpose(0, 1))
        return torch.cat(outs) if len(outs) > 1 else outs[0].contiguous()
    if backend == "padded":
        total, heads, hd = q.shape
        n_seg, longest = len(packed.lengths), packed.max_len
        # all index maths from host ints and device tensors: no device->host sync
        flat = packed.seq_index * longest + packed.positions  # (T,)
        block = q.new_zeros(3, n_seg * longest, heads, hd)
        block[0].index_copy_(0, flat, q)
        block[1].index_copy_(0, flat, k)
        block[2].index_copy_(0, flat, v)
        block = block.view(3, n_seg, longest, heads, hd).transpose(2, 3)  # (3, S, H, L, hd)
        key_ok = torch.arange(longest, device=q.device)[None, :] < packed.seg_lengths[:, None]
        o = F.scaled_dot_product_attention(block[0], block[1], block[2],
                                           attn_mask=key_ok[:, None, None, :], scale=scale)
        return o.transpose(1, 2).reshape(n_seg * longest, heads, hd).index_select(0, flat)
    raise OneProtError(f"unknown attention backend {backend!r}", "attention")


# ----------------------------------------------------------------------------------------------
# one transformer block as pure functions of tensors, so torch.compile can share one graph per dtype


def rotary_tables(positions: torch.Tensor, head_dim: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(T, hd/2) float32 cos/sin for the packed positions.

    fair-esm's RotaryEmbedding uses cat(freqs, freqs), so both halves of its tables are equal; one
    half is kept here, computed from the head size in float32 (a module cast to bf16 would otherwise
    round its `inv_freq` buffer and the positions with it).
    """
    inv_freq = 1.0 / (10000 ** (torch.arange(0, head_dim, 2, device=positions.device).float()
                                / head_dim))
    freqs = positions.float()[:, None] * inv_freq[None, :]
    return freqs.cos(), freqs.sin()


def _rotate(x: torch.Tensor, cos: torch.Tensor, sin: torch.Tensor) -> torch.Tensor:
    """x * cos + rotate_half(x) * sin (fair-esm's rotary) on the last dim; cos/sin are half-width.

    Without autograd it writes both halves in place into one output: on a GPU without
    torch.compile this op is memory-bound, and full-size temporaries would triple its traffic.
    """
    half = x.shape[-1] // 2
    x1, x2 = x[..., :half], x[..., half:]
    # autograd needs the functional form; so does torch.compile, which fuses it into one kernel
    if torch.compiler.is_compiling() or (torch.is_grad_enabled() and x.requires_grad):
        return torch.cat((x1 * cos - x2 * sin, x2 * cos + x1 * sin), dim=-1)
    out = torch.empty_like(x)
    low, high = out[..., :half], out[..., half:]
    torch.mul(x1, cos, out=low)
    low.addcmul_(x2, sin, value=-1)
    torch.mul(x2, cos, out=high)
    high.addcmul_(x1, sin)
    return out


def _pre_attention(x, ln_w, ln_b, eps: float, w_qkv, b_qkv, cos, sin, heads: int):
    h = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
    qkv = F.linear(h, w_qkv, b_qkv).view(x.shape[0], 3, heads, -1)  # (T, 3, H, hd)
    # q and k rotated in one pass over a (T, 2, H, hd) view; q, k, v stay strided views
    qk = _rotate(qkv[:, :2], cos[:, None, None, :], sin[:, None, None, :])
    return qk[:, 0], qk[:, 1], qkv[:, 2]


def _post_attention(x, o, w_o, b_o, ln_w, ln_b, eps: float, w1, b1, w2, b2):
    x = x + F.linear(o.reshape(x.shape), w_o, b_o)
    h = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
    return x + F.linear(F.gelu(F.linear(h, w1, b1)), w2, b2)  # exact (erf) GELU, as fair-esm


def _post_attention_fused(x, o, w_o, b_o, ln_w, ln_b, eps: float, w1, b1, w2, b2):
    """`_post_attention` with GELU done in fc1's GEMM epilogue (cuBLASLt on CUDA: the tanh form of
    GELU, which differs from erf GELU by < 5e-4, below bf16's rounding) and the residual adds in place."""
    x = F.linear(o.reshape(x.shape), w_o, b_o).add_(x)
    h = F.layer_norm(x, (x.shape[-1],), ln_w, ln_b, eps)
    return F.linear(torch._addmm_activation(b1, h, w1.t(), use_gelu=True), w2, b2).add_(x)


def _eps(norm: nn.Module) -> float:
    return float(getattr(norm, "eps", 1e-5))


@dataclass
class PackedStates:
    """Output of `packed_forward`: last-layer states after the final layer norm, plus asked layers."""

    last: torch.Tensor  # (T, D)
    layers: dict[int, torch.Tensor]  # layer number (0 = embeddings) -> (T, D)


def packed_forward(model: nn.Module, packed: PackedTokens, *, repr_layers: tuple[int, ...] = (),
                   attention: str = "auto", compiled: tuple[Any, Any] | None = None,
                   fused_gelu: bool = True) -> PackedStates:
    """ESM2 forward on a packed batch, reading `model`'s parameters; runs in the parameters' dtype.

    `fused_gelu` applies where no autograd graph is recorded and nothing is `compiled`: see
    `_post_attention_fused` (+6% tokens/s for ESM-2 650M on an H200, benchmarks/results)."""
    embed = model.embed_tokens
    dtype = embed.weight.dtype
    tokens = packed.tokens
    x = model.embed_scale * embed(tokens)  # (T, D)
    if model.token_dropout:
        is_mask = tokens == model.mask_idx
        x = x.masked_fill(is_mask.unsqueeze(-1), 0.0)
        n_mask = torch.zeros(len(packed.lengths), device=x.device, dtype=torch.long).index_add_(
            0, packed.seq_index, is_mask.long())
        observed = n_mask.to(dtype) / packed.seg_lengths  # per sequence, BOS/EOS counted as fair-esm
        x = x * (1 - _MASK_RATIO_TRAIN) / (1 - observed)[packed.seq_index][:, None]
    layers: dict[int, torch.Tensor] = {}
    if 0 in repr_layers:
        layers[0] = x
    fused = fused_gelu and _no_autograd()
    pre, post = compiled if compiled is not None else (
        _pre_attention, _post_attention_fused if fused else _post_attention)
    first = model.layers[0].self_attn if len(model.layers) else None
    head_dim = first.head_dim if first is not None else 0
    cos, sin = rotary_tables(packed.positions, head_dim) if first is not None else (None, None)
    if cos is not None:  # angles in float32, products in the model dtype (one rounding in bf16)
        cos, sin = cos.to(dtype), sin.to(dtype)
    backend = None
    for number, layer in enumerate(model.layers, start=1):
        attn = layer.self_attn
        if attn.bias_k is not None or attn.add_zero_attn:
            raise OneProtError("packed forward supports ESM-2 attention only (no bias_kv)", "model")
        w_qkv = torch.cat((attn.q_proj.weight, attn.k_proj.weight, attn.v_proj.weight))
        b_qkv = torch.cat((attn.q_proj.bias, attn.k_proj.bias, attn.v_proj.bias)) \
            if attn.q_proj.bias is not None else None
        norm1 = layer.self_attn_layer_norm
        q, k, v = pre(x, norm1.weight, norm1.bias, _eps(norm1), w_qkv, b_qkv, cos, sin,
                      attn.num_heads)
        backend = backend or resolve_attention(attention, q)
        o = packed_attention(q, k, v, packed, backend, attn.scaling)
        norm2 = layer.final_layer_norm
        x = post(x, o, attn.out_proj.weight, attn.out_proj.bias, norm2.weight, norm2.bias,
                 _eps(norm2), layer.fc1.weight, layer.fc1.bias, layer.fc2.weight, layer.fc2.bias)
        if number in repr_layers:
            layers[number] = x
    final = model.emb_layer_norm_after
    x = F.layer_norm(x, (x.shape[-1],), final.weight, final.bias, _eps(final))
    if len(model.layers) in repr_layers:
        layers[len(model.layers)] = x  # fair-esm reports the last layer after the final norm
    return PackedStates(last=x, layers=layers)


def _no_autograd() -> bool:
    """True when no autograd graph is being recorded (the fused epilogue has no backward here)."""
    return not torch.is_grad_enabled() or torch.is_inference_mode_enabled()


def mean_pool(states: torch.Tensor, packed: PackedTokens) -> torch.Tensor:
    """(N, D) float32 mean of each sequence's residue states (BOS/EOS excluded), by segment sums."""
    weighted = states.float() * packed.residue_weight[:, None]
    sums = weighted.new_zeros(len(packed.lengths), states.shape[-1])  # filler row, if any, dropped
    sums.index_add_(0, packed.seq_index, weighted)
    return sums[: packed.n_sequences] / packed.n_residues.clamp_min(1)[:, None]


def packed_to_padded(states: torch.Tensor, packed: PackedTokens) -> tuple[torch.Tensor, torch.Tensor]:
    """Residue states as a padded (N, L, D) block and its (N, L) bool mask (BOS/EOS dropped)."""
    n, longest, dim = packed.n_sequences, packed.max_residues, states.shape[-1]
    block = states.new_zeros(n * longest + 1, dim)  # last row swallows BOS/EOS/filler
    block = block.index_copy(0, packed.residue_slot, states)
    mask = torch.arange(longest, device=states.device)[None, :] < packed.n_residues[:, None]
    return block[:-1].view(n, longest, dim), mask


@dataclass(frozen=True)
class PackedOptions:
    """How the padding-free forward runs; the defaults suit the device it runs on.

    attention: "auto" (varlen flash on CUDA bf16/fp16, else padded on CUDA, per_sequence on CPU) or one
    of ATTENTION_BACKENDS; fused_gelu: GELU in fc1's GEMM epilogue (see `_post_attention_fused`);
    compile: torch.compile the dense part of each layer; cuda_graphs: compile in "reduce-overhead" mode
    with the token count padded to `pad_multiple`; prefetch: batches tokenised ahead in a background thread.
    """

    attention: str = "auto"
    fused_gelu: bool = True
    compile: bool = False
    cuda_graphs: bool = False
    pad_multiple: int = 1024
    prefetch: int = 2


@functools.lru_cache(maxsize=2)
def _compiled_layers(mode: str | None) -> tuple[Any, Any]:
    """One compiled (pre, post) pair per mode, shared by every call so each graph is traced once."""
    return (torch.compile(_pre_attention, dynamic=True, mode=mode),
            torch.compile(_post_attention, dynamic=True, mode=mode))


def packed_batches(model: nn.Module, tokenizer: ESMTokenizer, sequences: list[str], token_budget: int,
                   options: PackedOptions | None = None, residue_offsets: np.ndarray | None = None,
                   ) -> Iterator[tuple[PackedTokens, torch.Tensor]]:
    """Yield (packed batch on the model's device, (T, D) last-layer states) per token-budget batch.

    Sequences are sorted by length into batches of at most `token_budget` tokens; the next batch is
    tokenised (and pinned, on CUDA) in a background thread; `packed.order` holds each row's position
    in `sequences`. Runs in the parameters' dtype; nothing is copied back to the host.
    `residue_offsets` (N+1 rows, last = discard row) fills `packed.residue_dest` for per-residue output.
    """
    opts = options or PackedOptions()
    device = next(model.parameters()).device
    if opts.cuda_graphs and device.type != "cuda":
        raise OneProtError("CUDA graphs need a CUDA device", "cuda_graphs")
    compiled = _compiled_layers("reduce-overhead" if opts.cuda_graphs else None) \
        if opts.compile or opts.cuda_graphs else None
    for i, seq in enumerate(sequences):
        if not isinstance(seq, str) or not seq:
            raise OneProtError("expected a non-empty string", f"sequences[{i}]")
    extra = int(tokenizer.prepend_bos) + int(tokenizer.append_eos)
    lengths = [tokenizer.n_residues(s, f"sequences[{i}]") + extra for i, s in enumerate(sequences)]
    pin = device.type == "cuda"

    def prepare(indices: np.ndarray) -> PackedTokens:  # runs in the background thread
        arrays = [tokenizer.encode(sequences[i], f"sequences[{i}]") for i in indices]
        offsets = residue_offsets[indices] if residue_offsets is not None else None
        return pack_token_arrays(arrays, indices, prepend_bos=tokenizer.prepend_bos,
                                 append_eos=tokenizer.append_eos,
                                 padding_idx=tokenizer.alphabet.padding_idx,
                                 pad_multiple=opts.pad_multiple if opts.cuda_graphs else 1, pin=pin,
                                 residue_offsets=offsets,
                                 discard_row=int(residue_offsets[-1]) if offsets is not None else -1)

    batches = token_budget_batches(lengths, token_budget)
    for host in background_map(prepare, batches, depth=opts.prefetch):
        packed = host.to(device)
        if opts.cuda_graphs:  # one graph step per batch: earlier batches' buffers may be reused
            torch.compiler.cudagraph_mark_step_begin()
        yield packed, packed_forward(model, packed, attention=opts.attention, compiled=compiled,
                                     fused_gelu=opts.fused_gelu).last


__all__ = [
    "ATTENTION_BACKENDS", "ESMTokenizer", "PackedOptions", "PackedStates", "pack_sequences",
    "packed_batches", "packed_forward", "packed_attention", "mean_pool", "packed_to_padded",
    "rotary_tables", "resolve_attention",
]
