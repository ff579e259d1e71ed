"""`oneprot probe`: downstream probes on the aligned sequence embedding against unaligned, raw and 3-mer features.

    oneprot probe --checkpoint C --data D [--baseline-checkpoint B] [--labels FILE.csv --column NAME]
                  [--split all|train|valid|test] [--kind logistic|mlp] [--out FILE.json]

Targets: the store's family, EC at every level it carries, and a user label column (CSV with an `id`
column matching the store's ids; classification, or ridge regression when the column is numeric with
> 10 distinct values). Every target is cross-validated with the store's 50%-identity clusters as
groups. Representations, in the same run: the aligned sequence embedding; the unaligned anchor (the
baseline checkpoint's sequence embedding, or this checkpoint's encoder under seeded fresh heads); the
sequence encoder's raw pooled features before the head (the frozen anchor's, for a frozen encoder); the
baseline checkpoint's raw features when given; amino-acid 3-mer composition.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

EC_LEVELS = (1, 2, 3, 4)


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--checkpoint", default="demo", help="checkpoint folder or 'demo'")
    p.add_argument("--data", default="demo", help="store folder or 'demo'")
    p.add_argument("--baseline-checkpoint", help="the unaligned anchor (default: seeded fresh heads on this checkpoint)")
    p.add_argument("--labels", metavar="FILE.csv", help="a CSV with an id column and the label column")
    p.add_argument("--column", metavar="NAME", help="the label column of --labels")
    p.add_argument("--id-column", default="id", help="the id column of --labels (default: id)")
    p.add_argument("--split", default="all", choices=("all", "train", "valid", "test"),  # report-only: no choice
                   help="which proteins to probe (default all: labels are never used in alignment training)")
    p.add_argument("--kind", default="logistic", choices=("logistic", "mlp"), help="classifier for class targets")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--batch-tokens", type=int, default=16_384)
    p.add_argument("--device", default="auto")
    p.add_argument("--out", metavar="FILE", help="write the JSON result here (atomic)")
    p.add_argument("--json", action="store_true", help="print the JSON result (default: a table)")


def read_labels(path: str, column: str, id_column: str = "id") -> dict[str, object]:
    """{id: value} from a user CSV; a clear error naming the file or column when it cannot be used."""
    import pandas as pd

    from engine.errors import OneProtError

    try:
        table = pd.read_csv(path, dtype={id_column: str})
    except FileNotFoundError:
        raise OneProtError("no such file", path) from None
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as error:
        raise OneProtError(f"not a readable CSV ({error})", path) from None
    for name in (id_column, column):
        if name not in table.columns:
            raise OneProtError(f"has no column {name!r} (columns: {', '.join(map(str, table.columns))})", path)
    if table[id_column].duplicated().any():
        dup = table[id_column][table[id_column].duplicated()].iloc[0]
        raise OneProtError(f"id {dup!r} appears more than once", f"{path}:{id_column}")
    vals = table[column].where(table[column].notna(), None)
    return dict(zip(table[id_column].astype(str), vals.tolist()))


def run_probes(model, store, ids: list[str], targets: dict[str, list], baseline_model=None, seed: int = 0,
               kind: str = "logistic", batch_tokens: int = 16_384, log=print) -> dict:
    """{target: {"task", reps: {representation: metrics}}} for the given proteins and label lists."""
    import numpy as np

    from engine.data.items import items_for
    from engine.evaluate import baselines as B
    from engine.evaluate.probes import is_regression, probe, regression_probe

    items = items_for(store, ids, "sequence")
    pooled = B.pooled_features(model, "sequence", items, batch_tokens)
    reps = {"aligned": B.apply_head(model.heads["sequence"], pooled)}
    if baseline_model is None:
        reps["unaligned_anchor"] = B.apply_head(B.random_heads(model, seed)["sequence"], pooled)
    else:
        base = B.pooled_features(baseline_model, "sequence", items, batch_tokens)
        reps["unaligned_anchor"] = B.apply_head(baseline_model.heads["sequence"], base)
        reps["baseline_anchor_features"] = base
    reps["anchor_features"] = pooled
    reps["kmer_3mer"] = B.kmer_vectors([str(x) for x in items], B.AMINO)
    groups = store.proteins.set_index("id")["cluster"].reindex(ids).tolist()
    out = {}
    for name, labels in targets.items():
        regression = is_regression(labels)
        res = {}
        for rep, x in reps.items():
            if regression:
                res[rep] = regression_probe(x, labels, seed=seed, groups=groups)
            else:
                res[rep] = probe(x, labels, seed=seed, kind=kind, groups=groups)
        if not regression:
            res["random"] = probe(B.random_vectors(len(ids), reps["aligned"].shape[1], seed + 3), labels, seed=seed,
                                  kind=kind, groups=groups)
        res = {k: v for k, v in res.items() if v is not None}
        if res:
            out[name] = {"task": "regression" if regression else "classification", "reps": res}
            log(f"probed {name}: {len(res)} representations")
        else:
            log(f"skipped {name}: too few labelled proteins or classes to cross-validate")
    return out


def probe_table(result: dict) -> list[list[str]]:
    """Rows: target, representation, score (accuracy or R^2, with its spread), second score, chance, n."""
    rows = [["target", "task", "representation", "accuracy / R²", "macro-F1 / Spearman", "chance", "n", "classes",
             "CV"]]
    for target, t in result["targets"].items():
        for rep, r in t["reps"].items():
            if t["task"] == "regression":
                rows.append([target, "regression", rep, f"{r['r2']:.3f}", f"{r['spearman']:.3f}", "0 (mean)",
                             str(r["n"]), "-", f"{r['folds']}-fold {r['cv']}"])
            else:
                rows.append([target, "classification", rep, f"{r['accuracy']:.3f} ± {r['accuracy_std']:.3f}",
                             f"{r['macro_f1']:.3f}", f"{r['majority_class']:.3f}", str(r["n"]), str(r["classes"]),
                             f"{r['folds']}-fold {r['cv']}"])
    return rows


def run(args: argparse.Namespace) -> int:
    from engine.checkpoint import load_checkpoint
    from engine.commands.embed import pick_device
    from engine.commands.evaluate import _prepare_out
    from engine.data.store import ProteinStore
    from engine.errors import OneProtError
    from engine.evaluate.probes import ec_level
    from engine.evaluate.report import markdown_table

    if bool(args.labels) != bool(args.column):
        raise OneProtError("--labels and --column go together", "--labels" if args.labels else "--column")
    out = _prepare_out(args.out) if args.out else None
    user = read_labels(args.labels, args.column, args.id_column) if args.labels else None
    store = ProteinStore.open(args.data)
    p = store.proteins if args.split == "all" else store.proteins[store.proteins["split"] == args.split]
    known = set(p["id"])
    if user is not None and not (set(user) & known):
        raise OneProtError(f"none of its ids is a protein of the store{'' if args.split == 'all' else ' split ' + args.split}",
                           args.labels)
    fam, ec = p.set_index("id")["family"], p.set_index("id")["ec"]
    labelled = fam.notna() | ec.notna()
    if user is not None:
        labelled |= p["id"].isin([k for k, v in user.items() if v is not None]).to_numpy()
    ids = p["id"][labelled.to_numpy()].tolist()
    if not ids:
        raise OneProtError("no protein carries a family, EC or user label", args.data)
    clean = lambda v: None if v is None or v != v or v == "" else v  # noqa: E731
    targets = {"family": [clean(fam[i]) for i in ids]}
    for level in EC_LEVELS:
        targets[f"ec_level{level}"] = [ec_level(ec[i], level) for i in ids]
    if user is not None:
        targets[args.column] = [clean(user.get(i)) for i in ids]
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    device = pick_device(args.device)
    model = load_checkpoint(args.checkpoint, map_location=device)
    if "sequence" not in model.modalities:
        raise OneProtError("the checkpoint has no sequence encoder", args.checkpoint)
    baseline = load_checkpoint(args.baseline_checkpoint, map_location=device) if args.baseline_checkpoint else None
    log(f"embedding {len(ids)} labelled sequences")
    targets_out = run_probes(model, store, ids, targets, baseline, args.seed, args.kind, args.batch_tokens, log)
    result = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "checkpoint": str(args.checkpoint), "model_hash": getattr(model, "checkpoint_meta", {}).get("model_hash"),
              "baseline_checkpoint": args.baseline_checkpoint, "split": args.split, "n_proteins": len(ids),
              "labels": args.labels, "column": args.column, "kind": args.kind, "targets": targets_out,
              "rules": {"cv": "cross-validation with the store's 50%-identity clusters as groups (no cluster in both "
                              "training and held-out folds)",
                        "representations": "aligned = sequence embedding; unaligned_anchor = baseline checkpoint's (or "
                                           "seeded fresh heads'); anchor_features = the sequence encoder's pooled "
                                           "output before the head; kmer_3mer = amino-acid 3-mer composition; random "
                                           "= seeded random vectors"}}
    text = json.dumps(result, indent=2)
    if out is not None:
        tmp = out.with_name(out.name + ".tmp")
        tmp.write_text(text)
        os.replace(tmp, out)
    print(text if args.json else markdown_table(probe_table(result)))
    return 0
