"""Do evolutionarily related proteins point in similar directions? Same- vs different-family cosines.

For every pair of family-labelled proteins (a seeded sample when there are too many pairs), the
cosine similarity of their vectors is put in the same-family or the different-family group. The
ROC-AUC of cosine as a same-family detector summarises the separation (0.5 = none, 1 = perfect);
histograms on fixed bins show the two distributions. Run on the aligned space and on the
unaligned representations to see what alignment changed. `roc_auc_centred` is the same with the
set's mean vector subtracted first (cosine of centred vectors), which keeps a shared offset, as raw
features of a frozen language model carry, from swamping the comparison.
"""

from __future__ import annotations

import numpy as np

BINS = np.linspace(-1.0, 1.0, 41)
MAX_PAIRS = 200_000


def family_similarity(vectors: np.ndarray, families: list, seed: int = 0, max_pairs: int = MAX_PAIRS) -> dict | None:
    """Same/different-family cosine distributions and ROC-AUC; None with fewer than 2 families."""
    from sklearn.metrics import roc_auc_score

    keep = [i for i, f in enumerate(families) if f is not None and f == f and str(f) != ""]
    if len(keep) < 3:
        return None
    x = np.asarray(vectors, dtype=np.float32)[keep]
    x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    fam = np.asarray([str(families[i]) for i in keep])
    if len(set(fam)) < 2:
        return None
    n = len(keep)
    total = n * (n - 1) // 2
    rng = np.random.default_rng(seed)
    if total <= max_pairs:
        i, j = np.triu_indices(n, k=1)
    else:
        i = rng.integers(0, n, size=max_pairs)
        j = rng.integers(0, n, size=max_pairs)
        ok = i != j
        i, j = i[ok], j[ok]
    sims = np.einsum("ij,ij->i", x[i], x[j])
    same = fam[i] == fam[j]
    if same.all() or not same.any():
        return None
    auc = float(roc_auc_score(same, sims))
    c = np.asarray(vectors, dtype=np.float32)[keep]
    c = c - c.mean(axis=0, keepdims=True)
    c = c / np.maximum(np.linalg.norm(c, axis=1, keepdims=True), 1e-12)
    auc_centred = float(roc_auc_score(same, np.einsum("ij,ij->i", c[i], c[j])))
    return {
        "roc_auc": auc,
        "roc_auc_centred": auc_centred,
        "n_proteins": int(n),
        "n_families": int(len(set(fam))),
        "n_pairs": int(len(sims)),
        "same": _summary(sims[same]),
        "different": _summary(sims[~same]),
        "bins": [float(b) for b in BINS],
        "hist_same": np.histogram(np.clip(sims[same], -1, 1), bins=BINS)[0].tolist(),
        "hist_different": np.histogram(np.clip(sims[~same], -1, 1), bins=BINS)[0].tolist(),
    }


def _summary(s: np.ndarray) -> dict:
    return {"n": int(len(s)), "mean": float(s.mean()), "median": float(np.median(s)), "std": float(s.std())}
