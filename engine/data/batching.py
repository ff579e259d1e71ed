"""Training batches: which (sequence, modality) pair type each step trains, on which proteins.

OneProt never needs a protein with all modalities: each step picks ONE modality (round-robin, or by
weight) and a batch of train-split proteins that have it; the batch is scored against their
sequences. The sampler is a pure function of (seed, its small state), so a resumed run sees the same
batches as an uninterrupted one, and every rank of a DDP job computes the same global batch and
keeps only its own contiguous shard.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from engine.errors import OneProtError


@dataclass
class _Cursor:
    epoch: int = 0
    position: int = 0


@dataclass
class PairSampler:
    """Deterministic stream of (modality, global batch of protein ids).

    Args:
        ids_by_modality: for each non-anchor modality, the train-split ids that have it.
        batch_size: global batch (over all ranks); a modality with fewer proteins uses them all.
        seed: shuffling seed; each (modality, epoch) gets its own permutation.
        weights: modality -> sampling weight; None means strict round-robin.
        batch_sizes: modality -> its own global batch, overriding batch_size (upstream halves 3Di's).
    """

    ids_by_modality: dict[str, list[str]]
    batch_size: int
    seed: int = 0
    weights: dict[str, float] | None = None
    batch_sizes: dict[str, int] | None = None
    step: int = 0
    cursors: dict[str, _Cursor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.ids_by_modality = {m: list(ids) for m, ids in self.ids_by_modality.items() if len(ids) >= 2}
        if not self.ids_by_modality:
            raise OneProtError("no modality has at least 2 training proteins paired with sequence", "train split")
        self.modalities = list(self.ids_by_modality)
        if self.weights is not None:
            from engine.modality import ANCHOR, Modality

            # A weight for a modality this store lacks is ignored (a preset serves many stores; the
            # trainer reports such modalities as skipped); a name that is no modality is an error.
            known = {m.value for m in Modality} - {ANCHOR.value}
            unknown = set(self.weights) - known
            if unknown:
                raise OneProtError(f"unknown modalities {sorted(unknown)}; valid: {sorted(known)}", "modality_weights")
            w = np.array([float(self.weights.get(m, 0.0)) for m in self.modalities])
            if w.sum() <= 0 or (w < 0).any():
                raise OneProtError("modality weights must be >= 0 with a positive sum", "modality_weights")
            self._p = w / w.sum()
        for m in self.modalities:
            self.cursors.setdefault(m, _Cursor())

    def _permutation(self, m: str, epoch: int) -> np.ndarray:
        index = self.modalities.index(m)
        return np.random.default_rng([self.seed, index, epoch]).permutation(len(self.ids_by_modality[m]))

    def choose_modality(self, step: int) -> str:
        """The modality trained at `step` (a function of the step alone)."""
        if self.weights is None:
            return self.modalities[step % len(self.modalities)]
        return self.modalities[int(np.random.default_rng([self.seed, 10_007, step]).choice(len(self.modalities), p=self._p))]

    def next(self) -> tuple[str, list[str]]:
        """Advance one step: (modality, global batch ids)."""
        m = self.choose_modality(self.step)
        ids = self.ids_by_modality[m]
        size = min((self.batch_sizes or {}).get(m, self.batch_size), len(ids))
        cur = self.cursors[m]
        if cur.position + size > len(ids):  # drop the ragged tail so every batch is full-size
            cur.epoch, cur.position = cur.epoch + 1, 0
        perm = self._permutation(m, cur.epoch)
        batch = [ids[i] for i in perm[cur.position : cur.position + size]]
        cur.position += size
        self.step += 1
        return m, batch

    def state_dict(self) -> dict:
        """Position in the stream (JSON-able)."""
        return {"step": self.step, "cursors": {m: [c.epoch, c.position] for m, c in self.cursors.items()}}

    def load_state_dict(self, state: dict) -> None:
        """Restore a position saved by state_dict."""
        self.step = int(state["step"])
        for m, (epoch, position) in state["cursors"].items():
            if m in self.cursors:
                self.cursors[m] = _Cursor(int(epoch), int(position))


def shard(batch: list, rank: int, world: int) -> list:
    """This rank's contiguous slice of a global batch (the global batch is trimmed to a multiple of world)."""
    per = len(batch) // world
    if per == 0:
        raise OneProtError(f"global batch of {len(batch)} cannot be split over {world} ranks", "batch_size")
    return batch[rank * per : (rank + 1) * per]


def token_budget_batches(lengths: list[int], max_tokens: int, max_items: int = 1024) -> list[list[int]]:
    """Indices grouped so each batch's padded size (items x longest) stays under `max_tokens`.

    Items are sorted by length first, so padding is small; an item longer than the budget gets a
    batch of its own.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches, current, longest = [], [], 0
    for i in order:
        new_longest = max(longest, lengths[i])
        if current and (new_longest * (len(current) + 1) > max_tokens or len(current) >= max_items):
            batches.append(current)
            current, new_longest = [], lengths[i]
        current.append(i)
        longest = new_longest
    if current:
        batches.append(current)
    return batches
