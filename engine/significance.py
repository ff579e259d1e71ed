"""How much a hit means: an E-value from an empirical null of unrelated pairs, and a calibrated probability.

A raw cosine says little on its own: in a small aligned space an unrelated protein can score 0.8, and
the scale differs between modality pairs. So, per (query modality, target modality):
  - E-value: -ln(1 - P_null(best unrelated score >= s)), with P_null the distribution of each held-out
    query's best score among unrelated targets (different 50%-identity clusters and not the same family
    label) and an exponential tail beyond its 90th percentile on the axis -ln(1 - score) (an extreme-value
    null, as for BLAST's maximal scores; on that axis because a cosine cannot pass 1): an unrelated query's
    best hit gets E around 1, and E <= 0.05 happens to about 5% of unrelated queries (checked out of fold,
    per pair);
  - probability of a relative: P(same family | score), an isotonic (monotone) map fitted on the top hits
    of family-labelled VALID proteins only, each asked with and without its family in the store (so queries
    with and without relatives weigh equally), on bins of at least MIN_BIN_HITS hits (a free step per hit
    would learn a few families' quirks); reported only for pairs whose map, out of fold on valid, holds
    within +-0.1 in every decile of reported probability it fills, each holding >= MIN_DECILE_HITS hits (a
    decile of fewer cannot be checked, and its values would be shown unchecked) and at least two of them,
    in REPORT_PASSES of REPORT_DEALS deals of clusters into folds (one deal is luck: a decile often holds
    under ten queries' hits), E alone elsewhere. Until 2026-12-01 a valid decile of too few hits was skipped
    rather than blocking: two pairs reported that way (pocket->pocket, pocket->3Di) were off by 0.20-0.26 in
    test deciles of 21-44 hits (on valid, pocket->pocket's 0.7-0.8 decile had held 16 hits, 0.76 reported
    against 0.44 observed, skipped as too few). Test proteins only check the kept map (`oneprot calibrate
    --report`); a test decile of too few hits is said so. Compared on valid out of fold
    (benchmarks/results/significance_models_valid_2026-12-01.md):
    bins of 60 hits pass 5.9 of 24 pairs on average over 10 deals of clusters, bins of 30 1.2; logistic or
    logistic-then-isotonic models over the hit's rank, its gap to the query's best, the query's best, E or
    the target's hubness passed no more pairs, so the map stays one monotone function of the raw score.
A hit is significant when E <= E_SIGNIFICANT. `oneprot calibrate` builds the table beside the embeddings
(significance.json); it is tied to them by model hash and counts, a stale one is ignored.
Scores are raw cosines, not normalised per query: tried here, a per-query background (median/spread of
the query's scores) made an identical LDH sequence (cosine 1.00) insignificant, because one family can be
a quarter of a modality in a small store; and on valid, centring per query or per target found fewer
relatives than the raw cosine (scripts/significance_power_valid.py). The report gives that power beside
the false-positive check ("relatives found").
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from engine.errors import OneProtError

TABLE_FILE = "significance.json"
E_SIGNIFICANT = 0.05
TAIL_QUANTILE = 0.9
GRID = 400  # null quantiles kept in the table
SHORT_QUERY = 20  # residues; shorter sequences get a warning beside their hits
MIN_BIN_HITS = 60  # hits per bin of the probability map (fewer: merged with a neighbour); 30 held on fewer pairs
MIN_DECILE_HITS = 20  # hits a decile needs before its reported-vs-observed gap is judged ("too few" else)
REPORT_DEALS, REPORT_PASSES = 5, 4  # a pair's probability is shown when it passes out of fold in 4 of 5 deals


@dataclass
class Assessment:
    """What one hit's score means: E-value, probability of being a relative, significant or not."""

    evalue: float
    probability: float | None  # None where this modality pair's probability did not pass its check
    significant: bool


# ---- the table --------------------------------------------------------------------------------------
@dataclass
class PairTable:
    """Null and probability map of one (query modality, target modality)."""

    score_grid: np.ndarray  # ascending quantiles of the best unrelated score
    sf_grid: np.ndarray  # P_null(best >= score_grid)
    tail_score: float
    tail_sf: float
    tail_rate: float
    prob_x: np.ndarray  # raw score (cosine), ascending
    prob_y: np.ndarray  # P(relative) at prob_x (non-decreasing)
    n_targets: int
    calibrated: bool = False  # the probability passed its out-of-fold check (else only E is reported)
    tail_scale: str = "score"  # the axis the tail is exponential on: "log_distance" (fit_null), "score" (older tables)
    power: float | None = None  # share of held-out queries whose best relative in another cluster reaches E_SIGNIFICANT

    def survival(self, score: np.ndarray) -> np.ndarray:
        """P(an unrelated query's best score >= score)."""
        z = np.asarray(score, dtype=np.float64)
        body = np.interp(z, self.score_grid, self.sf_grid, left=1.0, right=self.tail_sf)
        axis = tail_axis(self.tail_scale)
        tail = self.tail_sf * np.exp(-self.tail_rate * np.maximum(axis(z) - axis(self.tail_score), 0.0))
        return np.where(z > self.tail_score, tail, body)

    def evalue(self, score: np.ndarray) -> np.ndarray:
        """Expected chance hits scoring this or better: -ln(1 - P(best unrelated >= score)), at most N."""
        p = np.clip(self.survival(score), 0.0, 1.0)
        return np.minimum(-np.log1p(-np.minimum(p, 1.0 - 1e-12)), self.n_targets)

    def probability(self, score: np.ndarray) -> np.ndarray:
        """P(same-family relative | score), read off the fitted monotone map."""
        return np.interp(np.asarray(score, dtype=np.float64), self.prob_x, self.prob_y)

    def to_json(self) -> dict:
        return {"score_grid": _r(self.score_grid), "sf_grid": _r(self.sf_grid, 8), "tail_score": self.tail_score,
                "tail_sf": self.tail_sf, "tail_rate": self.tail_rate, "prob_x": _r(self.prob_x),
                "prob_y": _r(self.prob_y), "prob_of": "score", "n_targets": self.n_targets, "calibrated": self.calibrated,
                "tail_scale": self.tail_scale, "power": self.power}

    @classmethod
    def from_json(cls, d: dict) -> "PairTable":
        return cls(np.asarray(d["score_grid"]), np.asarray(d["sf_grid"]), float(d["tail_score"]), float(d["tail_sf"]),
                   float(d["tail_rate"]), np.asarray(d["prob_x"]), np.asarray(d["prob_y"]), int(d["n_targets"]),
                   # a map over another axis (older tables: -log10 E) must not be read as one over scores
                   bool(d.get("calibrated", False)) and d.get("prob_of") == "score",
                   str(d.get("tail_scale", "score")), None if d.get("power") is None else float(d["power"]))


def _r(a, nd: int = 5) -> list:
    return [round(float(x), nd) for x in np.asarray(a).ravel()]


def log_distance(score: np.ndarray) -> np.ndarray:
    """-ln(1 - cosine): unbounded as the score nears 1 (1 - cosine is half the squared distance of unit vectors)."""
    return -np.log(np.maximum(1.0 - np.asarray(score, dtype=np.float64), 1e-9))


def tail_axis(tail_scale: str):
    """The axis a null's tail is exponential on: log_distance for "log_distance", else the score itself."""
    return log_distance if tail_scale == "log_distance" else (lambda x: np.asarray(x, dtype=np.float64))


def fit_null(best_unrelated_scores: np.ndarray, n_targets: int, tail_scale: str = "log_distance",
             min_queries: int = 50) -> PairTable:
    """Survival grid and exponential tail of each query's best unrelated score (an extreme-value null).

    The maximum, not all pairs: queries differ in how heavy their tails are, and pooling every pair lets
    a few heavy-tailed queries set everyone's threshold; the best unrelated hit is what a user would
    otherwise mistake for a relative. The probability map is filled in later.
    The tail is exponential in -ln(1 - score), not in the score: a cosine cannot pass 1, and an exponential in
    the score itself gave an identical sequence (cosine 1.00) E 0.013. Near a point, the share of neighbours
    within distance r grows as a power of r, which is an exponential tail on this log-distance axis.
    `tail_scale="score"` fits the tail on the score itself (for scores that are not cosines, e.g. a cosine
    less a per-query background, compared by scripts/significance_power_valid.py).
    """
    z = np.sort(np.asarray(best_unrelated_scores, dtype=np.float64))
    z = z[np.isfinite(z)]
    if len(z) < min_queries:
        raise OneProtError(f"only {len(z)} queries with unrelated targets: too few for a null", "significance")
    qs = np.concatenate([np.linspace(0, TAIL_QUANTILE, GRID // 2), np.linspace(TAIL_QUANTILE, 1, GRID // 2)[1:]])
    grid = np.quantile(z, qs)
    sf = 1.0 - qs
    tail_score = float(np.quantile(z, TAIL_QUANTILE))
    axis = tail_axis(tail_scale)
    excess = axis(z[z > tail_score]) - axis(tail_score)
    rate = 1.0 / max(float(excess.mean()), 1e-3) if len(excess) else 10.0
    keep = grid <= tail_score  # beyond TAIL_QUANTILE the fitted exponential takes over
    return PairTable(grid[keep], sf[keep], tail_score, 1.0 - TAIL_QUANTILE, rate, np.array([0.0, 1.0]),
                     np.array([0.0, 0.0]), int(n_targets), tail_scale=tail_scale)


def fit_probability(table: PairTable, scores: np.ndarray, relative: np.ndarray, min_bin: int = MIN_BIN_HITS) -> None:
    """P(relative | score) as a monotone map, stored on `table` as points to interpolate between.

    Hits sorted by score go into bins of >= `min_bin` hits; the bins' same-family shares are made
    non-decreasing by pooling adjacent violators (isotonic regression weighted by hits), and the map
    interpolates between the bins' mean scores. On the raw score, not on E, so that the map and its
    check do not depend on the null. A logistic curve in E was used first: its fixed shape missed the
    observed share by more than 0.1 in some decile for 16 of 25 demo pairs. Bins of 30 hits let the hits
    of a few queries set a step; 60 held on more pairs out of fold on valid (module docstring).
    """
    x = np.asarray(scores, dtype=np.float64)
    y = np.asarray(relative, dtype=np.float64)
    order = np.argsort(x, kind="stable")
    x, y = x[order], y[order]
    cuts = np.arange(min_bin, len(x) - min_bin + 1, min_bin)  # the last bin takes the remainder (>= min_bin)
    cuts = [c for c in cuts if x[c] > x[c - 1]]  # never split tied scores between two bins
    xs, ys = np.split(x, cuts), np.split(y, cuts)
    bx = np.array([b.mean() for b in xs])
    by = np.array([b.mean() for b in ys])
    w = np.array([len(b) for b in xs], dtype=np.float64)
    table.prob_x, table.prob_y = bx, _pool_adjacent_violators(by, w)


def _pool_adjacent_violators(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """The non-decreasing sequence nearest to y in weighted least squares (isotonic regression)."""
    blocks: list[list[float]] = []  # [weighted mean, weight, count]
    for yi, wi in zip(y.tolist(), w.tolist()):
        blocks.append([yi, wi, 1])
        while len(blocks) > 1 and blocks[-2][0] > blocks[-1][0]:
            m2, w2, n2 = blocks.pop()
            m1, w1, n1 = blocks.pop()
            blocks.append([(m1 * w1 + m2 * w2) / (w1 + w2), w1 + w2, n1 + n2])
    return np.concatenate([np.full(n, m) for m, _, n in blocks])


class SignificanceTable:
    """Every (query modality, target modality) table of one embeddings folder."""

    def __init__(self, pairs: dict[tuple[str, str], PairTable], meta: dict):
        self.pairs, self.meta = pairs, meta

    def pair(self, query_modality: str, target_modality: str) -> PairTable | None:
        return self.pairs.get((str(query_modality), str(target_modality)))

    def save(self, folder: str | os.PathLike) -> Path:
        """Write significance.json into `folder` atomically."""
        from engine.files import write_text_atomic

        body = {**self.meta, "pairs": {f"{q}->{t}": p.to_json() for (q, t), p in self.pairs.items()}}
        return write_text_atomic(Path(folder) / TABLE_FILE, json.dumps(body))

    @classmethod
    def load(cls, folder: str | os.PathLike, eset=None) -> "SignificanceTable | None":
        """The table beside an embeddings folder, or None when absent or made for other embeddings."""
        path = Path(folder) / TABLE_FILE
        if not path.is_file():
            return None
        try:
            body = json.loads(path.read_text())
            pairs = {tuple(k.split("->")): PairTable.from_json(v) for k, v in body.pop("pairs").items()}
        except (ValueError, KeyError, TypeError) as exc:
            raise OneProtError(f"corrupted significance table: {exc}", str(path)) from None
        if eset is not None and (body.get("model_hash") != eset.model_hash or body.get("counts") != eset.manifest["counts"]):
            return None  # stale: built for other embeddings; hits show no significance rather than a wrong one
        return cls(pairs, body)


# ---- applying it -----------------------------------------------------------------------------------
_TABLES: dict[tuple[str, str], SignificanceTable | None] = {}


def table_for(eset) -> SignificanceTable | None:
    """The significance table beside an embedding set (read once per folder and model), or None."""
    key = (str(eset.path), eset.model_hash)
    if key not in _TABLES:
        _TABLES[key] = SignificanceTable.load(eset.path, eset)
    return _TABLES[key]


def annotate(eset, query_modality: str, target_modality: str, hits: list) -> dict:
    """Set evalue / probability / significant on each hit (engine.query.Hit, by its `score`); return a summary."""
    marks = assess(table_for(eset), query_modality, target_modality, [h.score for h in hits])
    if marks is None:
        return {"available": False, "note": "no significance table for these embeddings (run `oneprot calibrate`)"}
    labels = eset.labels
    family = dict(zip(labels["id"], labels["family"])) if "family" in labels.columns and len(hits) else {}
    for h, m in zip(hits, marks):
        # the probability was fitted and checked on hits to family-labelled proteins only: elsewhere it
        # would speak for a population it was never measured on (an unlabelled hit at E 0.15 got 0.96)
        labelled = isinstance(family.get(h.id), str) and bool(family.get(h.id))
        h.evalue, h.probability, h.significant = m.evalue, m.probability if labelled else None, m.significant
    n = sum(m.significant for m in marks)
    power = relatives_found(eset, query_modality, target_modality)
    note = "" if n else f"no significant hit (none with E <= {E_SIGNIFICANT})"
    if note and power is not None:
        note += "; " + power_note(query_modality, target_modality, power)
    return {"available": True, "e_significant": E_SIGNIFICANT, "significant_hits": n, "relatives_found": power,
            "note": note}


def power_note(query_modality: str, target_modality: str, power: float) -> str:
    """What a pair's "no significant hit" is worth, in words (the CLI's note and the page's hit title)."""
    return (f"for {query_modality} → {target_modality} searches, a same-family relative from another cluster "
            f"reaches E ≤ {E_SIGNIFICANT} for {power:.0%} of held-out queries")


def relatives_found(eset, query_modality: str, target_modality: str) -> float | None:
    """The pair's power: the share of held-out queries whose best relative in another cluster reached
    E <= E_SIGNIFICANT out of fold (None without a table, or a table written before it was measured)."""
    table = table_for(eset)
    pair = table.pair(query_modality, target_modality) if table is not None else None
    return None if pair is None else pair.power


def assess(table: SignificanceTable | None, query_modality: str, target_modality: str,
           scores: list[float]) -> list[Assessment] | None:
    """E-value, probability and significance of each hit score of one query; None without a table."""
    pair = table.pair(query_modality, target_modality) if table is not None else None
    if pair is None:
        return None
    e = pair.evalue(np.asarray(scores, dtype=np.float64))
    p = pair.probability(np.asarray(scores, dtype=np.float64)) if pair.calibrated else [None] * len(e)
    return [Assessment(float(ei), None if pi is None else round(float(pi), 3), bool(ei <= E_SIGNIFICANT))
            for ei, pi in zip(e, p)]


def short_query_warning(modality: str, length: int | None) -> str | None:
    """A warning for a query too short to mean much (sequence / structure of under SHORT_QUERY residues)."""
    if length is not None and modality in ("sequence", "structure", "structure_tokens", "pocket") and length < SHORT_QUERY:
        return (f"the query has only {length} residues (under {SHORT_QUERY}): its hits are unlikely to mean "
                "anything; read their significance, not their score")
    return None


# ---- building and checking the table ----------------------------------------------------------------
def build_table(eset, store, k: int = 10, folds: int = 5, seed: int = 0, progress=None,
                fit_split: str = "valid", check_split: str = "test",
                min_bin: int = MIN_BIN_HITS) -> tuple[SignificanceTable, dict]:
    """Fit every (query, target) modality table; check the null out of fold and the probability on `check_split`.

    Only held-out proteins are queries (the model never trained on them).
    - Null: each held-out (valid and test) query's best unrelated score; checked out of fold (clusters dealt
      into `folds` folds, each fold's queries judged by a null fitted on the others). It needs no label of
      a hit, only "unrelated", and the demo embeds too few valid proteins (198 sequences, all labelled or
      with a structure: not a sample of new queries) for a null of their own.
    - Probability map: fitted on `fit_split` queries' top hits only; whether the app reports it is decided
      there, out of fold, in REPORT_DEALS deals of clusters (seeds `seed`, `seed` + 1, ...; the report's
      valid deciles are the first deal's). `check_split` queries never take part in the map or that
      decision: they give the reported-vs-observed deciles of the kept map (the committed check). Its bins
      hold >= `min_bin` hits.
    """
    p = store.proteins.set_index("id")
    held = p[p["split"].isin([fit_split, check_split])]
    deals = [_deal_clusters(held, folds, seed + r) for r in range(REPORT_DEALS)]  # the first one checks the null
    cluster_of, split_of = held["cluster"].to_dict(), held["split"].to_dict()
    pairs, report = {}, {}
    for qm in eset.modalities:
        for tm in eset.modalities:
            t_ids = eset.ids(tm)
            tv = np.asarray(eset.vectors(tm), dtype=np.float32)
            t_fam, t_clu = _labels(p, t_ids)
            ids = [i for i in eset.ids(qm) if i in cluster_of]
            rows = np.array([eset.position(qm, i) for i in ids], dtype=np.int64)
            s = np.asarray(eset.vectors(qm), dtype=np.float32)[rows] @ tv.T
            fam, clu = _labels(p, ids)
            best_unrelated = np.where(_unrelated(fam, clu, t_fam, t_clu), s, -np.inf).max(axis=1)
            best_relative = np.where(_relatives(fam, clu, t_fam, t_clu), s, -np.inf).max(axis=1)
            has_relative = np.isfinite(best_relative)
            deal_folds = [np.array([d[cluster_of[i]] for i in ids], dtype=np.int64) for d in deals]
            fold = deal_folds[0]
            fitq = np.array([split_of[i] == fit_split for i in ids], dtype=bool)
            checkq = np.array([split_of[i] == check_split for i in ids], dtype=bool)
            top_q, top_t, top_rel = _top_hits(ids, s, fam, clu, t_ids, t_fam, t_clu, k)
            top_s = s[top_q, top_t]

            false_hits = found = 0.0
            for f in range(folds):  # the null, out of fold over all held-out queries
                out = fold == f
                if out.any() and not out.all():
                    null = fit_null(best_unrelated[~out], len(t_ids))
                    false_hits += float((null.evalue(best_unrelated[out]) <= E_SIGNIFICANT).sum())
                    found += float((null.evalue(best_relative[out & has_relative]) <= E_SIGNIFICANT).sum())
            table = pairs[(qm, tm)] = fit_null(best_unrelated, len(t_ids))
            if has_relative.any():
                table.power = round(found / int(has_relative.sum()), 4)

            def mapped(qmask: np.ndarray) -> PairTable | None:
                """A table holding the probability map fitted on the top hits of the queries in qmask."""
                sel = qmask[top_q]
                if sel.sum() < 2 * min_bin or top_rel[sel].min() == top_rel[sel].max():
                    return None  # too few labelled hits, or all of one kind: the probability stays unknown
                t = fit_null(best_unrelated, len(t_ids))
                fit_probability(t, top_s[sel], top_rel[sel], min_bin)
                return t

            def out_of_fold(fold: np.ndarray) -> list[dict]:
                """Deciles of the map on fit-split queries, each fold's judged by a map fitted on the other folds."""
                probs, rels = [], []
                for f in range(folds):
                    inner = mapped(fitq & (fold != f))
                    sel = (fitq & (fold == f))[top_q]
                    if inner is not None and sel.any():
                        probs.append(inner.probability(top_s[sel]))
                        rels.append(top_rel[sel])
                return decile_check(np.concatenate(probs) if probs else np.zeros(0),
                                    np.concatenate(rels) if rels else np.zeros(0, bool))

            # the map, out of fold on the fit split only, in every deal: decides whether it is reported
            deal_deciles = [out_of_fold(f) for f in deal_folds]
            fit_deciles, deals_passed = deal_deciles[0], sum(_passes(d, every_decile=True) for d in deal_deciles)
            kept = mapped(fitq)
            if kept is None:
                table.prob_x, table.prob_y = np.array([0.0]), np.array([np.nan])
                check_deciles = []
            else:
                table.prob_x, table.prob_y = kept.prob_x, kept.prob_y
                sel = checkq[top_q]
                check_deciles = decile_check(table.probability(top_s[sel]), top_rel[sel])
            table.calibrated = kept is not None and deals_passed >= REPORT_PASSES
            report[f"{qm}->{tm}"] = {
                "calibrated": table.calibrated, "deciles": check_deciles, "within_0.1": _passes(check_deciles),
                "fit_deciles": fit_deciles, "fit_deals_passed": deals_passed, "queries": len(ids),
                "fit_queries": int(fitq.sum()), "check_queries": int(checkq.sum()), "fit_hits": int(fitq[top_q].sum()),
                "checked_hits": int(checkq[top_q].sum()), "null_pairs": int(np.isfinite(best_unrelated).sum()),
                "unrelated_significant_share": round(false_hits / max(len(ids), 1), 4),
                "queries_with_relatives": int(has_relative.sum()),
                "relative_significant_share": round(found / max(int(has_relative.sum()), 1), 4)}
            if progress:
                progress(qm, tm, report[f"{qm}->{tm}"])
    meta = {"model_hash": eset.model_hash, "counts": eset.manifest["counts"], "k": k, "e_significant": E_SIGNIFICANT,
            "folds": folds, "store": Path(store.path).name, "fit_split": fit_split, "check_split": check_split,
            "min_bin": min_bin, "report_deals": REPORT_DEALS, "report_passes": REPORT_PASSES}
    return SignificanceTable(pairs, meta), report


def _passes(deciles: list[dict], min_judged: int = 2, every_decile: bool = False) -> bool:
    """Every decile with enough hits within +-0.1, and at least `min_judged` of them (no vacuous pass).

    `every_decile`: also no decile of too few hits to judge (the rule for showing a probability: a value
    the map reports where valid never held enough hits to check it would be shown unchecked).
    """
    if every_decile and any(d["within_0.1"] is None for d in deciles):
        return False
    judged = [d["within_0.1"] for d in deciles if d["within_0.1"] is not None]
    return len(judged) >= min_judged and all(judged)


def _deal_clusters(held, folds: int, seed: int) -> dict[int, int]:
    """Cluster -> fold, dealt round-robin within each family label, so every fold holds every large family."""
    fam = held.groupby("cluster")["family"].agg(lambda f: f.dropna().mode().iloc[0] if f.notna().any() else "")
    order = np.random.default_rng(seed).permutation(len(fam))
    shuffled = fam.iloc[order]
    deal, counters = {}, {}
    for c, f in zip(shuffled.index.tolist(), shuffled.tolist()):
        deal[c] = counters.get(f, 0) % folds
        counters[f] = counters.get(f, 0) + 1
    return deal


def _unrelated(fam, clu, t_fam, t_clu) -> np.ndarray:
    """(Q, T) mask of pairs in different clusters and not sharing a family label."""
    same_fam = (fam[:, None] == t_fam[None, :]) & (fam[:, None] != "")
    return (clu[:, None] != t_clu[None, :]) & ~same_fam


def _relatives(fam, clu, t_fam, t_clu) -> np.ndarray:
    """(Q, T) mask of same-family pairs in different clusters: relatives a search should find, not near-copies."""
    return (fam[:, None] == t_fam[None, :]) & (fam[:, None] != "") & (clu[:, None] != t_clu[None, :])


def _labels(p, ids: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(family label or '', cluster) arrays for ids (unknown ids: '' and a cluster of their own)."""
    fam = p["family"].reindex(ids).fillna("").astype(str).to_numpy()
    clu = p["cluster"].reindex(ids).to_numpy()
    clu = np.where(np.isnan(clu.astype(float)), -1 - np.arange(len(ids)), clu).astype(np.int64)
    return fam, clu


def _top_hits(ids, s, fam, clu, t_ids, t_fam, t_clu, k) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(query row, target row, same family) of the labelled targets among each labelled query's top-k hits.

    Each query is asked twice: against every target, and against the targets outside its family and
    cluster (as if its family were absent from the store, whose hits are all unrelated). Queries with and
    without relatives present then weigh equally, so a probability fitted on these hits also holds for a
    query of no known family (a random sequence), not only for members of the store's labelled families.
    """
    t_pos = {pid: j for j, pid in enumerate(t_ids)}
    q_out, t_out = [], []
    for i, pid in enumerate(ids):
        if not fam[i]:
            continue
        row = s[i].copy()
        if pid in t_pos:
            row[t_pos[pid]] = -np.inf  # the query itself (in another modality) is not a hit to judge
        absent = row.copy()
        absent[(t_fam == fam[i]) | (t_clu == clu[i])] = -np.inf
        for r in (row, absent):
            top = np.argpartition(-r, k)[:k] if len(r) > k else np.arange(len(r))
            top = top[(t_fam[top] != "") & np.isfinite(r[top])]
            q_out.append(np.full(len(top), i))
            t_out.append(top)
    if not q_out:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, bool)
    q, t = np.concatenate(q_out).astype(np.int64), np.concatenate(t_out).astype(np.int64)
    return q, t, t_fam[t] == fam[q]


def decile_check(prob: np.ndarray, relative: np.ndarray, min_n: int = MIN_DECILE_HITS) -> list[dict]:
    """Per decile of reported probability: hits, mean reported, observed same-family share, within +-0.1
    (None: fewer than `min_n` hits, too few to judge)."""
    out = []
    prob = np.asarray(prob, dtype=np.float64)
    for lo in np.arange(0.0, 1.0, 0.1):
        m = (prob >= lo) & ((prob < lo + 0.1) if lo < 0.85 else (prob <= 1.0))
        n = int(m.sum())
        if not n:
            continue
        rep, obs = float(prob[m].mean()), float(np.asarray(relative)[m].mean())
        out.append({"decile": f"{lo:.1f}-{lo + 0.1:.1f}", "hits": n, "reported": round(rep, 3),
                    "observed": round(obs, 3), "within_0.1": bool(abs(rep - obs) <= 0.1) if n >= min_n else None})
    return out


def report_markdown(report: dict, meta: dict) -> str:
    """The calibration check as Markdown: per pair, the E-value check and the probability deciles on the check split."""
    fit, check = meta.get("fit_split", "valid"), meta.get("check_split", "test")
    judged = [r for r in report.values() if r["deciles"]]
    ok = sum(bool(r["within_0.1"]) for r in judged)
    shown = sum(bool(r["calibrated"]) for r in report.values())
    shown_ok = sum(bool(r["calibrated"]) and bool(r["within_0.1"]) for r in report.values())
    found = [r["relative_significant_share"] for r in report.values() if r.get("queries_with_relatives")]
    found_median, found_lo, found_hi = (float(np.median(found)), min(found), max(found)) if found else (0.0, 0.0, 0.0)
    e_median = float(np.median([r["unrelated_significant_share"] for r in report.values()]))
    lines = [f"# Significance calibration (model {meta.get('model_hash')}, store {meta.get('store')}, "
             f"fitted on {fit}, checked on {check}, top {meta.get('k')} hits)", "",
             f"Probability map (P(same family | score), isotonic on bins of >= {meta.get('min_bin', MIN_BIN_HITS)} hits) "
             f"fitted on {fit} "
             f"queries only; its deciles below are on {check} queries, which never took part in it.",
             f"E check: share of held-out ({fit} and {check}) queries whose best unrelated hit reaches E <= "
             f"{meta.get('e_significant')}, out of fold ({meta.get('folds')} folds of whole clusters; a calibrated "
             f"E-value gives {1 - np.exp(-meta.get('e_significant', 0.05)):.3f}). \"relatives found\": the power beside it, "
             f"the share of held-out family-labelled queries with a same-family target in another 50%-identity cluster "
             f"whose best such relative reaches E <= {meta.get('e_significant')}, under the same out-of-fold nulls "
             f"(queries in brackets); a search that told relatives from noise no better than chance would find "
             f"about the E check's share.",
             f"Probability: per decile of reported probability, {check} hits / mean reported / observed same-family "
             f"share; `*` marks a decile more than 0.1 off, \"too few\" one of under {MIN_DECILE_HITS} hits (not judged).",
             f"\"within 0.1\": every judged decile within +-0.1 (and at least two judged). \"reported\": the app "
             f"shows the probability for this pair: its map passed that check on {fit}, out of fold ({meta.get('folds')} "
             f"folds of whole clusters), with no {fit} decile of too few hits (a value never checked is not shown), "
             f"in >= {meta.get('report_passes')} of {meta.get('report_deals')} deals of the "
             f"clusters (in brackets: deals passed); E alone elsewhere.",
             "", f"**{ok} of {len(report)} pairs within +-0.1 in every judged {check} decile** "
             f"({len(report) - len(judged)} without a probability map: too few labelled {fit} hits); "
             f"{shown} pair{'' if shown == 1 else 's'} report{'s' if shown == 1 else ''} the probability in the app, "
             f"{shown_ok} of them within +-0.1 in every judged "
             f"{check} decile. Relatives found: median {found_median:.2f} over the pairs (range {found_lo:.2f}-"
             f"{found_hi:.2f}), against a median E check of {e_median:.3f}.", "",
             f"| query -> target | E check | relatives found | within 0.1 | reported | hits {fit} / {check} | {check} deciles (hits: reported / observed) |",
             "|---|---|---|---|---|---|---|"]
    for pair, r in report.items():
        cells = " · ".join(f"{d['decile']} ({d['hits']}: too few)" if d["within_0.1"] is None else
                           f"{d['decile']} ({d['hits']}: {d['reported']:.2f} / {d['observed']:.2f}"
                           f"{'*' if d['within_0.1'] is False else ''})" for d in r["deciles"])
        within = ("yes" if r["within_0.1"] else "no") if r["deciles"] else "no map"
        shows = f"{'yes' if r['calibrated'] else 'no'} ({r.get('fit_deals_passed', 0)}/{meta.get('report_deals')})"
        power = (f"{r['relative_significant_share']:.2f} ({r['queries_with_relatives']})"
                 if r.get("queries_with_relatives") else "–")
        lines.append(f"| {pair} | {r['unrelated_significant_share']:.3f} | {power} | {within} | {shows} | "
                     f"{r['fit_hits']} / {r['checked_hits']} | {cells} |")
    return "\n".join(lines) + "\n"
