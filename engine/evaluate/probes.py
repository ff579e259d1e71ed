"""Linear and small-MLP probes on frozen embeddings: how much family / EC / user-label information they carry.

Classification: keep proteins with the label and classes with at least MIN_PER_CLASS members;
k-fold cross-validation, k = min(5, smallest kept class), seeded; stratified, and when `groups` (the
store's 50%-identity clusters) are given, cluster-aware (StratifiedGroupKFold: no cluster is split
between training and testing folds, so near-identical proteins cannot leak). Reports mean/std accuracy
and macro-F1; the majority-class accuracy is the chance level.
Inputs wider than WIDE dimensions (3-mer composition) are reduced to SVD_DIMS by truncated SVD fitted
on the training folds. Regression: ridge regression on standardised features, (Group)KFold; R^2 and Spearman rho of the
held-out predictions; predicting the training mean gives R^2 <= 0.
EC is probed at every level the labels carry ("3", "3.4", "3.4.21", "3.4.21.4"); a level needs enough
labelled proteins per class to cross-validate, which the demo store only has at level 1.
"""

from __future__ import annotations

import warnings

import numpy as np

MIN_PER_CLASS = 3
MIN_REGRESSION = 10
WIDE = 1024  # features wider than this (3-mer composition: 8,000) are first reduced by truncated SVD
SVD_DIMS = 256  # ... to this many, fitted on the training folds only (keeps lbfgs fast and well conditioned)


def _steps(x: np.ndarray, seed: int) -> list:
    """Preprocessing of a probe pipeline: truncated SVD for wide inputs, then standardisation."""
    from sklearn.decomposition import TruncatedSVD
    from sklearn.preprocessing import StandardScaler

    wide = x.shape[1] > WIDE and x.shape[0] > SVD_DIMS
    return ([TruncatedSVD(SVD_DIMS, random_state=seed)] if wide else []) + [StandardScaler()]


def ec_level(ec, level: int) -> str | None:
    """The first `level` fields of an EC number ('3.4.21.4', 2 -> '3.4'); None if missing, partial or malformed."""
    if ec is None or (isinstance(ec, float) and np.isnan(ec)):
        return None
    first = str(ec).strip().split(";")[0].strip()
    parts = first.split(".")
    if len(parts) < level or not all(p.strip().isdigit() for p in parts[:level]):
        return None
    return ".".join(p.strip() for p in parts[:level])


def ec_class(ec) -> str | None:
    """First EC level ('3.4.21.4' -> '3'); None for missing or malformed values."""
    return ec_level(ec, 1)


def _clean(labels) -> np.ndarray:
    return np.asarray([None if v is None or v != v or v == "" else str(v) for v in labels], dtype=object)


def probe(vectors: np.ndarray, labels: list, folds: int = 5, seed: int = 0, kind: str = "logistic",
          groups: list | None = None) -> dict | None:
    """Cross-validated probe accuracy and macro-F1; None when too few labelled classes remain."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline

    y_all = _clean(labels)
    classes, counts = np.unique(y_all[y_all != None].astype(str), return_counts=True)  # noqa: E711
    good = set(classes[counts >= MIN_PER_CLASS])
    keep = np.array([y in good for y in y_all])
    if len(good) < 2:
        return None
    # small splits: fewer folds rather than dropping every class smaller than `folds`
    folds = int(min(folds, counts[np.isin(classes, list(good))].min()))
    x, y = np.asarray(vectors, dtype=np.float32)[keep], y_all[keep].astype(str)
    if groups is not None:
        g = np.asarray(groups)[keep]
        folds = int(min(folds, len(np.unique(g))))
        if folds < 2:
            return None
        splits = StratifiedGroupKFold(folds, shuffle=True, random_state=seed).split(x, y, g)
    else:
        splits = StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y)
    accs, f1s = [], []
    for train, test in splits:
        if len(np.unique(y[train])) < 2:
            continue  # a grouped fold can hold every member of all but one class
        if kind == "mlp":
            clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=300, random_state=seed, early_stopping=False)
        else:
            clf = LogisticRegression(max_iter=2000, C=1.0)
        model = make_pipeline(*_steps(x, seed), clf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on tiny folds are expected
            model.fit(x[train], y[train])
        pred = model.predict(x[test])
        accs.append(accuracy_score(y[test], pred))
        f1s.append(f1_score(y[test], pred, average="macro"))
    if not accs:
        return None
    majority = float(max(counts[np.isin(classes, list(good))]) / keep.sum())
    return {
        "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
        "macro_f1": float(np.mean(f1s)), "majority_class": majority,
        "n": int(keep.sum()), "classes": int(len(good)), "folds": len(accs), "kind": kind,
        "cv": "cluster-grouped" if groups is not None else "stratified",
    }


def regression_probe(vectors: np.ndarray, values: list, folds: int = 5, seed: int = 0,
                     groups: list | None = None) -> dict | None:
    """Cross-validated ridge regression: R^2 and Spearman rho of held-out predictions; None if too few values."""
    from scipy.stats import spearmanr
    from sklearn.linear_model import RidgeCV
    from sklearn.metrics import r2_score
    from sklearn.model_selection import GroupKFold, KFold
    from sklearn.pipeline import make_pipeline

    v = np.array([np.nan if x is None or x == "" else float(x) for x in values], dtype=np.float64)
    keep = np.isfinite(v)
    if keep.sum() < MIN_REGRESSION or np.unique(v[keep]).size < 2:
        return None
    x, y = np.asarray(vectors, dtype=np.float32)[keep], v[keep]
    if groups is not None:
        g = np.asarray(groups)[keep]
        folds = int(min(folds, len(np.unique(g))))
        if folds < 2:
            return None
        splits = GroupKFold(folds).split(x, y, g)
    else:
        splits = KFold(folds, shuffle=True, random_state=seed).split(x)
    pred = np.empty_like(y)
    for train, test in splits:
        model = make_pipeline(*_steps(x, seed), RidgeCV(alphas=np.logspace(-2, 4, 13)))
        model.fit(x[train], y[train])
        pred[test] = model.predict(x[test])
    rho = spearmanr(y, pred).statistic
    return {"r2": float(r2_score(y, pred)), "spearman": float(0.0 if rho != rho else rho), "n": int(keep.sum()),
            "folds": folds, "kind": "ridge", "cv": "cluster-grouped" if groups is not None else "shuffled"}


def is_regression(values: list) -> bool:
    """A label column is a regression target when every present value is a number and they take > 10 values."""
    present = [x for x in values if x is not None and x == x and x != ""]
    try:
        nums = [float(x) for x in present]
    except (TypeError, ValueError):
        return False
    return len(set(nums)) > 10
