"""Host-side batching for token models: token-budget batches, the packed (padding-free) batch
layout, and a background producer that prepares the next batch while the device works.

Sequences are sorted by length (longest first, so an out-of-memory error shows up on the first batch,
not after an hour) and cut greedily into batches whose token count stays within a budget. Two ways of
counting a batch's tokens are offered because the engines differ: a packed engine pays for the sum of
lengths, a padded one for `n_sequences x longest`. A packed batch lays its sequences end to end and
describes them with `cu_seqlens` (flash-attention's convention) plus per-token indices, all computed
on the host so the device never has to report a length back.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

import numpy as np
import torch

from engine.errors import OneProtError

T = TypeVar("T")
U = TypeVar("U")


DEFAULT_BATCH_TOKENS = 16_384  # tokens per embedding batch (residues + BOS/EOS; text: word pieces)


def item_cost(item: Any, modality: str) -> int:
    """Tokens an item costs in a batch (residues + BOS/EOS; text: ~4 characters per word piece)."""
    if hasattr(item, "sequence"):
        return len(item.sequence) + 2
    if modality == "text":
        return len(item) // 4 + 2
    return len(item) + 2


def token_budget_batches(
    lengths: Sequence[int],
    token_budget: int,
    *,
    padded: bool = False,
    max_sequences: int | None = None,
) -> list[np.ndarray]:
    """Indices into `lengths`, grouped into length-sorted batches of at most `token_budget` tokens.

    Every index appears in exactly one batch. A sequence longer than the budget gets a batch of its
    own (it cannot be split without changing its result). `padded=True` counts a batch as
    `len(batch) * max(length)` (what a padded forward pass costs), otherwise as `sum(length)`.
    """
    if token_budget < 1:
        raise OneProtError(f"token budget must be >= 1, got {token_budget}", "token_budget")
    if max_sequences is not None and max_sequences < 1:
        raise OneProtError(f"max_sequences must be >= 1, got {max_sequences}", "max_sequences")
    lengths_arr = np.asarray(lengths, dtype=np.int64).reshape(-1)
    if lengths_arr.size == 0:
        return []
    # stable sort on -length keeps equal-length sequences in input order: reproducible batches
    order = np.argsort(-lengths_arr, kind="stable")
    batches: list[np.ndarray] = []
    start = 0
    total = 0
    for pos, idx in enumerate(order):
        length = int(lengths_arr[idx])
        count = pos - start + 1
        # longest-first order: the first member of a batch is its longest
        cost = count * int(lengths_arr[order[start]]) if padded else total + length
        full = max_sequences is not None and count > max_sequences
        if pos > start and (cost > token_budget or full):
            batches.append(order[start:pos])
            start, total = pos, 0
        total += length
    batches.append(order[start:])
    return batches


def background_map(fn: Callable[[T], U], items: Iterable[T], depth: int = 2) -> Iterator[U]:
    """Yield `fn(item)` for each item, computed in a background thread up to `depth` items ahead.

    Used to tokenise and pin the next batch on the host while the accelerator runs the current one.
    An exception in the producer is re-raised in the consumer at the position it happened.
    """
    if depth < 1:
        raise OneProtError(f"prefetch depth must be >= 1, got {depth}", "depth")
    results: queue.Queue = queue.Queue(maxsize=depth)
    stop = threading.Event()
    done = object()

    def produce() -> None:
        try:
            for item in items:
                if stop.is_set():
                    return
                results.put((True, fn(item)))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer thread
            results.put((False, error))
            return
        results.put((True, done))

    worker = threading.Thread(target=produce, name="oneprot-prefetch", daemon=True)
    worker.start()
    try:
        while True:
            ok, value = results.get()
            if not ok:
                raise value
            if value is done:
                return
            yield value
    finally:
        # consumer stopped early (error or break): let the producer finish its current put and exit
        stop.set()
        while worker.is_alive():
            try:
                results.get(timeout=0.05)
            except queue.Empty:
                pass


_TENSOR_FIELDS = ("tokens", "positions", "seq_index", "residue_weight", "residue_slot", "cu_seqlens",
                  "seg_lengths", "n_residues", "order", "residue_dest")


@dataclass
class PackedTokens:
    """A batch of sequences laid end to end. Host-side lists hold what kernels need without a sync."""

    tokens: torch.Tensor  # (T,) int64
    positions: torch.Tensor  # (T,) int64, position inside its own sequence (BOS = 0)
    seq_index: torch.Tensor  # (T,) int64, segment of each token (sequences 0..N-1, filler = N)
    residue_weight: torch.Tensor  # (T,) float32, 1 on residues, 0 on BOS/EOS/filler
    residue_slot: torch.Tensor  # (T,) int64, row in a (N * max_residues + 1) buffer; last row = discard
    cu_seqlens: torch.Tensor  # (S+1,) int32 starts of the S segments (N sequences + optional filler)
    seg_lengths: torch.Tensor  # (S,) int64 tokens per segment
    n_residues: torch.Tensor  # (N,) float32 residues per sequence
    order: torch.Tensor  # (N,) int64 index of each sequence in the caller's list
    residue_dest: torch.Tensor | None = None  # (T,) int64 row in a caller's buffer (embed_residues)
    lengths: list[int] = field(default_factory=list)  # tokens per segment (host copy of cu_seqlens diff)
    n_sequences: int = 0  # N (a filler segment, if any, is not counted)
    max_residues: int = 0

    @property
    def max_len(self) -> int:
        """Longest segment in tokens (host int)."""
        return max(self.lengths) if self.lengths else 0

    def to(self, device: torch.device | str, non_blocking: bool = True) -> PackedTokens:
        """The same batch on `device`; copies from pinned memory do not block the host."""
        moved = {name: None if getattr(self, name) is None
                 else getattr(self, name).to(device, non_blocking=non_blocking)
                 for name in _TENSOR_FIELDS}
        return PackedTokens(**moved, lengths=self.lengths, n_sequences=self.n_sequences,
                            max_residues=self.max_residues)


def pack_token_arrays(
    arrays: list[np.ndarray],
    order: np.ndarray | None = None,
    *,
    prepend_bos: bool = True,
    append_eos: bool = True,
    padding_idx: int = 1,
    pad_multiple: int = 1,
    pin: bool = False,
    residue_offsets: np.ndarray | None = None,
    discard_row: int = -1,
) -> PackedTokens:
    """Concatenate per-sequence token arrays (BOS/EOS included) into a `PackedTokens` batch.

    `residue_offsets[j]` (optional) is where sequence j's first residue goes in a caller's buffer;
    `residue_dest` then maps each token there, BOS/EOS/filler to `discard_row`.
    """
    n = len(arrays)
    lengths = [int(a.shape[0]) for a in arrays]
    total = sum(lengths)
    filler = (-total) % pad_multiple if pad_multiple > 1 else 0
    seg_lengths = lengths + ([filler] if filler else [])
    tokens = np.concatenate(arrays + [np.full(filler, padding_idx, dtype=np.int64)]) if n else \
        np.zeros(0, dtype=np.int64)
    lens = np.asarray(seg_lengths, dtype=np.int64)
    starts = np.concatenate([[0], np.cumsum(lens)])
    seg_index = np.repeat(np.arange(len(seg_lengths), dtype=np.int64), lens)
    positions = np.arange(tokens.shape[0], dtype=np.int64) - starts[seg_index]
    first = 1 if prepend_bos else 0
    seq_len = lens[seg_index]
    is_residue = (positions >= first) & (positions < seq_len - (1 if append_eos else 0))
    is_residue &= seg_index < n  # the filler segment is never a residue
    n_res = np.asarray(lengths, dtype=np.int64) - first - (1 if append_eos else 0)
    max_res = int(n_res.max()) if n else 0
    discard = n * max_res
    slot = np.where(is_residue, seg_index * max_res + positions - first, discard)
    if order is None:
        order = np.arange(n, dtype=np.int64)
    dest = None
    if residue_offsets is not None:
        base = np.append(np.asarray(residue_offsets, dtype=np.int64), 0)[seg_index]
        dest = torch.from_numpy(np.where(is_residue, base + positions - first, discard_row))
    packed = PackedTokens(
        tokens=torch.from_numpy(tokens),
        positions=torch.from_numpy(positions),
        seq_index=torch.from_numpy(seg_index),
        residue_weight=torch.from_numpy(is_residue.astype(np.float32)),
        residue_slot=torch.from_numpy(slot.astype(np.int64)),
        cu_seqlens=torch.from_numpy(starts.astype(np.int32)),
        seg_lengths=torch.from_numpy(lens),
        n_residues=torch.from_numpy(n_res.astype(np.float32)),
        order=torch.from_numpy(np.asarray(order, dtype=np.int64)),
        residue_dest=dest,
        lengths=seg_lengths,
        n_sequences=n,
        max_residues=max_res,
    )
    if pin:  # page-locked so the copy to the GPU can overlap with compute
        for name in _TENSOR_FIELDS:
            if getattr(packed, name) is not None:
                setattr(packed, name, getattr(packed, name).pin_memory())
    return packed
