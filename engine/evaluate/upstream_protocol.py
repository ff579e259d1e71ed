"""Upstream OneProt's retrieval protocol (`oneprot evaluate --protocol oneprot`), beside ours.

As upstream's evaluation computes it (see /work/shared/UPSTREAM.md): for every ordered pair "a->b",
a seeded sample of at most `n_pairs` (1,000) split proteins having both a and b; query i's a-vector
scores every sampled b-vector by cosine; the candidates are sorted by score (argsort, ties broken by
position: arbitrary, not against the model) and the 0-based position of protein i's own b-vector is
its rank. R@k = share of ranks < k for k in 1, 10, 100, 500; median rank = floor(median of the 0-based
ranks) + 1. No duplicate rule: an identical text or sequence of another protein counts as a miss.
Ours (the default) differs: every split protein with both sides, ties against the model, duplicates
counted as hits, analytic chance (engine.evaluate.retrieval).
"""

from __future__ import annotations

import math

import numpy as np

KS = (1, 10, 100, 500)
N_PAIRS = 1000
RULES = {
    "protocol": "upstream OneProt: a seeded sample of at most 1,000 split proteins per ordered pair, cosine scores, "
                "0-based argsort rank of the own partner (ties broken by position), R@1/10/100/500, median rank = "
                "floor(median of 0-based ranks) + 1; no duplicate rule; chance R@k = min(k, n) / n",
}


def upstream_ranks(queries: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """0-based rank of candidate i for query i after sorting by cosine, descending (stable argsort)."""
    q = queries / np.maximum(np.linalg.norm(queries, axis=1, keepdims=True), 1e-12)
    c = candidates / np.maximum(np.linalg.norm(candidates, axis=1, keepdims=True), 1e-12)
    out = np.empty(len(q), dtype=np.int64)
    for s in range(0, len(q), 1024):
        scores = q[s : s + 1024] @ c.T
        order = np.argsort(-scores, axis=1, kind="stable")
        rows = np.arange(s, s + len(scores))
        out[s : s + len(scores)] = np.argmax(order == rows[:, None], axis=1)
    return out


def upstream_metrics(rank0: np.ndarray, ks: tuple[int, ...] = KS) -> dict:
    """R@k and upstream's median rank from 0-based ranks."""
    rank0 = np.asarray(rank0)
    n = len(rank0)
    out = {f"R@{k}": float((rank0 < k).mean()) for k in ks}
    out["median_rank"] = int(math.floor(float(np.median(rank0)))) + 1
    out["n_pairs"] = int(n)
    out["chance"] = {f"R@{k}": min(k, n) / n for k in ks}
    return out


def sample_rows(a_ids: list[str], b_ids: list[str], n_pairs: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Row indices into a and b of a seeded sample of at most n_pairs proteins that have both."""
    pos_b = {pid: j for j, pid in enumerate(b_ids)}
    both = [(i, pos_b[pid]) for i, pid in enumerate(a_ids) if pid in pos_b]
    if len(both) > n_pairs:
        pick = np.sort(np.random.default_rng(seed).choice(len(both), size=n_pairs, replace=False))
        both = [both[p] for p in pick]
    ia = np.array([i for i, _ in both], dtype=np.int64)
    ib = np.array([j for _, j in both], dtype=np.int64)
    return ia, ib


def evaluate_upstream(vectors: dict[str, tuple[list[str], np.ndarray]], n_pairs: int = N_PAIRS, seed: int = 0,
                      kind=lambda a, b: "") -> dict:
    """{pair: metrics} for every ordered pair; vectors: modality -> (ids, (N, D) vectors)."""
    out = {}
    for a, (a_ids, xa) in vectors.items():
        for b, (b_ids, xb) in vectors.items():
            if a == b:
                continue
            ia, ib = sample_rows(a_ids, b_ids, n_pairs, seed)
            if len(ia) < 2:
                continue
            out[f"{a}->{b}"] = {**upstream_metrics(upstream_ranks(xa[ia], xb[ib])), "kind": kind(a, b)}
    return out
