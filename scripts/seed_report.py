"""Mean ± sd over alignment seeds of one fixed recipe, from the `oneprot evaluate --out` files of each seed.

    python scripts/seed_report.py runs/uni0.eval_test.json runs/uni1.eval_test.json runs/uni2.eval_test.json \
        --out benchmarks/results/demo_seeds.json [--command "how the seeds were trained"]

Reporting only: the recipe was fixed on valid before any of these files was written, and nothing here
chooses anything. Every file must come from the same split, data and evaluation settings (checked).
Summarised per trained pair: R@10 and its ratio to chance; per relatives pair: precision@10 of the
aligned space beside 3-mer composition and chance; family ROC-AUC of the sequence embedding beside
3-mer composition. The 3-mer and chance columns do not depend on the seed (checked equal).
`scripts/readme_tables.py` renders the file as the README's `seeds` block.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path


def _ms(values: list[float]) -> dict:
    return {"mean": statistics.mean(values), "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
            "values": values}


def summarise(results: list[dict]) -> dict:
    """{retrieval, relatives, family} with mean/sd/values per entry; raises ValueError on mismatched files."""
    first = results[0]
    for r in results[1:]:
        if r["params"] != first["params"] or r["split"] != first["split"]:
            raise ValueError("the files were evaluated with different settings or splits: "
                             f"{first['split']} {first['params']} vs {r['split']} {r['params']}")
    retrieval = {}
    for pair, row in first["retrieval"].items():
        if row["kind"] != "trained":
            continue
        r10 = [r["retrieval"][pair]["R@10"] for r in results]
        chance = row["chance"]["R@10"] if isinstance(row["chance"], dict) else row["chance"]
        retrieval[pair] = {"R@10": _ms(r10), "chance_R@10": chance, "x_chance": _ms([v / chance for v in r10]),
                           "max_x_chance": 1.0 / chance, "n": row["n_queries"]}
    relatives = {}
    for pair, row in first["relatives"].items():
        aligned = [r["relatives"][pair]["aligned"]["P@10"] for r in results]
        kmer = row.get("kmer", {}).get("P@10")
        if any(r["relatives"][pair].get("kmer", {}).get("P@10") != kmer for r in results):
            raise ValueError(f"{pair}: the 3-mer baseline differs between files (different data?)")
        relatives[pair] = {"P@10": _ms(aligned), "kmer_P@10": kmer, "chance_P@10": row["chance"]["P@10"],
                           "n_queries": row["n_queries"]}
    family = {}
    seq = first["evolution"].get("sequence", {})
    if "aligned" in seq:
        family = {"roc_auc": _ms([r["evolution"]["sequence"]["aligned"]["roc_auc"] for r in results]),
                  "kmer_roc_auc": seq.get("kmer_3mer", {}).get("roc_auc"),
                  "anchor_features_roc_auc": seq.get("encoder_features", {}).get("roc_auc"),
                  "n_proteins": seq["aligned"]["n_proteins"], "n_families": seq["aligned"]["n_families"]}
    return {"split": first["split"], "params": first["params"], "n_seeds": len(results),
            "model_hashes": [r.get("model_hash") for r in results], "retrieval": retrieval,
            "relatives": relatives, "family": family}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("results", nargs="+", help="`oneprot evaluate --out` files, one per seed")
    ap.add_argument("--out", required=True)
    ap.add_argument("--command", default="", help="how the seeds were trained and evaluated (stored in the file)")
    args = ap.parse_args(argv)
    if len(args.results) < 2:
        ap.error("give at least two seeds' result files")
    try:
        summary = summarise([json.loads(Path(p).read_text()) for p in args.results])
    except (OSError, ValueError, KeyError) as exc:
        print(f"seed_report: {exc}", file=sys.stderr)
        return 1
    summary["files"] = [str(p) for p in args.results]
    summary["command"] = args.command
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    from engine.files import write_text_atomic

    write_text_atomic(out, json.dumps(summary, indent=1))
    for pair, row in summary["retrieval"].items():
        print(f"{pair}: R@10 {row['R@10']['mean']:.3f} ± {row['R@10']['sd']:.3f} "
              f"({row['x_chance']['mean']:.1f}× chance, at most {row['max_x_chance']:.1f}×)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
