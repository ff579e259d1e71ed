"""Token-budget batching and a background producer that prepares the next batch while the device works.

Sequences are sorted by length (longest first, so an out-of-memory error shows up on the first batch,
not after an hour) and cut greedily into batches whose token count stays within a budget. Two ways of
counting a batch's tokens are offered because the engines differ: a packed engine pays for the sum of
lengths, a padded one for `n_sequences x longest`.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterable, Iterator, Sequence
from typing import TypeVar

import numpy as np

from engine.errors import OneProtError

T = TypeVar("T")
U = TypeVar("U")


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
