"""Leak-free train/valid/test splits by greedy sequence-identity clustering.

Method (our own, so no external binary such as mmseqs2 is needed):
1. identical sequences are merged first (they always share a cluster);
2. unique sequences are visited longest first; each becomes a member of the first existing
   cluster representative it matches at >= `identity` (default 0.5, as in the OneProt paper),
   otherwise it founds a new cluster;
3. candidates come from a k-mer prefilter: distinct 5-mers over the Murphy 10-letter reduced
   alphabet; a representative is a candidate when it shares >= 3 k-mers, >= 2% of the shorter
   k-mer set and >= 3x the overlap expected by chance; the best `max_candidates` (10) by shared
   count are aligned (k-mers found in more than 200 representatives are ignored);
4. identity = identical aligned positions / length of the shorter sequence, from a local
   Smith-Waterman alignment (parasail, BLOSUM62, gap open 11, extend 1). Dividing by the shorter
   length also demands coverage, so a short shared motif does not merge two proteins;
5. member linkage: every sequence is then aligned with its best k-mer candidates among the
   members of OTHER clusters (up to 10 alignments), and clusters with a pair >= `identity` are
   united, so a member-member match cannot end up across two splits.
Whole clusters are then dealt to train/valid/test (default 80/10/10 of proteins) in a seeded
random order, so no cluster spans two splits.

`cluster_for_splits` prefers MMseqs2 when the `mmseqs` binary is present (engine.data.mmseqs):
`easy-cluster` at --min-seq-id `identity` (identical positions / alignment length) and -c
`coverage` of both sequences, as upstream OneProt splits, then the same member linkage as above
from an all-vs-all `mmseqs search` (-s 7.5, up to 1,000 hits per sequence; `data check-leakage`
re-checks test vs train at -s 7.5 with no cap), so no pair found meeting the criteria spans two
clusters. On the demo, linkage at MMseqs2's default -s 5.7 (300 hits) still left 1 of 2,142 test
proteins >= 50% identical to a train protein; at 7.5 see README.
Without the binary (method "auto") the own clustering above is the stated fallback.
"""

from __future__ import annotations

import itertools
import random
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

import numpy as np

from engine.data import mmseqs
from engine.errors import OneProtError

DEFAULT_IDENTITY = 0.5
DEFAULT_COVERAGE = 0.8  # MMseqs2 path only: aligned fraction of both sequences
SPLIT_METHODS = ("auto", "mmseqs", "own")
LINK_SENSITIVITY = 7.5  # MMseqs2's most sensitive preset (its default 5.7 left a leak on the demo)
LINK_MAX_SEQS = 1000
DEFAULT_FRACTIONS = (0.8, 0.1, 0.1)
KMER = 5
MAX_CANDIDATES = 10
MAX_POSTING = 200


@dataclass(frozen=True)
class SplitRule:
    """How a store's splits are made (`data build`, `data merge`, `data resplit`); checked when made."""

    identity: float = DEFAULT_IDENTITY
    coverage: float = DEFAULT_COVERAGE  # MMseqs2 path only
    method: str = "auto"  # one of SPLIT_METHODS
    fractions: tuple[float, float, float] = DEFAULT_FRACTIONS  # train, valid, test shares of proteins
    seed: int = 0  # order in which whole clusters are dealt
    stratify: bool = False  # deal each family label, and the proteins with a structure, across the splits first
    strata_fractions: tuple[float, float, float] | None = None  # their shares (default: `fractions`)

    def __post_init__(self) -> None:
        for name, fr in (("--fractions", self.fractions), ("--strata-fractions", self.strata_fractions)):
            if fr is not None and (len(fr) != 3 or min(fr) < 0 or abs(sum(fr) - 1) > 1e-6):
                raise OneProtError(f"need three non-negative shares (train, valid, test) summing to 1, got {fr}", name)
        if self.method not in SPLIT_METHODS:
            raise OneProtError(f"unknown split method {self.method!r}; choose one of: {', '.join(SPLIT_METHODS)}",
                               "--split-method")
        if not 0 < self.identity <= 1:
            raise OneProtError(f"must be in (0, 1], got {self.identity}", "--identity")
        if not 0 <= self.coverage <= 1:
            raise OneProtError(f"must be in [0, 1], got {self.coverage}", "--coverage")
# Murphy et al. 2000 10-letter reduced alphabet: similar residues share a letter
_MURPHY10 = {**{a: 0 for a in "LVIM"}, "C": 1, "A": 2, "G": 3, **{a: 4 for a in "ST"}, "P": 5,
             **{a: 6 for a in "FYW"}, **{a: 7 for a in "EDNQ"}, **{a: 8 for a in "KR"}, "H": 9}
_LUT = np.full(256, 255, dtype=np.uint8)
for _a, _v in _MURPHY10.items():
    _LUT[ord(_a)] = _v


def _kmers(seq: str, k: int = KMER) -> np.ndarray:
    """Distinct reduced-alphabet k-mer codes of a sequence (k-mers containing X are dropped)."""
    codes = _LUT[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)]
    if len(codes) < k:
        return np.zeros(0, dtype=np.int64)
    win = np.lib.stride_tricks.sliding_window_view(codes, k)
    ok = (win != 255).all(axis=1)
    vals = (win[ok].astype(np.int64) * (10 ** np.arange(k - 1, -1, -1, dtype=np.int64))).sum(axis=1)
    return np.unique(vals)


def identity(a: str, b: str) -> float:
    """Identical aligned positions / length of the shorter sequence (local SW, BLOSUM62, 11/1)."""
    import parasail

    if not a or not b:
        return 0.0
    r = parasail.sw_stats_striped_sat(a, b, 11, 1, parasail.blosum62)
    return r.matches / min(len(a), len(b))


def cluster_sequences(
    sequences: Sequence[str],
    threshold: float = DEFAULT_IDENTITY,
    max_candidates: int = MAX_CANDIDATES,
    progress: Callable[[int, int, int], None] | None = None,
    link_members: bool = True,
) -> list[int]:
    """Cluster index per input sequence (clusters numbered 0.. in order of first member).

    `progress(done, total, n_clusters)` is called every 1,000 unique sequences when given
    (n_clusters is -1 during the member-linkage pass).
    """
    unique: dict[str, int] = {}
    for s in sequences:
        unique.setdefault(s, len(unique))
    useqs = list(unique)
    order = sorted(range(len(useqs)), key=lambda i: -len(useqs[i]))
    ucluster = [-1] * len(useqs)
    rep_seqs: list[str] = []
    index: dict[int, list[int]] = {}
    rep_nkmers = np.zeros(0, dtype=np.float64)
    for step, i in enumerate(order):
        if progress is not None and step and step % 1000 == 0:
            progress(step, len(order), len(rep_seqs))
        s = useqs[i]
        km = _kmers(s)
        found = -1
        if rep_seqs and len(km):
            # k-mers shared by very many representatives (low complexity, repeats) say little and
            # would make each look-up cost O(number of clusters); they are ignored
            lists = [lst for k in km.tolist() if (lst := index.get(k)) is not None and len(lst) <= MAX_POSTING]
            if lists:
                flat = np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64)
                hits = np.bincount(flat, minlength=len(rep_seqs))
                # keep representatives sharing clearly more k-mers than two random sequences would
                # (expected random overlap ~ n_q * n_rep / 10^5) and at least 2% of the shorter length
                n_rep = rep_nkmers[: len(hits)]
                need = np.maximum(np.maximum(3.0, 0.02 * np.minimum(len(km), n_rep)), 3.0 * len(km) * n_rep / 10**KMER)
                cand = np.flatnonzero(hits >= need)
                if len(cand):
                    cand = cand[np.argsort(-hits[cand], kind="stable")][:max_candidates]
                    for c in cand.tolist():
                        if identity(s, rep_seqs[c]) >= threshold:
                            found = c
                            break
        if found < 0:
            found = len(rep_seqs)
            rep_seqs.append(s)
            rep_nkmers = np.append(rep_nkmers, len(km))
            for k in km.tolist():
                index.setdefault(k, []).append(found)
        ucluster[i] = found
    if link_members:
        ucluster = _link_members(useqs, ucluster, threshold, max_candidates, progress)
    return [ucluster[unique[s]] for s in sequences]


def _candidates(km: np.ndarray, index: dict[int, list[int]], n: int, nk: np.ndarray, max_candidates: int) -> np.ndarray:
    lists = [lst for k in km.tolist() if (lst := index.get(k)) is not None and len(lst) <= MAX_POSTING]
    if not lists:
        return np.zeros(0, dtype=np.int64)
    hits = np.bincount(np.fromiter(itertools.chain.from_iterable(lists), dtype=np.int64), minlength=n)
    need = np.maximum(np.maximum(3.0, 0.02 * np.minimum(len(km), nk)), 3.0 * len(km) * nk / 10**KMER)
    cand = np.flatnonzero(hits >= need)
    return cand[np.argsort(-hits[cand], kind="stable")][:max_candidates]


def _link_members(useqs: list[str], ucluster: list[int], threshold: float, max_candidates: int,
                  progress) -> list[int]:
    """Merge clusters whose MEMBERS match at >= threshold (single linkage over found pairs).

    Greedy clustering compares a sequence only with representatives, so a member of one cluster
    can still be >= threshold identical to a member of another; dealt to different splits that
    pair would leak. Every sequence is checked against its best k-mer candidates among all
    sequences of other clusters, and matching clusters are united.
    """
    parent = list(range(max(ucluster) + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    kms = [_kmers(s) for s in useqs]
    nk = np.array([len(k) for k in kms], dtype=np.float64)
    index: dict[int, list[int]] = {}
    for i, km in enumerate(kms):
        for k in km.tolist():
            index.setdefault(k, []).append(i)
    for i, s in enumerate(useqs):
        if progress is not None and i and i % 1000 == 0:
            progress(i, len(useqs), -1)
        tried = 0
        for j in _candidates(kms[i], index, len(useqs), nk, 4 * max_candidates).tolist():
            if j == i:
                continue
            a, b = find(ucluster[i]), find(ucluster[j])
            if a == b:
                continue  # already together: no alignment needed
            tried += 1
            if identity(s, useqs[j]) >= threshold:
                parent[max(a, b)] = min(a, b)
            if tried >= max_candidates:
                break
    roots: dict[int, int] = {}
    return [roots.setdefault(find(c), len(roots)) for c in ucluster]


def assign_splits(
    clusters: Sequence[int], fractions: Sequence[float] = DEFAULT_FRACTIONS, seed: int = 0,
    strata: Sequence[str] | None = None, strata_fractions: Sequence[float] | None = None,
    fixed: dict[int, str] | None = None,
) -> list[str]:
    """Split name per item; every cluster goes whole to the split furthest below its target share.

    Without `strata`, clusters are dealt in a seeded random order by their share of all items. With
    `strata` (a label per item, "" for none: e.g. a family label, or "structure"), the clusters of each
    stratum are dealt first, rarest stratum first and largest cluster first within it, by their share of
    that stratum (`strata_fractions`, default `fractions`), so that a scarce kind of protein (a family, or
    the few with a structure) reaches every split instead of landing mostly in one by chance. A cluster
    belongs to the rarest stratum among its items. The clusters of no stratum come last, dealt by their
    share of all items, which counts the items already dealt. Clusters in `fixed` keep their split and
    count towards every share (`data resplit --keep-held-out`: only train clusters move).
    """
    names = ("train", "valid", "test")
    ids = sorted(set(clusters))
    random.Random(seed).shuffle(ids)
    sizes: dict[int, int] = {}
    for c in clusters:
        sizes[c] = sizes.get(c, 0) + 1
    total = len(clusters)
    filled = [0.0, 0.0, 0.0]
    where: dict[int, str] = dict(fixed or {})
    for c in where:
        filled[names.index(where[c])] += sizes.get(c, 0)

    def deal(order: list[int], weight: dict[int, int], shares: Sequence[float], stratum_total: int,
             stratum_filled: list[float]) -> None:
        target = [f * stratum_total for f in shares]
        for c in order:
            k = max(range(3), key=lambda j: (target[j] - stratum_filled[j]) / max(target[j], 1e-9))
            where[c] = names[k]
            stratum_filled[k] += weight[c]
            if stratum_filled is not filled:
                filled[k] += sizes[c]

    if strata is not None:
        if len(strata) != len(clusters):
            raise OneProtError(f"{len(strata)} strata for {len(clusters)} items", "strata")
        count: dict[str, int] = {}
        for st in strata:
            if st:
                count[st] = count.get(st, 0) + 1
        of_cluster: dict[int, str] = {}
        for c, st in zip(clusters, strata):  # the rarest stratum among the cluster's items
            if st and (c not in of_cluster or (count[st], st) < (count[of_cluster[c]], of_cluster[c])):
                of_cluster[c] = st
        in_stratum: dict[int, int] = {}
        for c, st in zip(clusters, strata):
            if st and of_cluster.get(c) == st:
                in_stratum[c] = in_stratum.get(c, 0) + 1
        for st in sorted(count, key=lambda x: (count[x], x)):
            members = [c for c in ids if of_cluster.get(c) == st]
            done = [0.0, 0.0, 0.0]  # the stratum's items in fixed clusters
            for c in members:
                if c in where:
                    done[names.index(where[c])] += in_stratum[c]
            todo = sorted((c for c in members if c not in where), key=lambda c: -in_stratum[c])  # stable: seeded
            deal(todo, in_stratum, strata_fractions or fractions, sum(in_stratum[c] for c in members), done)
    deal([c for c in ids if c not in where], sizes, fractions, total, filled)
    return [where[c] for c in clusters]


def union_pairs(labels: Sequence[int], pairs: Iterable[tuple[int, int]]) -> list[int]:
    """Labels after uniting the clusters of every (item, item) pair; renumbered 0.. by first item."""
    parent = list(range(max(labels, default=-1) + 1))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for i, j in pairs:
        a, b = find(labels[i]), find(labels[j])
        if a != b:
            parent[max(a, b)] = min(a, b)
    roots: dict[int, int] = {}
    return [roots.setdefault(find(c), len(roots)) for c in labels]


def own_description(identity: float) -> dict:
    """The manifest's `split_method` entry for the own clustering (`cluster_sequences`) at `identity`."""
    return {"method": "greedy clustering, longest first, then member linkage; reduced-alphabet 5-mer prefilter "
                      "+ Smith-Waterman (parasail)", "tool": "own",
            "identity": identity, "identity_definition": "identical aligned positions / shorter length",
            "coverage": None}


def split_description(how: dict, fractions: Sequence[float], seed: int, rule: SplitRule | None = None) -> dict:
    """A clustering's description (`cluster_for_splits`, `own_description`) + how its clusters were dealt."""
    out = {**how, "fractions": list(fractions), "seed": seed, "unit": "whole clusters"}
    if rule is not None and rule.stratify:
        out["stratified"] = {"strata": STRATA_RULE, "fractions": list(rule.strata_fractions or fractions)}
    return out


STRATA_RULE = ("each family label, then the proteins with a structure and no label: their clusters are dealt "
               "first, rarest stratum first, by their share of the stratum")


def protein_strata(family: Sequence, has_structure: Sequence) -> list[str]:
    """The stratum of each protein for a stratified split: its family label, else 'structure' if it has one."""
    out = []
    for f, h in zip(family, has_structure):
        label = f if isinstance(f, str) and f else ""
        out.append(f"family:{label}" if label else ("structure" if bool(h) else ""))
    return out


def clusters_and_splits(sequences: Sequence[str], rule: SplitRule, threads: int | None = None,
                        log: Callable[[str], None] = lambda s: None, strata: Sequence[str] | None = None,
                        clusters: Sequence[int] | None = None,
                        fixed: dict[int, str] | None = None) -> tuple[list[int], list[str], dict]:
    """Cluster per sequence, split per sequence (whole clusters) and the manifest's `split_method` entry.

    `strata` (per sequence, see `protein_strata`) is used when `rule.stratify`; `clusters` given keeps an
    existing clustering (`data resplit --keep-clusters`) and only deals it again; `fixed` clusters keep their
    split (see `assign_splits`).
    """
    if clusters is None:
        clusters, how = cluster_for_splits(sequences, rule.identity, rule.coverage, rule.method, threads, log)
    else:
        clusters, how = list(clusters), {"method": "kept from the previous split", "tool": "kept"}
    if rule.stratify and strata is None:
        raise OneProtError("a stratified split needs each protein's family label and structure flag", "--stratify")
    splits = assign_splits(clusters, fractions=rule.fractions, seed=rule.seed,
                           strata=strata if rule.stratify else None, strata_fractions=rule.strata_fractions,
                           fixed=fixed)
    return clusters, splits, split_description(how, rule.fractions, rule.seed, rule)


def cluster_for_splits(
    sequences: Sequence[str],
    identity: float = DEFAULT_IDENTITY,
    coverage: float = DEFAULT_COVERAGE,
    method: str = "auto",
    threads: int | None = None,
    log: Callable[[str], None] = lambda s: None,
) -> tuple[list[int], dict]:
    """Cluster per sequence and the manifest's `split_method` entry (without fractions/seed)."""
    SplitRule(identity, coverage, method)  # refuses bad values with the flag's name
    have = mmseqs.mmseqs_binary() is not None
    if method == "mmseqs" and not have:
        raise OneProtError("--split-method mmseqs needs the mmseqs binary (apt-get install mmseqs2)", "mmseqs")
    if method == "own" or not have:
        if method == "auto":
            log("mmseqs binary not found: splitting by the own greedy clustering (fallback)")
        log(f"clustering {len(sequences)} sequences at {identity:.0%} identity (own clustering)")
        clusters = cluster_sequences(sequences, threshold=identity)
        desc = own_description(identity)
        if method == "auto":
            desc["fallback"] = "mmseqs binary not found"
        return clusters, desc
    unique: dict[str, int] = {}
    for s in sequences:
        unique.setdefault(s, len(unique))
    useqs = list(unique)
    log(f"clustering {len(useqs)} distinct sequences with MMseqs2 at {identity:.0%} identity, {coverage:.0%} coverage")
    labels = mmseqs.cluster(useqs, identity, coverage, threads=threads)
    log("linking clusters whose members match (all-vs-all mmseqs search)")
    hits = mmseqs.matching_pairs(
        mmseqs.search(useqs, None, threads=threads, sensitivity=LINK_SENSITIVITY, max_seqs=LINK_MAX_SEQS,
                      min_identity=identity, coverage=coverage),
        identity, coverage)
    linked = union_pairs(labels, zip(hits["query"].tolist(), hits["target"].tolist()))
    desc = {"method": f"MMseqs2 easy-cluster, then member linkage by all-vs-all mmseqs search (-s {LINK_SENSITIVITY})",
            "tool": f"mmseqs {mmseqs.mmseqs_version()}", "identity": identity,
            "identity_definition": "identical positions / alignment length (MMseqs2 --seq-id-mode 0)",
            "coverage": coverage, "coverage_definition": "aligned fraction of both sequences (MMseqs2 --cov-mode 0)",
            "mmseqs_clusters": len(set(labels)), "linked_clusters": len(set(linked))}
    return [linked[unique[s]] for s in sequences], desc
