"""Relatives: does a query's neighbourhood hold proteins of its family? precision@10 and mAP, own protein excluded.

For an ordered pair "a->b": the queries are the split's family-labelled proteins that have a (a seeded
sample of at most `max_queries`) and whose family has at least one other labelled protein with b; the
targets are every family-labelled protein of the split that has b, except the query's own protein. A
target is a hit when its family equals the query's. Targets are ranked by score with ties counted
against the method (hits sort after non-hits of the same score).

Representations, all in the same run:
* aligned / unaligned: the model's space and the unaligned baseline (as in retrieval);
* kmer: amino-acid 3-mer composition cosine, where both sides carry residues (sequence, structure: the
  chain's residues; pocket: its lining residues);
* anchor_features: the sequence encoder's pooled output before its head, of each side's protein sequence,
  where both sides are whole chains with residues (sequence, structure); `unaligned_anchor_features` the
  same from --baseline-checkpoint when one is given;
* tmscore: TM-align (tmtools) on CA atoms normalised by the shorter side, where both sides are structure or
  pocket, on a seeded sample of at most `tm_max` queries against every target;
* chance: the expected precision@10 and AP of a uniformly random ranking of the same targets.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from engine.evaluate import baselines as B
from engine.evaluate.tmscore import SymmetricTM
from engine.modality import Modality

K = 10
SEQ, STRUCT, POCKET = Modality.SEQUENCE.value, Modality.STRUCTURE.value, Modality.POCKET.value
RESIDUE_SIDES = {SEQ, STRUCT, POCKET}
CHAIN_SIDES = {SEQ, STRUCT}
TM_SIDES = {STRUCT, POCKET}
TM_MAX = 40  # default cap on TM-score queries per pair (each aligns against every target)
RULE = ("per ordered pair: family-labelled queries with >= 1 other labelled target of their family; targets = the "
        "split's family-labelled proteins with the target modality minus the query's own protein; precision@10 and "
        "mAP of same-family hits, ties counted against the method; baselines: 3-mer composition (sides with residues), "
        "the sequence encoder's pre-head features (sequence/structure sides), TM-score (structure/pocket sides, seeded "
        "sample of queries), chance (random ranking, analytic)")


def relatives_scores(scores: np.ndarray, query_fams: list, target_fams: list, query_ids: list, target_ids: list,
                     k: int = K) -> dict | None:
    """precision@k and mAP of same-family targets for a (Q, T) score matrix; own protein excluded."""
    s = np.asarray(scores, dtype=np.float64)
    qf, tf = np.asarray(query_fams, dtype=object), np.asarray(target_fams, dtype=object)
    tids = np.asarray(target_ids, dtype=object)
    prec, aps, chance_p, chance_ap = [], [], [], []
    for i in range(len(s)):
        keep = tids != query_ids[i]
        rel = (tf[keep] == qf[i])
        n, r = int(keep.sum()), int(rel.sum())
        if r == 0 or n == 0:
            continue
        # lexsort: last key primary -> score descending, then non-hits first among equal scores (pessimistic)
        order = np.lexsort((rel.astype(np.int8), -s[i][keep]))
        hits = rel[order]
        kk = min(k, n)
        prec.append(hits[:kk].mean())
        cum = np.cumsum(hits)
        pos = np.flatnonzero(hits)
        aps.append(float((cum[pos] / (pos + 1)).mean()))
        chance_p.append(r / n)
        chance_ap.append(_random_ap(r, n))
    if not prec:
        return None
    return {f"P@{k}": float(np.mean(prec)), "mAP": float(np.mean(aps)), "n_queries": len(prec),
            "chance": {f"P@{k}": float(np.mean(chance_p)), "mAP": float(np.mean(chance_ap))}}


def _random_ap(r: int, n: int) -> float:
    """Expected average precision of a random ranking of n items with r relevant (Bestgen 2015)."""
    h = float(np.sum(1.0 / np.arange(1, n + 1)))
    return (h + (r - 1) / max(n - 1, 1) * (n - h)) / n


def _vectors_scores(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    y = y / np.maximum(np.linalg.norm(y, axis=1, keepdims=True), 1e-12)
    return x @ y.T


def relatives(data: dict, families: dict[str, list], seed: int = 0, max_queries: int = 5000, tm_max: int = TM_MAX,
              log=print) -> dict:
    """{pair: {representation: metrics}} for every ordered pair of `data` (run.ModalityData per modality).

    families: modality -> family label (or None) per item of data[modality].
    """
    rng_seed = seed + 17
    seq = data.get(SEQ)
    seq_row = {pid: i for i, pid in enumerate(seq.ids)} if seq is not None else {}
    tm = SymmetricTM({m: data[m].items for m in TM_SIDES if m in data}) if tm_max > 0 else None
    out = {}
    for a in data:
        for b in data:
            qi, ti = _rows(data, families, a, b, max_queries, rng_seed)
            if len(qi) == 0:
                continue
            qf, tf = [families[a][i] for i in qi], [families[b][j] for j in ti]
            qids, tids = [data[a].ids[i] for i in qi], [data[b].ids[j] for j in ti]

            def score(m, qf=qf, tf=tf, qids=qids, tids=tids):
                return relatives_scores(m, qf, tf, qids, tids)

            res = {"aligned": score(data[a].aligned[qi] @ data[b].aligned[ti].T),
                   "unaligned": score(data[a].unaligned[qi] @ data[b].unaligned[ti].T)}
            if a in RESIDUE_SIDES and b in RESIDUE_SIDES:
                ka = B.kmer_vectors([B.residue_letters(data[a].items[i]) for i in qi], B.AMINO)
                kb = B.kmer_vectors([B.residue_letters(data[b].items[j]) for j in ti], B.AMINO)
                res["kmer"] = score(ka @ kb.T)
            if seq is not None and a in CHAIN_SIDES and b in CHAIN_SIDES:
                sa, sb = [seq_row[p] for p in qids], [seq_row[p] for p in tids]
                if seq.pooled is not None:
                    res["anchor_features"] = score(_vectors_scores(seq.pooled[sa], seq.pooled[sb]))
                if seq.baseline_pooled is not None:
                    res["unaligned_anchor_features"] = score(
                        _vectors_scores(seq.baseline_pooled[sa], seq.baseline_pooled[sb]))
            if tm is not None and a in TM_SIDES and b in TM_SIDES:
                sub = np.sort(np.random.default_rng(rng_seed).permutation(len(qi))[:tm_max])
                m = tm.matrix(a, [qi[i] for i in sub], b, ti)
                r = relatives_scores(m, [qf[i] for i in sub], tf, [qids[i] for i in sub], tids)
                if r is not None:
                    res["tmscore"] = r
            res = {k: v for k, v in res.items() if v is not None}
            if res:
                first = res["aligned"]
                out[f"{a}->{b}"] = {**res, "chance": first["chance"], "n_queries": first["n_queries"],
                                    "n_targets": len(ti)}
    if tm is not None and tm.n_aligned:
        log(f"relatives TM-score baseline: {tm.n_aligned} alignments in {tm.seconds:.1f} s")
    return out


def _rows(data: dict, families: dict, a: str, b: str, max_queries: int, seed: int) -> tuple[list[int], list[int]]:
    """Query rows of a (labelled, with another labelled b-protein of their family) and target rows of b."""
    ti = [j for j, f in enumerate(families[b]) if f is not None]
    count: dict[Any, int] = {}
    for j in ti:
        count[families[b][j]] = count.get(families[b][j], 0) + 1
    b_ids = {data[b].ids[j] for j in ti}
    qi = []
    for i, f in enumerate(families[a]):
        if f is None:
            continue
        others = count.get(f, 0) - (1 if data[a].ids[i] in b_ids else 0)
        if others > 0:
            qi.append(i)
    if len(qi) > max_queries:
        qi = sorted(np.random.default_rng(seed).choice(qi, size=max_queries, replace=False).tolist())
    return qi, ti
