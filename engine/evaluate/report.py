"""Write an `evaluate` result as Markdown + HTML (text escaped) with PNG plots (matplotlib, Agg)."""

from __future__ import annotations

import html
import os
from pathlib import Path

import numpy as np


PROTOCOLS = ("Two retrieval protocols: ours (the default of `oneprot evaluate`: every split protein with both sides, "
             "ties against the model, identical content counted as a hit, analytic chance) and upstream OneProt's "
             "(`--protocol oneprot`: a seeded 1,000 pairs per ordered pair, argsort ranks with arbitrary ties, "
             "R@1/10/100/500, median rank = floor(median 0-based rank) + 1). This report uses the one named below.")


def retrieval_table(result: dict) -> list[list[str]]:
    """Rows: pair, kind, model R@1/R@10/R@100, median rank, MRR, and R@10 of each baseline + chance.

    The TM-score baseline may run on a sample of the pair's proteins: its cell then says on how many.
    """
    b = result["baselines"]
    rows = [["pair", "kind", "R@1", "R@10", "R@100", "median rank", "MRR", "unaligned R@10", "random R@10",
             "classical R@10", "TM-score R@10", "length R@10", "chance R@10", "n"]]
    for pair, r in result["retrieval"].items():
        cl, tm, ln = b["classical"].get(pair), b.get("tmscore", {}).get(pair), b.get("length", {}).get(pair)
        tm_cell = "-" if not tm else f"{tm['R@10']:.3f}" + \
            ("" if tm["n_candidates"] == r["n_candidates"] else f" (n={tm['n_candidates']})")
        rows.append([
            pair, r["kind"], f"{r['R@1']:.3f}", f"{r['R@10']:.3f}", f"{r['R@100']:.3f}", f"{r['median_rank']:g}",
            f"{r['MRR']:.3f}", f"{b['unaligned'][pair]['R@10']:.3f}", f"{b['random'][pair]['R@10']:.3f}",
            f"{cl['R@10']:.3f}" if cl else "-", tm_cell, f"{ln['R@10']:.3f}" if ln else "-",
            f"{r['chance']['R@10']:.3f}", str(r["n_queries"]),
        ])
    return rows


def upstream_table(result: dict) -> list[list[str]]:
    """Rows for `--protocol oneprot`: pair, kind, R@1/10/100/500, median rank, unaligned R@10, chance R@10, n."""
    rows = [["pair", "kind", "R@1", "R@10", "R@100", "R@500", "median rank", "unaligned R@10", "chance R@10", "n"]]
    for pair, r in result["retrieval"].items():
        rows.append([pair, r["kind"]] + [f"{r[f'R@{k}']:.3f}" for k in (1, 10, 100, 500)] +
                    [str(r["median_rank"]), f"{result['baselines']['unaligned'][pair]['R@10']:.3f}",
                     f"{r['chance']['R@10']:.3f}", str(r["n_pairs"])])
    return rows


def summary_table(result: dict) -> list[list[str]]:
    """Rows: pair, kind, beats unaligned at R@10, x chance at R@10 (and its ceiling), x chance at R@1."""
    rows = [["pair", "kind", "beats unaligned (R@10)", "x chance R@10", "max possible", "x chance R@1", "passes 5x floor"]]
    for pair, f in result.get("summary", {}).items():
        rows.append([pair, f["kind"], "yes" if f["beats_unaligned"] else "no", f"{f['x_chance']:.1f}",
                     f"{f['max_x_chance']:.1f}", f"{f['x_chance_R@1']:.1f}", "yes" if f["passes"] else "no"])
    return rows


RELATIVE_REPS = (("aligned", "model"), ("unaligned", "unaligned"), ("kmer", "3-mer"), ("tmscore", "TM-score"),
                 ("anchor_features", "anchor features"), ("unaligned_anchor_features", "unaligned anchor features"))


def relatives_table(result: dict) -> list[list[str]]:
    """Rows: pair, then P@10 / mAP of the model and each baseline present, chance, n queries / targets.

    A baseline run on a sample of the queries (TM-score) says on how many in its cell.
    """
    rel = result.get("relatives", {})
    reps = [(k, name) for k, name in RELATIVE_REPS if any(k in r for r in rel.values())]
    rows = [["pair"] + [f"{name} P@10 / mAP" for _, name in reps] + ["chance P@10 / mAP", "queries", "targets"]]
    for pair, r in rel.items():
        cells = []
        for k, _ in reps:
            v = r.get(k)
            cell = "-" if not v else f"{v['P@10']:.3f} / {v['mAP']:.3f}"
            if v and v["n_queries"] != r["n_queries"]:
                cell += f" (n={v['n_queries']})"
            cells.append(cell)
        rows.append([pair] + cells + [f"{r['chance']['P@10']:.3f} / {r['chance']['mAP']:.3f}", str(r["n_queries"]),
                                      str(r["n_targets"])])
    return rows


def evolution_table(result: dict) -> list[list[str]]:
    rows = [["modality", "representation", "ROC-AUC same vs different family", "ROC-AUC (centred)", "mean cos same",
             "mean cos different", "families"]]
    for m, reps in result["evolution"].items():
        for rep, r in reps.items():
            if r:
                centred = f"{r['roc_auc_centred']:.3f}" if "roc_auc_centred" in r else "-"
                rows.append([m, rep, f"{r['roc_auc']:.3f}", centred, f"{r['same']['mean']:.3f}",
                             f"{r['different']['mean']:.3f}", str(r["n_families"])])
    return rows


def probe_table(result: dict) -> list[list[str]]:
    rows = [["target", "representation", "accuracy", "macro-F1", "majority class", "n", "classes"]]
    for target, reps in result["probes"].items():
        for rep, r in reps.items():
            if r:
                rows.append([target, rep, f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}", f"{r['macro_f1']:.3f}",
                             f"{r['majority_class']:.3f}", str(r["n"]), str(r["classes"])])
    return rows


def markdown_table(rows: list[list[str]]) -> str:
    out = ["| " + " | ".join(rows[0]) + " |", "|" + "---|" * len(rows[0])]
    out += ["| " + " | ".join(r) + " |" for r in rows[1:]]
    return "\n".join(out)


def html_table(rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(c)}</th>" for c in rows[0])
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>" for r in rows[1:])
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def plot_retrieval(result: dict, path: Path) -> Path | None:
    """Grouped bars of R@10 per pair: model vs unaligned, classical, TM-score and length (if any), random, chance."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    pairs = list(result["retrieval"])
    if not pairs:
        return None
    b = result["baselines"]
    series = {
        "aligned model": [result["retrieval"][p]["R@10"] for p in pairs],
        "unaligned": [b["unaligned"][p]["R@10"] for p in pairs],
        "classical": [b["classical"].get(p, {}).get("R@10", np.nan) for p in pairs],
        "TM-score": [b.get("tmscore", {}).get(p, {}).get("R@10", np.nan) for p in pairs],
        "length only": [b.get("length", {}).get(p, {}).get("R@10", np.nan) for p in pairs],
        "random": [b["random"][p]["R@10"] for p in pairs],
    }
    for name, key in (("TM-score", "tmscore"), ("length only", "length")):
        if not b.get(key):
            del series[name]
    x = np.arange(len(pairs))
    w = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(6, 0.6 * len(pairs) + 2), 4))
    for k, (name, vals) in enumerate(series.items()):
        ax.bar(x + k * w - 0.4 + w / 2, vals, w, label=name)
    ax.scatter(x, [result["retrieval"][p]["chance"]["R@10"] for p in pairs], marker="_", s=200, c="k", label="chance", zorder=3)
    ax.set_xticks(x, [p.replace("structure_tokens", "3Di") for p in pairs], rotation=60, ha="right", fontsize=8)
    ax.set_ylabel("R@10")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_evolution(result: dict, modality: str, path: Path) -> Path | None:
    """Same- vs different-family cosine histograms, one panel per representation."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    reps = {k: v for k, v in result["evolution"].get(modality, {}).items() if v}
    if not reps:
        return None
    fig, axes = plt.subplots(1, len(reps), figsize=(4 * len(reps), 3), squeeze=False)
    for ax, (name, r) in zip(axes[0], reps.items()):
        bins = np.array(r["bins"])
        centres = (bins[:-1] + bins[1:]) / 2
        for key, label in (("hist_same", "same family"), ("hist_different", "different family")):
            h = np.array(r[key], dtype=float)
            ax.step(centres, h / max(h.sum(), 1), where="mid", label=label)
        ax.set_title(f"{modality}: {name}\nROC-AUC {r['roc_auc']:.3f}", fontsize=9)
        ax.set_xlabel("cosine similarity")
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def write_report(result: dict, folder: str | os.PathLike, title: str = "OneProt evaluation") -> Path:
    """Write report.md, report.html and PNGs into `folder`; returns the HTML path."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    images = []
    if result.get("protocol") == "oneprot":
        sections = [("Retrieval, upstream OneProt protocol (split: %s)" % result.get("split"), upstream_table(result))]
        return _write(result, folder, title + " (upstream protocol)", sections, images)
    p = plot_retrieval(result, folder / "retrieval_r10.png")
    if p:
        images.append(("Retrieval R@10 vs baselines", p.name))
    for m in result["evolution"]:
        p = plot_evolution(result, m, folder / f"evolution_{m}.png")
        if p:
            images.append((f"Family similarity ({m})", p.name))
    sections = [
        ("Retrieval (split: %s)" % result.get("split"), retrieval_table(result)),
        ("Floors: trained pairs vs unaligned and chance", summary_table(result)),
        ("Relatives: same-family share of the top 10 and mAP, own protein excluded", relatives_table(result)),
        ("Evolutionary relatedness", evolution_table(result)),
        ("Probes (cross-validated on the split)", probe_table(result)),
    ]
    return _write(result, folder, title, sections, images)


def _write(result: dict, folder: Path, title: str, sections: list, images: list) -> Path:
    """report.md and report.html (data text escaped) from titled tables and images."""
    rules = dict(result.get("rules", {}))
    for key in ("checkpoint", "model_hash", "baseline_checkpoint"):
        if result.get(key):
            rules[key] = str(result[key])
    md = [f"# {title}", "", PROTOCOLS, ""]
    md += [f"- {k}: {v}" for k, v in rules.items()] + [""]
    for name, rows in sections:
        md += [f"## {name}", "", markdown_table(rows) if len(rows) > 1 else "(no data)", ""]
    md += [f"![{t}]({f})" for t, f in images]
    (folder / "report.md").write_text("\n".join(md) + "\n")

    parts = [f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>",
             "<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse;margin-bottom:1.5em}"
             "td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px}th{background:#f3f3f3}</style></head><body>",
             f"<h1>{html.escape(title)}</h1><p>{html.escape(PROTOCOLS)}</p><ul>"]
    parts += [f"<li><b>{html.escape(k)}</b>: {html.escape(str(v))}</li>" for k, v in rules.items()]
    parts.append("</ul>")
    for name, rows in sections:
        parts.append(f"<h2>{html.escape(name)}</h2>" + (html_table(rows) if len(rows) > 1 else "<p>(no data)</p>"))
    for t, f in images:
        parts.append(f"<h3>{html.escape(t)}</h3><img src='{html.escape(f)}' alt='{html.escape(t)}'>")
    parts.append("</body></html>")
    out = folder / "report.html"
    out.write_text("\n".join(parts))
    return out
