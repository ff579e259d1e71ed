"""Classical structural baseline for pocket <-> structure retrieval: TM-align on CA atoms (tmtools).

Both sides carry 3D coordinates: a pocket is a set of residues cut from a chain (its `focus`), a
structure is a whole chain. The score of a (pocket, chain) pair is the TM-score of TM-align's
structural alignment (residue order kept, amino-acid letters ignored) of the pocket's CA atoms
onto the chain's CA atoms, normalised by the POCKET's length (the number of pocket residues that
have CA coordinates): the pocket is the shorter, query-like side, so 1.0 means every pocket residue
superposes onto some chain residue, whatever the rest of the chain does. The same score serves
both directions (pocket->structure and structure->pocket). Residues whose CA coordinates are
missing (NaN) are dropped before aligning; a side left with fewer than 3 such residues scores 0.

Since a pocket is cut from its own chain, its true chain contains it exactly and a perfect aligner
would score it 1.0: this baseline says how far a geometric lookup gets on pocket <-> structure.
TM-align keeps residue order and seeds its search from gapless and secondary-structure alignments,
so a short pocket (< ~10 residues) spread over the chain is sometimes not superposed onto its own
chain at all (demo test split: 24 of 92 pockets, 4-31 residues, score their own chain no higher
than some other chain).

Cost: one TM-align per (pocket, chain) pair, ~3 ms for the demo's pockets against ~250-residue
chains (92 x 92 pairs in ~25 s on 2 busy CPU cores) and up to ~20 ms for larger pockets, so it grows
as N^2; `run.evaluate` caps N (`tmscore_max`, default MAX_PROTEINS).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

NAME = "TM-score (tmtools TM-align on CA atoms, normalised by the pocket)"
MIN_RESIDUES = 3  # TM-align needs a few points to superpose
MAX_PROTEINS = 100  # default cap on proteins per pocket<->structure pair (N^2 alignments)


def ca_trace(item: Any) -> tuple[np.ndarray, str]:
    """(K, 3) float64 CA coordinates and their K letters: a pocket's focus residues, else the whole chain; NaN dropped."""
    coords = np.asarray(item.coords, dtype=np.float64)
    ca = coords[:, 1] if coords.ndim == 3 else coords  # (L, 4, 3) backbone -> CA; (L, 3) already CA
    idx = np.arange(len(ca)) if getattr(item, "focus", None) is None else np.asarray(item.focus, dtype=np.int64)
    idx = idx[np.isfinite(ca[idx]).all(axis=1)]
    return np.ascontiguousarray(ca[idx]), "".join(item.sequence[int(i)] for i in idx)


@dataclass
class StructureAlignment:
    """TM-align of a mobile CA trace onto a target one: scores, and the fit as x @ r.T + t."""

    tm_mobile: float  # TM-score normalised by the mobile trace's length
    tm_target: float  # ... by the target's (the query's, when a hit is fitted onto its query)
    rmsd: float  # over the aligned pairs
    aligned: int  # residue pairs in TM-align's alignment
    r: np.ndarray  # (3, 3) rotation
    t: np.ndarray  # (3,) translation


def align_structures(mobile: np.ndarray, mobile_seq: str, target: np.ndarray, target_seq: str) -> StructureAlignment | None:
    """TM-align (tmtools) of two finite (K, 3) CA traces: residue order kept, letters ignored for the
    superposition; None when either has fewer than MIN_RESIDUES residues. The one place tm_align is called."""
    if len(mobile) < MIN_RESIDUES or len(target) < MIN_RESIDUES:
        return None
    from tmtools import tm_align  # lazy: only what aligns structures needs tmtools

    res = tm_align(np.ascontiguousarray(mobile, dtype=np.float64), np.ascontiguousarray(target, dtype=np.float64),
                   mobile_seq, target_seq)
    aligned = sum(a != "-" and b != "-" for a, b in zip(res.seqxA, res.seqyA))
    return StructureAlignment(float(res.tm_norm_chain1), float(res.tm_norm_chain2), float(res.rmsd), int(aligned),
                              np.asarray(res.u, dtype=np.float64), np.asarray(res.t, dtype=np.float64))


def fit_chain_on(mobile: Any, target: Any) -> StructureAlignment | None:
    """TM-align of one whole chain onto another (anything with .sequence and (L, 4, 3) .coords; a pocket's focus
    is ignored): the structural check beside a hit's E-value, its TM-score normalised by the target (the query)."""
    from engine.modality import StructureInput

    return align_structures(*ca_trace(StructureInput(mobile.sequence, mobile.coords)),
                            *ca_trace(StructureInput(target.sequence, target.coords)))


def fit_hits_on_query(query: Any, store, ids: list[str]) -> dict[str, StructureAlignment]:
    """fit_chain_on for each stored protein in `ids` that has a structure, onto the query's backbone."""
    from engine.modality import StructureInput

    out = {}
    for pid in ids:
        coords = store.coords(pid) if pid in store else None
        if coords is not None:
            fit = fit_chain_on(StructureInput(store.row(pid)["sequence"], coords), query)
            if fit is not None:
                out[pid] = fit
    return out


class TMScorer:
    """TM-scores of pockets against chains, each (pocket, chain) pair aligned at most once.

    `matrix(pocket_rows, chain_rows)` may be asked for both directions of the pair and for
    overlapping row sets; pairs already aligned are reused.
    """

    def __init__(self, pockets: list[Any], chains: list[Any]):
        self._pockets, self._chains = pockets, chains
        self._traces: dict[tuple[str, int], tuple[np.ndarray, str]] = {}
        self._scores: dict[tuple[int, int], float] = {}

    @property
    def n_aligned(self) -> int:
        """How many (pocket, chain) pairs have been scored so far."""
        return len(self._scores)

    def _trace(self, side: str, i: int) -> tuple[np.ndarray, str]:
        key = (side, i)
        if key not in self._traces:
            self._traces[key] = ca_trace((self._pockets if side == "p" else self._chains)[i])
        return self._traces[key]

    def score(self, p: int, c: int) -> float:
        """TM-score of pocket p against chain c, normalised by the pocket's length."""
        key = (p, c)
        if key not in self._scores:
            fit = align_structures(*self._trace("p", p), *self._trace("c", c))
            self._scores[key] = 0.0 if fit is None else fit.tm_mobile
        return self._scores[key]

    def matrix(self, pocket_rows, chain_rows) -> np.ndarray:
        """(len(pocket_rows), len(chain_rows)) TM-scores; transpose it for structure->pocket."""
        return np.array([[self.score(int(p), int(c)) for c in chain_rows] for p in pocket_rows],
                        dtype=np.float32).reshape(len(pocket_rows), len(chain_rows))


def tm_score_matrix(queries: list[Any], candidates: list[Any], pocket_side: str = "query") -> np.ndarray:
    """(n_queries, n_candidates) TM-scores, normalised by the pocket's length.

    pocket_side: "query" when the queries are pockets and the candidates chains (pocket->structure),
    "candidate" for the reverse (structure->pocket); the matrix is the same up to a transpose.
    """
    if pocket_side == "query":
        return TMScorer(queries, candidates).matrix(range(len(queries)), range(len(candidates)))
    if pocket_side == "candidate":
        return TMScorer(candidates, queries).matrix(range(len(candidates)), range(len(queries))).T
    raise ValueError(f"pocket_side must be 'query' or 'candidate', not {pocket_side!r}")


class SymmetricTM:
    """TM-scores between any structure/pocket items, normalised by the SHORTER side, so score(x, y) = score(y, x).

    items: {side name: list of StructureInput}. Each unordered pair is aligned at most once. Used by the
    relatives metric (structure->structure, pocket->pocket, and both mixed directions share one cache).
    """

    def __init__(self, items: dict[str, list[Any]]):
        self._items = items
        self._traces: dict[tuple[str, int], tuple[np.ndarray, str]] = {}
        self._scores: dict[tuple, float] = {}
        self.seconds = 0.0

    @property
    def n_aligned(self) -> int:
        """How many unordered pairs have been aligned so far."""
        return len(self._scores)

    def _trace(self, side: str, i: int) -> tuple[np.ndarray, str]:
        if (side, i) not in self._traces:
            self._traces[(side, i)] = ca_trace(self._items[side][i])
        return self._traces[(side, i)]

    def score(self, side_a: str, i: int, side_b: str, j: int) -> float:
        """TM-score of item i of side_a against item j of side_b, normalised by the shorter of the two."""
        key = tuple(sorted([(side_a, int(i)), (side_b, int(j))]))
        if key not in self._scores:
            import time

            t = time.perf_counter()
            (x, xs), (y, ys) = self._trace(*key[0]), self._trace(*key[1])
            fit = align_structures(x, xs, y, ys)
            self._scores[key] = 0.0 if fit is None else (fit.tm_mobile if len(x) <= len(y) else fit.tm_target)
            self.seconds += time.perf_counter() - t
        return self._scores[key]

    def matrix(self, side_a: str, rows_a, side_b: str, rows_b) -> np.ndarray:
        """(len(rows_a), len(rows_b)) scores."""
        return np.array([[self.score(side_a, i, side_b, j) for j in rows_b] for i in rows_a],
                        dtype=np.float32).reshape(len(rows_a), len(rows_b))
