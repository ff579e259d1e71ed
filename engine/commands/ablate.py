"""`oneprot ablate`: train modality subsets x seeds on one recipe and compare their sequence embeddings on valid.

    oneprot ablate --preset demo --data demo --out DIR [--seeds 3] [--budget 300 | 90s | 5m]
                   [--modalities ...] [--set KEY=VALUE ...] [--subsets all,sequence+pocket,...]
                   [--pretrained-sequence PATH] [--pretrained-structure-tokens PATH] [--threads 2]

Subsets and metrics: engine/evaluate/ablation.py. Every run trains the same recipe (engine.recipe:
the preset narrowed to the subset, plus --set overrides and the run's seed) for the same number of
steps: --budget N steps, or a time (90s, 5m) turned into steps once from a short timing of the
all-modality recipe (recorded in DIR/budget.json, so a resumed ablation keeps it). Runs live in
DIR/runs/<subset>/seed<k>/; a finished run (result.json with the same settings) is skipped and a killed
one resumes from its last checkpoint. Writes summary.json, ablation.md and ablation.png into DIR, or into
--report DIR2 (e.g. benchmarks/results/demo_ablation, which scripts/readme_tables.py reads).
Scores are on valid (the test split is refused: an ablation is a choice).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from pathlib import Path


def add_arguments(p: argparse.ArgumentParser) -> None:
    from engine.recipe import add_recipe_arguments

    add_recipe_arguments(p)
    p.add_argument("--data", default="demo", help="store name or folder")
    p.add_argument("--out", required=True, help="ablation folder: runs and checkpoints (resumable)")
    p.add_argument("--report", metavar="DIR", help="where summary.json, ablation.md and ablation.png go (default: --out), "
                   "e.g. benchmarks/results/demo_ablation to commit them without the runs")
    p.add_argument("--seeds", type=int, default=3, help="seeds per subset (0, 1, ...; default 3)")
    p.add_argument("--budget", default=None,
                   help="per run: N steps, or a time like 90s / 5m (default: the preset's train.steps)")
    p.add_argument("--subsets", default=None, help="comma-separated subset names to run (default: all of them)")
    p.add_argument("--split", default="valid", help="where subsets are compared: valid (test is refused)")
    p.add_argument("--pretrained-sequence", default=None, metavar="PATH")
    p.add_argument("--pretrained-structure-tokens", default=None, metavar="PATH")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads")


def parse_budget(text: str | None) -> tuple[str, float] | None:
    """'300' -> ('steps', 300); '90s' / '5m' / '1h' -> ('seconds', ...); None -> None."""
    from engine.errors import OneProtError

    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", str(text))
    if not m or float(m.group(1)) <= 0:
        raise OneProtError("expected a number of steps (300) or a time (90s, 5m, 1h)", f"--budget {text}")
    value, unit = float(m.group(1)), m.group(2)
    if not unit:
        if value != int(value):
            raise OneProtError("a step budget is a whole number", f"--budget {text}")
        return "steps", int(value)
    return "seconds", value * {"s": 1, "m": 60, "h": 3600}[unit]


def run(args: argparse.Namespace) -> int:
    import torch

    from engine.data.store import ProteinStore
    from engine.errors import OneProtError
    from engine.evaluate import ablation as A
    from engine.evaluate.report import markdown_table
    from engine.evaluate.selection import require_selection_split
    from engine.files import write_text_atomic
    from engine.recipe import parse_sets, recipe_from_args

    require_selection_split(args.split, "--split")
    if args.seeds < 1:
        raise OneProtError("at least one seed", f"--seeds {args.seeds}")
    budget = parse_budget(args.budget)
    if args.threads:
        torch.set_num_threads(args.threads)
    pretrained = {"sequence": args.pretrained_sequence, "structure_tokens": args.pretrained_structure_tokens}
    base = recipe_from_args(args, pretrained)  # checks the preset, modalities and --set before any work
    store = ProteinStore.open(args.data)
    # only modalities this store can train count (a preset may name more than a store holds)
    trainable = [m for m in base.model.encoders if m == "sequence" or len(store.ids(split="train", modality=m)) >= 2]
    plan = A.subsets(trainable)
    if args.subsets:
        wanted = [s.strip() for s in args.subsets.split(",") if s.strip()]
        unknown = [s for s in wanted if s not in plan]
        if unknown:
            raise OneProtError(f"unknown subsets {unknown}; this recipe has {list(plan)}", "--subsets")
        plan = {s: plan[s] for s in wanted}
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    log = lambda msg: print(msg, file=sys.stderr, flush=True)  # noqa: E731
    steps = _steps(budget, base, store, out, args, pretrained, log)
    sets = parse_sets(args.sets)
    runs, cache = [], {}  # cache: frozen encoders' valid-split features, embedded once for all runs
    for name, mods in plan.items():
        for seed in range(args.seeds):
            runs.append(_run_one(args, name, mods, seed, steps, sets, pretrained, store, out, log, cache))
    rows = A.summarise(runs, list(plan))
    reference = _reference(runs, args, store, out, cache, log)
    command = "oneprot ablate " + " ".join(_quote(a) for a in sys.argv[2:]) if sys.argv[1:2] == ["ablate"] else \
        f"oneprot ablate --preset {args.preset} --data {args.data} --out {args.out} --seeds {args.seeds}" + \
        (f" --budget {args.budget}" if args.budget else "")
    summary = {"preset": args.preset, "data": args.data, "split": args.split, "seeds": args.seeds,
               "steps_per_run": steps, "budget": f"{steps} steps" + (f" (from --budget {args.budget})" if budget and
                                                                     budget[0] == "seconds" else ""),
               "sets": args.sets, "command": command, "metrics": A.METRICS, "rows": rows, "reference": reference, "runs": runs,
               "seconds_per_run": {"mean": sum(r["seconds"] for r in runs) / len(runs),
                                   "max": max(r["seconds"] for r in runs)}}
    report = Path(args.report) if args.report else out
    report.mkdir(parents=True, exist_ok=True)
    write_text_atomic(report / "summary.json", json.dumps(summary, indent=1))
    table = markdown_table(A.table(rows, reference))
    write_text_atomic(report / "ablation.md", f"# Modality ablation ({args.split} split)\n\n`{command}`\n\n"
                      f"{steps} steps per run, seeds 0..{args.seeds - 1}; mean ± sd over seeds.\n\n{table}\n\n"
                      "![ablation](ablation.png)\n")
    A.plot(rows, report / "ablation.png", reference)
    print(table)
    log(f"{len(runs)} runs, {summary['seconds_per_run']['mean']:.1f} s per run on average (training + scoring)")
    return 0


def _reference(runs: list[dict], args, store, out: Path, cache: dict, log) -> dict:
    """The untrained reference rows (3-mer composition, frozen anchor features, chance) on the ablation's split:
    from a run scored with them, else by scoring the first run's saved model again (runs finished before the
    reference rows existed)."""
    from engine.checkpoint import load_checkpoint
    from engine.evaluate.ablation import run_metrics

    for r in runs:
        if r["metrics"].get("reference"):
            return r["metrics"]["reference"]
    first = runs[0]
    log(f"reference rows: scoring {first['subset']} seed {first['seed']} again")
    model = load_checkpoint(out / "runs" / first["subset"] / f"seed{first['seed']}" / "model")
    return run_metrics(model, store, args.split, seed=0, pooled_cache=cache)["reference"]


def _quote(a: str) -> str:
    import shlex

    return shlex.quote(a)


def _steps(budget, base, store, out: Path, args, pretrained, log) -> int:
    """Steps per run: given, the preset's, or a time budget divided by a measured all-modality step time."""
    from engine.files import write_text_atomic
    from engine.recipe import build_recipe, build_trainer, parse_sets

    if budget is None:
        return int(base.train.steps)
    if budget[0] == "steps":
        return int(budget[1])
    saved = out / "budget.json"
    if saved.is_file():
        known = json.loads(saved.read_text())
        if known.get("budget_seconds") == budget[1]:
            return int(known["steps_per_run"])
    probe_steps = 10
    stamps: list[float] = []
    preset = build_recipe(args.preset, _mods(args), [parse_sets(args.sets), {"train": {"eval_every": 0}}], pretrained)
    trainer = build_trainer(preset, store, out / "_timing",
                            on_step=[lambda m: stamps.append(time.perf_counter()) if "loss" in m else None])
    trainer.fit(steps=1 + probe_steps, final_save=False)  # the first step (allocations, lazy imports) is not timed
    per_step = (stamps[-1] - stamps[0]) / probe_steps
    steps = max(1, int(budget[1] / per_step))
    write_text_atomic(saved, json.dumps({"budget_seconds": budget[1], "seconds_per_step": per_step,
                                         "steps_per_run": steps}, indent=1))
    log(f"budget {budget[1]:.0f} s / {per_step:.2f} s per step (all modalities) -> {steps} steps per run")
    return steps


def _mods(args) -> list[str] | None:
    return [m for m in args.modalities.split(",") if m.strip()] if args.modalities else None


def pretrained_for(pretrained: dict, mods: list[str]) -> dict:
    """The pretrained weights a subset uses: a left-out encoder's weights are not part of its recipe."""
    keep = {"sequence", *mods}
    return {m: path for m, path in pretrained.items() if m in keep}


def _run_one(args, name: str, mods: list[str], seed: int, steps: int, sets: dict, pretrained, store, out: Path,
             log, cache: dict) -> dict:
    """Train and score one (subset, seed); reuse its result.json when the settings match."""
    from engine.evaluate.ablation import run_metrics
    from engine.files import write_text_atomic
    from engine.recipe import build_recipe, build_trainer

    folder = out / "runs" / name / f"seed{seed}"
    pretrained = pretrained_for(pretrained, mods)
    settings = {"preset": args.preset, "subset": name, "modalities": ["sequence"] + mods, "seed": seed, "steps": steps,
                "sets": sets, "pretrained": pretrained, "split": args.split, "data": str(args.data)}
    done = folder / "result.json"
    if done.is_file():
        cached = json.loads(done.read_text())
        if cached.get("settings") == settings:
            log(f"{name} seed {seed}: finished before, reused")
            return cached
    t = time.perf_counter()
    preset = build_recipe(args.preset, ["sequence"] + mods, [sets, {"train": {"seed": seed, "eval_every": 0}}],
                          pretrained)
    trainer = build_trainer(preset, store, folder)
    trainer.fit(steps=steps, resume=True)
    trained = time.perf_counter() - t
    metrics = run_metrics(trainer.model.eval(), store, args.split, seed=0, pooled_cache=cache)
    result = {"subset": name, "modalities": ["sequence"] + mods, "seed": seed, "settings": settings,
              "seconds": time.perf_counter() - t, "train_seconds": trained, "metrics": metrics}
    write_text_atomic(done, json.dumps(result, indent=1))
    shown = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items() if isinstance(v, float))
    log(f"{name} seed {seed}: {shown} ({result['seconds']:.0f} s)")
    return result
