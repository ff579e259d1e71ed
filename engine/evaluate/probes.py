"""Linear and small-MLP probes on frozen embeddings: how much family / EC information they carry.

Protocol: within the evaluated split, keep proteins with the label and classes with at least
MIN_PER_CLASS members; stratified k-fold cross-validation, k = min(5, smallest kept class), seeded;
report mean/std accuracy and macro-F1.
EC is probed at its first level (the enzyme class, "3" of "3.4.21.4"), since full EC numbers are
too sparse to cross-validate on a small split. The majority-class accuracy is reported as chance.
"""

from __future__ import annotations

import warnings

import numpy as np


MIN_PER_CLASS = 3


def ec_class(ec) -> str | None:
    """First EC level ('3.4.21.4' -> '3'); None for missing or malformed values."""
    if ec is None or (isinstance(ec, float) and np.isnan(ec)):
        return None
    head = str(ec).strip().split(".")[0].split(";")[0].strip()
    return head if head.isdigit() else None


def probe(vectors: np.ndarray, labels: list, folds: int = 5, seed: int = 0, kind: str = "logistic") -> dict | None:
    """Cross-validated probe accuracy and macro-F1; None when too few labelled classes remain."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score
    from sklearn.model_selection import StratifiedKFold
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    y_all = np.asarray([None if l is None or l != l or l == "" else str(l) for l in labels], dtype=object)
    classes, counts = np.unique(y_all[y_all != None].astype(str), return_counts=True)  # noqa: E711
    good = set(classes[counts >= MIN_PER_CLASS])
    keep = np.array([y in good for y in y_all])
    if len(good) < 2:
        return None
    # small splits: fewer folds rather than dropping every class smaller than `folds`
    folds = int(min(folds, counts[np.isin(classes, list(good))].min()))
    x, y = np.asarray(vectors, dtype=np.float32)[keep], y_all[keep].astype(str)
    accs, f1s = [], []
    for train, test in StratifiedKFold(folds, shuffle=True, random_state=seed).split(x, y):
        if kind == "mlp":
            clf = MLPClassifier(hidden_layer_sizes=(128,), max_iter=300, random_state=seed, early_stopping=False)
        else:
            clf = LogisticRegression(max_iter=2000, C=1.0)
        model = make_pipeline(StandardScaler(), clf)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # convergence warnings on tiny folds are expected
            model.fit(x[train], y[train])
        pred = model.predict(x[test])
        accs.append(accuracy_score(y[test], pred))
        f1s.append(f1_score(y[test], pred, average="macro"))
    majority = float(max(counts[np.isin(classes, list(good))]) / keep.sum())
    return {
        "accuracy": float(np.mean(accs)), "accuracy_std": float(np.std(accs)),
        "macro_f1": float(np.mean(f1s)), "majority_class": majority,
        "n": int(keep.sum()), "classes": int(len(good)), "folds": folds, "kind": kind,
    }
