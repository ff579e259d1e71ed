"""Cross-modal retrieval metrics: R@k, median rank, MRR, with explicit rules for ties and duplicates.

Setting: for a pair "a->b", query i is protein i's modality-a vector; the candidates are the
modality-b vectors of every protein in the evaluated set that has b.

Duplicates: a candidate counts as a correct hit when its content key equals the key of the query
protein's own modality-b item (keys are content hashes: the same text, sequence, 3Di string or
coordinates give the same key). Two proteins with identical text therefore both answer a query
whose true text is that text.

Ties: rank = 1 + the number of INCORRECT candidates whose score is >= the best correct score.
Ties are resolved against the model, so a collapsed model that scores everything equally gets the
worst rank, not the best.
"""

from __future__ import annotations

from math import lgamma

import numpy as np

from engine.errors import OneProtError

KS = (1, 10, 100)
_CHUNK = 1024  # query rows per block, so Q x C score matrices stay small


def ranks(
    queries: np.ndarray, candidates: np.ndarray, query_keys: list, candidate_keys: list
) -> np.ndarray:
    """Rank (1-based, ties pessimistic) of the best correct candidate for every query (scores: dot products)."""
    q = np.asarray(queries, dtype=np.float32)
    c = np.asarray(candidates, dtype=np.float32)
    if len(q) != len(query_keys) or len(c) != len(candidate_keys):
        raise OneProtError("vectors and content keys differ in length", "retrieval")
    if q.shape[1] != c.shape[1]:
        raise OneProtError(f"query dim {q.shape[1]} != candidate dim {c.shape[1]}", "retrieval")
    return _ranks(lambda s, e: q[s:e] @ c.T, len(q), query_keys, candidate_keys)


def score_ranks(scores: np.ndarray, query_keys: list, candidate_keys: list) -> np.ndarray:
    """As `ranks`, from a given (n_queries, n_candidates) score matrix (higher = more similar)."""
    m = np.asarray(scores, dtype=np.float32)
    if m.shape != (len(query_keys), len(candidate_keys)):
        raise OneProtError(f"score matrix {m.shape} != ({len(query_keys)} queries, {len(candidate_keys)} candidates)",
                           "retrieval")
    return _ranks(lambda s, e: m[s:e], len(m), query_keys, candidate_keys)


def _ranks(block, n_queries: int, query_keys: list, candidate_keys: list) -> np.ndarray:
    """Ranks from `block(start, end)`, the scores of query rows start:end against every candidate."""
    codes = {k: i for i, k in enumerate(dict.fromkeys(list(candidate_keys)))}
    c_code = np.array([codes[k] for k in candidate_keys], dtype=np.int64)
    q_code = np.array([codes.get(k, -1) for k in query_keys], dtype=np.int64)
    if (q_code < 0).any():
        bad = int(np.flatnonzero(q_code < 0)[0])
        raise OneProtError(f"query {bad}'s true target is not among the candidates", "retrieval")
    out = np.empty(n_queries, dtype=np.int64)
    for s in range(0, n_queries, _CHUNK):
        scores = block(s, s + _CHUNK)  # (Qb, C)
        correct = c_code[None, :] == q_code[s : s + _CHUNK, None]
        best = np.where(correct, scores, -np.inf).max(axis=1)
        out[s : s + _CHUNK] = 1 + ((scores >= best[:, None]) & ~correct).sum(axis=1)
    return out


def summarise(rank: np.ndarray, n_candidates: int, ks: tuple[int, ...] = KS) -> dict:
    """R@k (fractions), median rank, MRR, counts from per-query ranks."""
    rank = np.asarray(rank)
    out = {f"R@{k}": float((rank <= k).mean()) for k in ks}
    out["median_rank"] = float(np.median(rank))
    out["MRR"] = float((1.0 / rank).mean())
    out["n_queries"] = int(len(rank))
    out["n_candidates"] = int(n_candidates)
    return out


def chance(query_keys: list, candidate_keys: list, ks: tuple[int, ...] = KS) -> dict:
    """Expected R@k of a uniformly random ranking, given how many candidates are correct per query."""
    counts: dict = {}
    for k in candidate_keys:
        counts[k] = counts.get(k, 0) + 1
    n = len(candidate_keys)
    out = {}
    for k in ks:
        vals = []
        for qk in query_keys:
            m = counts.get(qk, 0)
            kk = min(k, n)
            # P(no correct in a random top-k) = C(n-m, k) / C(n, k)
            miss = 0.0 if n - m < kk else np.exp(_lcomb(n - m, kk) - _lcomb(n, kk))
            vals.append(1.0 - miss)
        out[f"R@{k}"] = float(np.mean(vals)) if vals else 0.0
    return out


def _lcomb(n: int, k: int) -> float:
    return lgamma(n + 1) - lgamma(k + 1) - lgamma(n - k + 1)


def evaluate_pair(
    queries: np.ndarray, candidates: np.ndarray, query_keys: list, candidate_keys: list, ks: tuple[int, ...] = KS
) -> dict:
    """All metrics for one ordered pair, plus the analytic chance level."""
    return _metrics(ranks(queries, candidates, query_keys, candidate_keys), query_keys, candidate_keys, ks)


def evaluate_scores(scores: np.ndarray, query_keys: list, candidate_keys: list, ks: tuple[int, ...] = KS) -> dict:
    """As `evaluate_pair`, from a given (n_queries, n_candidates) score matrix (e.g. TM-scores)."""
    return _metrics(score_ranks(scores, query_keys, candidate_keys), query_keys, candidate_keys, ks)


def _metrics(rank: np.ndarray, query_keys: list, candidate_keys: list, ks: tuple[int, ...]) -> dict:
    out = summarise(rank, len(candidate_keys), ks)
    out["chance"] = chance(query_keys, candidate_keys, ks)
    return out
