"""Modality ablations: which encoders, trained beside the sequence anchor, make its embedding better?

Subsets (the paper's comparison): all modalities; the sequence anchor with each other modality alone;
all minus each one (duplicates dropped). Every subset is trained with the same recipe, step budget and
seeds, then scored on valid (choices are made there; test is refused):
* partner retrieval: mean R@10 over the subset's trained pairs (sequence <-> modality, both directions);
* relatives: same-family precision@10 of sequence -> sequence (own protein excluded);
* family ROC-AUC: same- vs different-family cosine of sequence vectors;
* probe: cluster-grouped logistic family-probe accuracy on the sequence embedding.
The last three read only the sequence embedding, so they compare subsets directly; partner retrieval
averages different pairs per subset and is a sanity check rather than a comparison.
"""

from __future__ import annotations

import statistics
from pathlib import Path

METRICS = [
    {"key": "partner_R@10", "label": "partner R@10 (mean of trained pairs)"},
    {"key": "relatives_P@10", "label": "relatives P@10 (sequence→sequence)"},
    {"key": "family_roc_auc", "label": "family ROC-AUC (sequence)"},
    {"key": "probe_accuracy", "label": "family probe accuracy (sequence)"},
]


def subsets(modalities: list[str], anchor: str = "sequence") -> dict[str, list[str]]:
    """{name: non-anchor modalities}: all, sequence + each one, all minus each one (no duplicate sets)."""
    others = [m for m in modalities if m != anchor]
    out: dict[str, list[str]] = {"all": list(others)}
    seen = {frozenset(others)}
    for m in others:
        if frozenset([m]) not in seen:
            out[f"{anchor}+{m}"] = [m]
            seen.add(frozenset([m]))
    for m in others:
        rest = [x for x in others if x != m]
        if rest and frozenset(rest) not in seen:
            out[f"all-{m}"] = rest
            seen.add(frozenset(rest))
    return out


def run_metrics(model, store, split: str, seed: int = 0, pooled_cache: dict | None = None) -> dict:
    """The four ablation metrics of one trained model on `split` (no TM-score).

    pooled_cache: shared across the runs of one ablation, so frozen encoders (text) embed the split once."""
    from engine.evaluate.run import evaluate
    from engine.evaluate.selection import require_selection_split

    require_selection_split(split, "split")
    res = evaluate(model, store, split, seed=seed, run_probes=True, tmscore_max=0, relatives_tm_max=0,
                   log=lambda m: None, pooled_cache=pooled_cache)
    trained = {p: r for p, r in res["retrieval"].items() if r["kind"] == "trained"}
    seq_rel = res["relatives"].get("sequence->sequence", {}).get("aligned")
    fam = res["evolution"].get("sequence", {}).get("aligned")
    probe = res["probes"].get("family", {}).get("aligned")  # logistic, cluster-grouped folds
    return {
        "partner_R@10": statistics.mean(r["R@10"] for r in trained.values()) if trained else None,
        "relatives_P@10": seq_rel["P@10"] if seq_rel else None,
        "family_roc_auc": fam["roc_auc"] if fam else None,
        "probe_accuracy": probe["accuracy"] if probe else None,
        "pairs": {p: r["R@10"] for p, r in trained.items()},
        "reference": reference_rows(res),
    }


REFERENCES = {  # reference rows beside the subsets: no training of any kind, the same split and queries
    "3-mer composition": ("kmer", "kmer_3mer", None),
    "frozen anchor features": ("anchor_features", "encoder_features", None),
    "chance": ("chance", None, "majority_class"),
}


def reference_rows(res: dict) -> dict[str, dict[str, float]]:
    """{reference: {metric: value}} from one evaluation: what the sequence metrics are without alignment."""
    rel = res["relatives"].get("sequence->sequence", {})
    fam = res["evolution"].get("sequence", {})
    probe = res["probes"].get("family", {}).get("aligned") or {}
    out = {}
    for name, (rel_key, fam_key, probe_key) in REFERENCES.items():
        row = {}
        if isinstance(rel.get(rel_key), dict) and rel[rel_key].get("P@10") is not None:
            row["relatives_P@10"] = rel[rel_key]["P@10"]
        if fam_key and isinstance(fam.get(fam_key), dict):
            row["family_roc_auc"] = fam[fam_key]["roc_auc"]
        if name == "chance":
            row["family_roc_auc"] = 0.5
        if probe_key and probe.get(probe_key) is not None:
            row["probe_accuracy"] = probe[probe_key]
        if row:
            out[name] = row
    return out


def summarise(runs: list[dict], order: list[str]) -> list[dict]:
    """Rows per subset (in `order`): n_seeds and {metric: {mean, sd, values}} over its seeds."""
    rows = []
    for name in order:
        mine = [r for r in runs if r["subset"] == name]
        if not mine:
            continue
        metrics = {}
        for m in METRICS:
            vals = [r["metrics"][m["key"]] for r in mine if r["metrics"].get(m["key"]) is not None]
            if vals:
                metrics[m["key"]] = {"mean": statistics.mean(vals), "sd": statistics.stdev(vals) if len(vals) > 1 else 0.0,
                                     "values": vals}
        rows.append({"subset": name, "modalities": mine[0]["modalities"], "n_seeds": len(mine), "metrics": metrics,
                     "seconds_mean": statistics.mean(r["seconds"] for r in mine)})
    return rows


def table(rows: list[dict], reference: dict[str, dict[str, float]] | None = None) -> list[list[str]]:
    """Markdown-ready rows: subset, seeds, mean ± sd of each metric; then the untrained reference rows."""
    out = [["subset", "seeds"] + [m["label"] for m in METRICS] + ["s / run"]]
    for r in rows:
        cells = []
        for m in METRICS:
            v = r["metrics"].get(m["key"])
            cells.append("–" if v is None else f"{v['mean']:.3f} ± {v['sd']:.3f}")
        out.append([r["subset"], str(r["n_seeds"])] + cells + [f"{r['seconds_mean']:.0f}"])
    for name, vals in (reference or {}).items():
        out.append([f"{name} (no training)", "–"] + [f"{vals[m['key']]:.3f}" if m["key"] in vals else "–"
                                                    for m in METRICS] + ["–"])
    return out


REFERENCE_STYLE = {"3-mer composition": ("#c0392b", "--"), "frozen anchor features": ("#27ae60", "-."),
                   "chance": ("#777777", ":")}


def plot(rows: list[dict], path: Path, reference: dict[str, dict[str, float]] | None = None) -> Path:
    """One panel per metric: mean ± sd bars per subset, each seed as a dot, reference rows as lines."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, axes = plt.subplots(1, len(METRICS), figsize=(4.2 * len(METRICS), 3.8), squeeze=False)
    names = [r["subset"].replace("structure_tokens", "3Di") for r in rows]
    x = np.arange(len(rows))
    for ax, m in zip(axes[0], METRICS):
        means = [r["metrics"].get(m["key"], {}).get("mean", np.nan) for r in rows]
        sds = [r["metrics"].get(m["key"], {}).get("sd", 0.0) for r in rows]
        ax.bar(x, means, yerr=sds, capsize=3, color="#7aa6c2")
        for i, r in enumerate(rows):
            vals = r["metrics"].get(m["key"], {}).get("values", [])
            ax.scatter([i] * len(vals), vals, s=8, c="k", zorder=3)
        for name, vals in (reference or {}).items():
            if m["key"] in vals:
                colour, style = REFERENCE_STYLE.get(name, ("k", "--"))
                ax.axhline(vals[m["key"]], color=colour, linestyle=style, linewidth=1, label=f"{name} (no training)")
        if ax.get_legend_handles_labels()[0]:
            ax.legend(fontsize=6, loc="lower left")
        ax.set_xticks(x, names, rotation=60, ha="right", fontsize=7)
        ax.set_title(m["label"], fontsize=8)
        ax.set_ylim(0, 1)
    fig.tight_layout()
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=110)
    plt.close(fig)
    tmp.replace(path)
    return path
