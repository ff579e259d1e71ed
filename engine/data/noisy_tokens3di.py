"""Training augmentation for the 3Di modality: tokens recomputed from slightly perturbed coordinates.

Foldseek's 3Di letters are a discretisation of local backbone geometry, and they are brittle:
Gaussian noise of 0.1 Å on every backbone atom (below the coordinate error of a good crystal
structure) changes about a fifth of the letters of a demo chain, 0.2 Å over a third. A 3Di
encoder trained only on the one stored string per chain never sees that a letter could as well
have been its structural neighbour. Training on strings recomputed from jittered coordinates shows
it which letters are interchangeable, from real geometry rather than random masking. Measured on the
demo (4 seeds, benchmarks/results/seed_sweep_3di_2026-11-26.md) it did not beat 15% masking, so the
demo preset leaves it off (TrainConfig.structure_tokens_noise = 0).

    noisy = NoisyTokens3Di(store, sigma=0.1)
    strings = noisy(ids, rng)   # one freshly perturbed 3Di string per id (stored one if no coordinates)

Deterministic for a given numpy Generator, so a trainer seeding it from (seed, step, rank)
resumes exactly. The noisy strings are computed without Cβ (mini3di rebuilds a virtual Cβ from
N, Cα and C, as Foldseek does for glycine); the store keeps no Cβ coordinates.
"""

from __future__ import annotations

import numpy as np

from engine.data.tokens3di import structure_tokens
from engine.errors import OneProtError


class NoisyTokens3Di:
    """3Di strings of stored chains after N(0, sigma²) noise (Å) on each backbone coordinate.

    Args:
        store: a ProteinStore (its `coords` and `row` give backbone and stored tokens).
        sigma: noise standard deviation in Å; must be in (0, 2].
        prob: fraction of the items that get a perturbed string (the rest keep the stored one).
    """

    def __init__(self, store, sigma: float, prob: float = 1.0):
        if not 0.0 < sigma <= 2.0:
            raise OneProtError(f"3Di noise sigma must be in (0, 2] Å, got {sigma}", "structure_tokens_noise")
        if not 0.0 < prob <= 1.0:
            raise OneProtError(f"3Di noise fraction must be in (0, 1], got {prob}", "structure_tokens_noise_prob")
        self.store = store
        self.sigma = float(sigma)
        self.prob = float(prob)

    def one(self, protein_id: str, rng: np.random.Generator) -> str:
        """A perturbed 3Di string for one protein (its stored string when it has no coordinates)."""
        stored = self.store.row(protein_id)["structure_tokens"] or ""
        coords = self.store.coords(protein_id)
        if coords is None or len(coords) != len(stored):
            return stored
        noise = rng.normal(0.0, self.sigma, size=coords.shape).astype(np.float32)
        return structure_tokens(coords + noise)

    def __call__(self, ids: list[str], rng: np.random.Generator) -> list[str]:
        return [self.one(pid, rng) if self.prob >= 1.0 or rng.random() < self.prob
                else self.store.row(pid)["structure_tokens"] or "" for pid in ids]
