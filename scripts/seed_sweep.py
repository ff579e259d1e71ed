"""Seed variance of demo-recipe variants: each variant trained with several seeds, mean ± sd of held-out R@10.

    python scripts/seed_sweep.py VARIANTS --pretrained-sequence DIR [--pretrained-structure-tokens DIR]
        [--modalities structure_tokens] [--seeds 0,1,2,3] [--steps 250] [--split valid] [--jobs 2]
        [--preset demo] [--data demo] [--out runs/seed_sweep]

VARIANTS is a JSON object {name: overrides}, each overrides object in engine.recipe's dict form, e.g.
'{"mask": {}, "noise": {"encoders": {"structure_tokens": {"train_mask": 0.0}}, "train": {"structure_tokens_noise": 0.2}}}'.
Every (variant, seed) run aligns the chosen modalities (sequence always) for `--steps` steps from the given
pretrained weights on one CPU thread, `--jobs` runs at a time, then scores every pair on `--split` with
engine.evaluate (no probes, no TM-score). A finished run's OUT/NAME/seedS/result.json is reused on re-runs.
Prints one line per run and a table of mean ± sd R@10 (and hits) per pair; writes OUT/summary.json.
A 3Di-only 250-step run takes about 3 minutes on the 2-core build machine.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path


def run_one(job: dict) -> dict:
    """Train one (variant, seed) and return {variant, seed, seconds, pairs: {pair: {R@10, MRR, hits, n, chance}}}."""
    import torch

    from engine.data.store import ProteinStore
    from engine.modality import parse_modality
    from engine.recipe import build_recipe, train_variant

    torch.set_num_threads(1)
    keep = {parse_modality(m).value for m in job["modalities"]} | {"sequence"}
    weights = {m: path for m, path in job["weights"].items() if m in keep}  # weights of left-out encoders are unused
    preset = build_recipe(job["preset"], job["modalities"], [job["overrides"], {"train": {"seed": job["seed"], "eval_every": 0}}],
                          weights, where="VARIANTS")
    result = train_variant(preset, ProteinStore.open(job["data"]), job["out"], job["split"], steps=job["steps"])
    return {"variant": job["name"], "seed": job["seed"], **result}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("variants", help="JSON object {name: overrides}")
    ap.add_argument("--pretrained-sequence", default=None)
    ap.add_argument("--pretrained-structure-tokens", default=None)
    ap.add_argument("--modalities", default="structure_tokens")
    ap.add_argument("--seeds", default="0,1,2,3")
    ap.add_argument("--steps", type=int, default=250)
    ap.add_argument("--split", default="valid", help="valid (test is refused: it is for reporting only)")
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--preset", default="demo")
    ap.add_argument("--data", default="demo")
    ap.add_argument("--out", default="runs/seed_sweep")
    args = ap.parse_args(argv)
    from engine.errors import OneProtError
    from engine.evaluate.selection import require_selection_split

    try:
        require_selection_split(args.split, "--split")
    except OneProtError as error:
        sys.exit(f"seed_sweep: error: {error}")
    try:
        variants = json.loads(args.variants)
    except json.JSONDecodeError as error:
        sys.exit(f"VARIANTS is not JSON: {error}")
    if not isinstance(variants, dict) or not variants or not all(isinstance(v, dict) for v in variants.values()):
        sys.exit("VARIANTS must be a non-empty object {name: overrides}")
    seeds = [int(s) for s in args.seeds.split(",") if s.strip()]
    jobs = [{"name": name, "overrides": over, "seed": seed, "out": str(Path(args.out) / name / f"seed{seed}"),
             "preset": args.preset, "data": args.data, "steps": args.steps, "split": args.split,
             "modalities": [m for m in args.modalities.split(",") if m.strip()],
             "weights": {"sequence": args.pretrained_sequence, "structure_tokens": args.pretrained_structure_tokens}}
            for name, over in variants.items() for seed in seeds]
    with ProcessPoolExecutor(max_workers=max(1, args.jobs)) as pool:
        results = list(pool.map(run_one, jobs))
    table: dict = {}
    for r in results:
        line = ", ".join(f"{p} {m['hits']}/{m['n']}" for p, m in r["pairs"].items() if "sequence" in p)
        print(f"{r['variant']} seed {r['seed']}: {line}", flush=True)
        for pair, m in r["pairs"].items():
            table.setdefault(pair, {}).setdefault(r["variant"], []).append(m)
    summary = {}
    print(f"\nmean ± sd over seeds {seeds} ({args.split} split, {args.steps} steps):")
    for pair, by_variant in table.items():
        for name, runs in by_variant.items():
            r10 = [m["R@10"] for m in runs]
            sd = statistics.stdev(r10) if len(r10) > 1 else 0.0
            row = {"R@10_mean": statistics.mean(r10), "R@10_sd": sd, "x_chance_mean": statistics.mean(r10) / runs[0]["chance"],
                   "hits": [m["hits"] for m in runs], "n": runs[0]["n"], "MRR_mean": statistics.mean(m["MRR"] for m in runs)}
            summary.setdefault(pair, {})[name] = row
            print(f"  {pair:32s} {name:12s} R@10 {row['R@10_mean']:.3f} ± {sd:.3f} ({row['x_chance_mean']:.2f}x chance) "
                  f"MRR {row['MRR_mean']:.3f} hits {row['hits']} of {row['n']}")
    from engine.files import write_text_atomic

    Path(args.out).mkdir(parents=True, exist_ok=True)
    write_text_atomic(Path(args.out) / "summary.json", json.dumps(
        {"seeds": seeds, "steps": args.steps, "split": args.split, "variants": variants, "pairs": summary}, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
