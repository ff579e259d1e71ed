"""`oneprot evaluate`: retrieval for every ordered modality pair, baselines, evolution and probes.

Pairs: for "a->b" the proteins of the split having both a and b are used (a seeded sample of at
most `max_queries` when there are more); each one's a-vector queries the b-vectors of all of them.
A pair with the sequence anchor on one side was trained; any other pair is emergent (never
trained together). Tie and duplicate rules: see engine.evaluate.retrieval.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from engine.errors import OneProtError
from engine.evaluate import baselines as B
from engine.evaluate.evolution import family_similarity
from engine.evaluate.probes import ec_class, probe
from engine.evaluate.relatives import RULE as RELATIVES_RULE
from engine.evaluate.relatives import TM_MAX as RELATIVES_TM_MAX
from engine.evaluate.relatives import relatives
from engine.evaluate.retrieval import evaluate_pair, evaluate_scores
from engine.evaluate.tmscore import MAX_PROTEINS as TMSCORE_MAX
from engine.evaluate.tmscore import NAME as TM_NAME
from engine.evaluate.tmscore import TMScorer
from engine.evaluate.upstream_protocol import N_PAIRS
from engine.evaluate.upstream_protocol import RULES as UPSTREAM_RULES
from engine.evaluate.upstream_protocol import evaluate_upstream
from engine.modality import ANCHOR, Modality

POCKET, STRUCTURE = Modality.POCKET.value, Modality.STRUCTURE.value

RULES = {
    "candidates": "for a->b, the b-items of every split protein that has both a and b",
    "duplicates": "a candidate is correct when its content (text, sequence, 3Di string, coordinates) equals the query protein's own b-item",
    "ties": "rank = 1 + number of incorrect candidates scoring >= the best correct candidate (ties count against the model)",
    "chance": "analytic R@k of a uniformly random ranking with the same duplicates; 'random' baseline = seeded random unit vectors",
    "unaligned": "same checkpoint's encoders with seeded freshly initialised projection heads (or --baseline-checkpoint)",
    "classical": "k-mer composition cosine where both sides carry comparable letters; a structure or pocket carries its "
                 "residues' amino acids, so a perfect classical score there means the pair is trivial for a lookup",
    "length": "sequence/structure/3Di pairs: rank by chain-length difference, -|log(La/Lb)|; every protein's partner "
              "has its exact length, so this measures what the residue count alone retrieves (ties count against it)",
    "tmscore": "pocket<->structure only: TM-align (tmtools) of the pocket's CA atoms onto each chain's, TM-score "
               "normalised by the pocket's length; a pocket is cut from its own chain, so a perfect aligner would always "
               "find it (TM-align misses some short, scattered pockets); on a seeded sample of at most --tmscore-max proteins (n_candidates says how many)",
    "relatives": RELATIVES_RULE,
    "evolution": "same- vs different-family ROC-AUC of cosine over pairs of the split's family-labelled items; "
                 "kmer_3mer = amino-acid 3-mer composition of the same proteins",
}


@dataclass
class ModalityData:
    """One modality of the evaluated split: ids, raw items, content keys and every representation."""

    ids: list[str]
    items: list[Any]
    keys: list[str]
    aligned: np.ndarray  # (N, D) the model's space
    unaligned: np.ndarray  # (N, D) baseline space
    pooled: np.ndarray | None  # (N, H) encoder output before the head
    baseline_pooled: np.ndarray | None = None  # (N, H') the baseline checkpoint's encoder output, if one is given


def content_key(modality: str, item: Any) -> str:
    """A hash of what an item says, so identical texts / sequences / structures compare equal."""
    h = hashlib.sha1(modality.encode())
    if hasattr(item, "coords"):
        h.update(item.sequence.encode())
        h.update(np.round(np.nan_to_num(np.asarray(item.coords, dtype=np.float32)), 1).tobytes())
        if getattr(item, "focus", None) is not None:  # a pocket: which residues of the chain
            h.update(np.asarray(item.focus, dtype=np.int64).tobytes())
    elif modality == Modality.TEXT.value:
        h.update(" ".join(str(item).lower().split()).encode())
    else:
        h.update(str(item).encode())
    return h.hexdigest()


def collect(model, store, split: str | None, modalities: list[str], baseline_model=None, seed: int = 0,
            batch_tokens: int = 16_384, log=print, pooled_cache: dict | None = None) -> dict[str, ModalityData]:
    """Embed the split once per modality: aligned, unaligned and pre-head vectors.

    pooled_cache: a dict kept by the caller across models (an ablation): pre-head features are reused
    when the encoder's weights and the items are the same (a frozen text or sequence backbone).
    """
    from engine.data.items import items_for

    heads = B.random_heads(model, seed) if baseline_model is None else None
    out = {}
    for m in modalities:
        ids = store.ids(split=split, modality=m)
        if not ids:
            continue
        t = time.perf_counter()
        items = items_for(store, ids, m)
        key = _encoder_key(model, m, ids) if pooled_cache is not None else None
        pooled = pooled_cache.get(key) if key is not None else None
        if pooled is None:
            pooled = B.pooled_features(model, m, items, batch_tokens)
            if key is not None:
                pooled_cache[key] = pooled
        aligned = B.apply_head(model.heads[m], pooled)
        base_pooled = None
        if baseline_model is None:
            unaligned = B.apply_head(heads[m], pooled)
        else:
            # a frozen backbone (e.g. the text model) is the same in both: reuse its features
            base_pooled = pooled if _same_encoder(model, baseline_model, m) else \
                B.pooled_features(baseline_model, m, items, batch_tokens)
            unaligned = B.apply_head(baseline_model.heads[m], base_pooled)
        out[m] = ModalityData(ids, items, [content_key(m, x) for x in items], aligned, unaligned, pooled, base_pooled)
        log(f"embedded {len(ids)} {m} items in {time.perf_counter() - t:.1f} s")
    return out


def _encoder_key(model, modality: str, ids: list[str]) -> str:
    """A hash of an encoder's weights and the ids it embeds: equal keys give equal pre-head features."""
    h = hashlib.sha1(modality.encode())
    h.update("\n".join(ids).encode())
    for k, v in sorted(model.encoders[modality].state_dict().items()):
        h.update(k.encode())
        h.update(v.detach().float().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _same_encoder(a, b, modality: str) -> bool:
    sa, sb = a.encoders[modality].state_dict(), b.encoders[modality].state_dict()
    return sa.keys() == sb.keys() and all(sa[k].shape == sb[k].shape and torch.equal(sa[k].cpu(), sb[k].cpu()) for k in sa)


def _pair_rows(a: ModalityData, b: ModalityData, max_queries: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    pos_b = {pid: i for i, pid in enumerate(b.ids)}
    ia, ib = [], []
    for i, pid in enumerate(a.ids):
        j = pos_b.get(pid)
        if j is not None:
            ia.append(i)
            ib.append(j)
    ia, ib = np.array(ia, dtype=np.int64), np.array(ib, dtype=np.int64)
    if len(ia) > max_queries:
        pick = np.sort(np.random.default_rng(seed).choice(len(ia), size=max_queries, replace=False))
        ia, ib = ia[pick], ib[pick]
    return ia, ib


def evaluate(model, store, split: str | None = "test",  # report-only: callers that choose pass valid
             baseline_model=None, seed: int = 0, max_queries: int = 5000,
             modalities: list[str] | None = None, batch_tokens: int = 16_384, run_probes: bool = True,
             tmscore_max: int = TMSCORE_MAX, relatives_tm_max: int = RELATIVES_TM_MAX, protocol: str = "ours",
             log=print, pooled_cache: dict | None = None) -> dict:
    """The full `evaluate` result: keys retrieval, baselines, relatives, evolution, probes (+ rules, summary).

    tmscore_max: the TM-score baseline (pocket<->structure) aligns every pocket against every chain,
    so it runs on a seeded sample of at most this many proteins per pair; 0 skips it.
    relatives_tm_max: TM-score queries per structure/pocket pair of the relatives metric (0 skips it).
    protocol: "ours" (this docstring) or "oneprot" (upstream's retrieval protocol only, see upstream_protocol).
    pooled_cache: see collect (reuses a frozen encoder's features across the models of one ablation).
    """
    if protocol not in ("ours", "oneprot"):
        raise OneProtError("must be 'ours' or 'oneprot'", f"--protocol {protocol}")
    mods = [m for m in (modalities or model.modalities) if m in model.modalities]
    data = collect(model, store, split, mods, baseline_model, seed, batch_tokens, log, pooled_cache)
    if len(data) < 2:
        raise OneProtError(f"the {split} split has fewer than two modalities with data; nothing to retrieve", "split")
    if protocol == "oneprot":
        return upstream_result(data, split, seed)
    retrieval, unaligned, random, classical, tmscore, length = {}, {}, {}, {}, {}, {}
    tm = TMScorer(data[POCKET].items, data[STRUCTURE].items) if tmscore_max > 0 and {POCKET, STRUCTURE} <= set(data) else None
    t_tm = 0.0
    for a in data:
        for b in data:
            if a == b:
                continue
            ia, ib = _pair_rows(data[a], data[b], max_queries, seed)
            if len(ia) < 2:
                continue
            pair = f"{a}->{b}"
            keys = [data[b].keys[j] for j in ib]
            res = evaluate_pair(data[a].aligned[ia], data[b].aligned[ib], keys, keys)
            res["kind"] = "trained" if ANCHOR.value in (a, b) else "emergent"
            retrieval[pair] = res
            unaligned[pair] = evaluate_pair(data[a].unaligned[ia], data[b].unaligned[ib], keys, keys)
            dim = data[a].aligned.shape[1]
            random[pair] = evaluate_pair(B.random_vectors(len(ia), dim, seed + 1), B.random_vectors(len(ib), dim, seed + 2), keys, keys)
            name = B.classical_name(a, b)
            if name is not None:
                sa = B.classical_strings(a, [data[a].items[i] for i in ia], b)
                sb = B.classical_strings(b, [data[b].items[j] for j in ib], a)
                classical[pair] = {**evaluate_pair(B.kmer_vectors(sa[0], sa[1]), B.kmer_vectors(sb[0], sb[1]), keys, keys),
                                   "method": name}
            if B.has_length_baseline(a, b):
                scores = B.length_scores([data[a].items[i] for i in ia], [data[b].items[j] for j in ib])
                length[pair] = {**evaluate_scores(scores, keys, keys), "method": B.LENGTH_NAME}
            if tm is not None and {a, b} == {POCKET, STRUCTURE}:
                t = time.perf_counter()
                ta, tb = _pair_rows(data[a], data[b], min(max_queries, tmscore_max), seed)
                tkeys = [data[b].keys[j] for j in tb]
                scores = tm.matrix(ta, tb) if a == POCKET else tm.matrix(tb, ta).T
                tmscore[pair] = {**evaluate_scores(scores, tkeys, tkeys), "method": TM_NAME}
                t_tm += time.perf_counter() - t
    if tm is not None:
        log(f"TM-score baseline: {tm.n_aligned} alignments in {t_tm:.1f} s")
    families = {m: _labels(store, d.ids, "family") for m, d in data.items()}
    t = time.perf_counter()
    related = relatives(data, families, seed, max_queries, relatives_tm_max, log)
    log(f"relatives: {len(related)} pairs in {time.perf_counter() - t:.1f} s")
    evolution = {}
    for m, d in data.items():
        fams = families[m]
        res = {"aligned": family_similarity(d.aligned, fams, seed), "unaligned": family_similarity(d.unaligned, fams, seed)}
        if d.pooled is not None:
            res["encoder_features"] = family_similarity(d.pooled, fams, seed)
        if d.baseline_pooled is not None:
            res["unaligned_encoder_features"] = family_similarity(d.baseline_pooled, fams, seed)
        if m == ANCHOR.value:
            res["kmer_3mer"] = family_similarity(B.kmer_vectors([B.residue_letters(x) for x in d.items], B.AMINO),
                                                 fams, seed)
        if any(v is not None for v in res.values()):
            evolution[m] = res
    probes = {}
    if run_probes and ANCHOR.value in data:
        d = data[ANCHOR.value]
        targets = {"family": _labels(store, d.ids, "family"),
                   "ec_class": [ec_class(x) for x in _labels(store, d.ids, "ec")]}
        before = d.pooled if d.baseline_pooled is None else d.baseline_pooled
        g = _labels(store, d.ids, "cluster")  # cluster-aware folds: no 50%-identity cluster on both sides
        for name, y in targets.items():
            res = {"aligned": probe(d.aligned, y, seed=seed, groups=g),
                   "unaligned_encoder": probe(before, y, seed=seed, groups=g),
                   "aligned_mlp": probe(d.aligned, y, seed=seed, kind="mlp", groups=g),
                   "unaligned_encoder_mlp": probe(before, y, seed=seed, kind="mlp", groups=g),
                   "random": probe(B.random_vectors(len(y), d.aligned.shape[1], seed + 3), y, seed=seed, groups=g)}
            if any(v is not None for v in res.values()):
                probes[name] = res
    return {
        "split": split, "rules": RULES, "n_items": {m: len(d.ids) for m, d in data.items()},
        "retrieval": retrieval, "relatives": related,
        "baselines": {"unaligned": unaligned, "random": random, "classical": classical, "tmscore": tmscore,
                      "length": length},
        "evolution": evolution, "probes": probes,
        "summary": floor_checks(retrieval, unaligned),
    }


def upstream_result(data: dict[str, ModalityData], split: str | None, seed: int, n_pairs: int = N_PAIRS) -> dict:
    """`evaluate --protocol oneprot`: upstream's retrieval protocol on the aligned and unaligned vectors."""
    kind = lambda a, b: "trained" if ANCHOR.value in (a, b) else "emergent"  # noqa: E731
    aligned = evaluate_upstream({m: (d.ids, d.aligned) for m, d in data.items()}, n_pairs, seed, kind)
    unaligned = evaluate_upstream({m: (d.ids, d.unaligned) for m, d in data.items()}, n_pairs, seed, kind)
    return {"protocol": "oneprot", "split": split, "n_items": {m: len(d.ids) for m, d in data.items()},
            "rules": {**UPSTREAM_RULES, "unaligned": RULES["unaligned"]},
            "retrieval": aligned, "baselines": {"unaligned": unaligned}}


def floor_checks(retrieval: dict, unaligned: dict, factor: float = 5.0) -> dict:
    """Per pair: beats the unaligned baseline at R@10 and reaches `factor` x chance at R@10.

    With fewer than 10 x `factor` candidates, `factor` x chance at R@10 exceeds 1 and cannot be
    reached; `max_x_chance` says so, and the R@1 ratio is given beside it.
    """
    out = {}
    for pair, r in retrieval.items():
        c10, c1 = r["chance"]["R@10"], r["chance"]["R@1"]
        out[pair] = {
            "kind": r["kind"], "R@10": r["R@10"], "unaligned_R@10": unaligned[pair]["R@10"], "chance_R@10": c10,
            "beats_unaligned": r["R@10"] > unaligned[pair]["R@10"],
            "x_chance": r["R@10"] / c10 if c10 > 0 else float("inf"),
            "max_x_chance": 1.0 / c10 if c10 > 0 else float("inf"),
            "x_chance_R@1": r["R@1"] / c1 if c1 > 0 else float("inf"),
        }
        out[pair]["passes"] = out[pair]["beats_unaligned"] and out[pair]["x_chance"] >= factor
    return out


def _labels(store, ids: list[str], column: str) -> list:
    p = store.proteins.set_index("id")[column]
    vals = p.reindex(ids).tolist()
    return [None if v is None or (isinstance(v, float) and np.isnan(v)) or v == "" else v for v in vals]
