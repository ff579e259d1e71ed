"""Could a per-query or per-target background make E-values find more relatives? A valid-only comparison.

    python scripts/significance_power_valid.py [--embeddings demo] [--data demo] [--out FILE.md] [--split valid]

For every ordered modality pair, VALID queries only, out of fold (5 folds of whole clusters, dealt as
engine.significance deals them), each score variant gets the null engine.significance fits (each query's best
unrelated score, exponential tail) and two numbers:
  - false: the share of queries whose best unrelated hit reaches E <= 0.05 (a calibrated E gives 0.049);
  - found: the share of family-labelled queries with a same-family target in another 50%-identity cluster whose
    best such relative reaches E <= 0.05 (the power).
Variants: the raw cosine (what the engine uses); less the query's mean cosine to every target; less that and the
target's mean cosine to every query-modality vector (a label-free hubness); the query's z-score over its
targets; less the target's mean alone. Not cosines, the variants get a tail exponential in the score itself.
Beside them, the trivial lookup: 3-mer composition cosine (engine.evaluate.baselines, amino acids for sequence /
structure / pocket pairs, 3Di letters for 3Di <-> structure) under the same kind of null, where it applies.
The test split is refused: this is for choosing.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timezone

import numpy as np

VARIANTS = ("raw cosine", "- query mean", "- query mean - target mean", "query z-score", "- target mean")
LOOKUP = "3-mer composition"


def variants(s: np.ndarray, target_mean: np.ndarray) -> dict[str, tuple[np.ndarray, str]]:
    """Score matrices (queries x targets) of every variant, with the axis its null's tail is fitted on."""
    mq, sq = s.mean(axis=1, keepdims=True), s.std(axis=1, keepdims=True)
    return {"raw cosine": (s, "log_distance"), "- query mean": (s - mq, "score"),
            "- query mean - target mean": (s - mq - target_mean[None, :], "score"),
            "query z-score": ((s - mq) / np.maximum(sq, 1e-6), "score"), "- target mean": (s - target_mean[None, :], "score")}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--embeddings", default="demo")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--split", default="valid")
    ap.add_argument("--folds", type=int, default=5)
    ap.add_argument("--out", help="write the Markdown table here (default: print it)")
    args = ap.parse_args(argv)
    from engine.errors import OneProtError
    from engine.evaluate.selection import require_selection_split

    try:
        split = require_selection_split(args.split, "--split")
    except OneProtError as exc:
        print(exc, file=sys.stderr)
        return 2
    from engine import significance as S
    from engine.data.items import items_for
    from engine.data.store import ProteinStore
    from engine.embed import EmbeddingSet
    from engine.evaluate.baselines import classical_strings, kmer_vectors
    from engine.files import write_text_atomic

    eset, store = EmbeddingSet.open(args.embeddings), ProteinStore.open(args.data)
    p = store.proteins.set_index("id")
    held = p[p["split"] == split]
    deal = S._deal_clusters(held, args.folds, 0)
    rows = []
    for qm in eset.modalities:
        for tm in eset.modalities:
            t_ids, tv = eset.ids(tm), np.asarray(eset.vectors(tm), dtype=np.float32)
            t_fam, t_clu = S._labels(p, t_ids)
            ids = [i for i in eset.ids(qm) if i in held.index]
            fam, clu = S._labels(p, ids)
            qv = np.asarray(eset.vectors(qm), dtype=np.float32)
            s = qv[[eset.position(qm, i) for i in ids]] @ tv.T
            target_mean = qv.mean(axis=0) @ tv.T  # each target's mean cosine to every query-modality vector
            unrelated, relatives = S._unrelated(fam, clu, t_fam, t_clu), S._relatives(fam, clu, t_fam, t_clu)
            has = relatives.any(axis=1)
            fold = np.array([deal[held.at[i, "cluster"]] for i in ids])
            row = {"pair": f"{qm}->{tm}", "queries": len(ids), "with_relatives": int(has.sum())}
            scored = variants(s, target_mean)
            q_strings = classical_strings(qm, items_for(store, ids, qm), tm)
            t_strings = classical_strings(tm, items_for(store, t_ids, tm), qm)
            if q_strings is not None and t_strings is not None:
                scored[LOOKUP] = (kmer_vectors(*q_strings) @ kmer_vectors(*t_strings).T, "log_distance")
            for name, (v, axis) in scored.items():
                bu = np.where(unrelated, v, -np.inf).max(axis=1)
                br = np.where(relatives, v, -np.inf).max(axis=1)
                false = found = 0
                for f in range(args.folds):
                    out = fold == f
                    null = S.fit_null(bu[~out], len(t_ids), tail_scale=axis, min_queries=20)
                    false += int((null.evalue(bu[out & np.isfinite(bu)]) <= S.E_SIGNIFICANT).sum())
                    found += int((null.evalue(br[out & has]) <= S.E_SIGNIFICANT).sum())
                row[name] = (false / len(ids), found / max(int(has.sum()), 1))
            rows.append(row)
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    lines = [f"# E-value power by score variant, {split} split only ({stamp}, model {eset.model_hash})", "",
             f"`python scripts/significance_power_valid.py --embeddings {args.embeddings} --data {args.data}`. "
             f"Per pair: false / found (see the script's docstring), out of fold over {args.folds} folds of clusters. "
             "A calibrated E gives false 0.049; found is the power at that rate.", "",
             "| variant | false: median (range) | found: mean | found: median | pairs where it finds most |",
             "|---|---|---|---|---|"]
    best = [max(VARIANTS, key=lambda n: r[n][1]) for r in rows]
    for name in VARIANTS:
        fp, pw = np.array([r[name][0] for r in rows]), np.array([r[name][1] for r in rows])
        lines.append(f"| {name} | {np.median(fp):.3f} ({fp.min():.3f}-{fp.max():.3f}) | {pw.mean():.3f} | "
                     f"{np.median(pw):.3f} | {best.count(name)} |")
    looked = [r for r in rows if LOOKUP in r]
    for name in ("raw cosine", LOOKUP):
        fp, pw = np.array([r[name][0] for r in looked]), np.array([r[name][1] for r in looked])
        lines.append(f"| {name}, on the {len(looked)} pairs with a 3-mer lookup | {np.median(fp):.3f} "
                     f"({fp.min():.3f}-{fp.max():.3f}) | {pw.mean():.3f} | {np.median(pw):.3f} | "
                     f"{sum(r[name][1] > r['raw cosine' if name == LOOKUP else LOOKUP][1] for r in looked)} |")
    lines.append("")
    lines.append("Last column: pairs where the variant finds the most relatives (the two 3-mer rows: pairs where "
                 "it finds more than the other of the two).")
    names = (*VARIANTS, LOOKUP)
    lines += ["", "| pair | queries (with relatives) | " + " | ".join(names) + " |", "|---|---|" + "---|" * len(names)]
    for r in rows:
        lines.append(f"| {r['pair']} | {r['queries']} ({r['with_relatives']}) | "
                     + " | ".join(f"{r[n][0]:.2f} / {r[n][1]:.2f}" if n in r else "–" for n in names) + " |")
    text = "\n".join(lines) + "\n"
    if args.out:
        write_text_atomic(args.out, text)
    print(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
