"""Generate README.md's measured tables from the committed result files, so no figure is typed by hand.

    python scripts/readme_tables.py            # rewrite every generated block of README.md in place
    python scripts/readme_tables.py --check    # exit 1 (naming the blocks) when README.md differs

A generated block sits between `<!-- readme:NAME -->` and `<!-- /readme:NAME -->`; everything outside
the markers is left alone. Each block reads one committed file:
  retrieval, floors, family       benchmarks/results/demo_evaluate/result.json  (oneprot evaluate, ours)
  relatives                       the same file's relatives section
  upstream                        benchmarks/results/demo_evaluate_oneprot/result.json  (--protocol oneprot)
  probes                          benchmarks/results/demo_probe/result.json  (oneprot probe)
  embeddings                      assets/embeddings/demo/manifest.json  (the bundled embeddings' subset)
  pocket_shell                    benchmarks/results/pocket_shell_valid.json  (scripts/pocket_shell_sweep.py)
  ablation                        benchmarks/results/demo_ablation/summary.json  (oneprot ablate)
  seeds                           benchmarks/results/demo_seeds.json  (scripts/seed_report.py: 3 alignment seeds, test)
  gpu_embed                       benchmarks/results/gpu_embed_nvidia-h200_2026-11-26.md  (benchmarks/gpu_embed.py;
                                  its table and the floor lines exactly as the run printed them)
`bash scripts/demo_reports.sh` regenerates the result files and then this.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RESULTS = "benchmarks/results"
FILES = {
    "retrieval": f"{RESULTS}/demo_evaluate/result.json", "floors": f"{RESULTS}/demo_evaluate/result.json",
    "family": f"{RESULTS}/demo_evaluate/result.json", "relatives": f"{RESULTS}/demo_evaluate/result.json",
    "upstream": f"{RESULTS}/demo_evaluate_oneprot/result.json", "probes": f"{RESULTS}/demo_probe/result.json",
    "embeddings": "assets/embeddings/demo/manifest.json", "pocket_shell": f"{RESULTS}/pocket_shell_valid.json",
    "ablation": f"{RESULTS}/demo_ablation/summary.json",
    "gpu_embed": f"{RESULTS}/gpu_embed_nvidia-h200_2026-11-26.md", "seeds": f"{RESULTS}/demo_seeds.json",
}
BLOCK = re.compile(r"(<!-- readme:(\w+) -->\n)(.*?)(<!-- /readme:\2 -->)", re.S)


def _name(pair: str) -> str:
    return pair.replace("structure_tokens", "3Di").replace("->", "→")


def _table(rows: list[list[str]]) -> str:
    from engine.evaluate.report import markdown_table

    return markdown_table(rows)


def _date(res: dict) -> str:
    return str(res["created"])[:10] if res.get("created") else "date not recorded"


def _f(x: float | None) -> str:
    return "–" if x is None else f"{x:.3f}"


def retrieval(res: dict) -> str:
    """Headline retrieval: trained pairs and the emergent structure/pocket pairs, beside every baseline."""
    b = res["baselines"]
    rows = [["pair", "R@1", "R@10", "unaligned R@10", "3-mer R@10", "TM-score R@10", "length-only R@10",
             "chance R@10", "R@10 / chance", "n"]]
    for pair, r in res["retrieval"].items():
        if r["kind"] != "trained" and set(pair.split("->")) != {"pocket", "structure"}:
            continue
        cl, tm, ln = b["classical"].get(pair), b.get("tmscore", {}).get(pair), b.get("length", {}).get(pair)
        tm_cell = "–" if not tm else _f(tm["R@10"]) + ("" if tm["n_candidates"] == r["n_candidates"]
                                                         else f" (n={tm['n_candidates']})")
        cl_cell = "–" if not cl else _f(cl["R@10"]) + ("" if cl["method"].startswith("amino") else " (3Di)")
        label = _name(pair) + ("" if r["kind"] == "trained" else " (never trained)")
        rows.append([label, _f(r["R@1"]), _f(r["R@10"]), _f(b["unaligned"][pair]["R@10"]), cl_cell, tm_cell,
                     _f(ln["R@10"]) if ln else "–", _f(r["chance"]["R@10"]),
                     f"{r['R@10'] / r['chance']['R@10']:.1f}×", str(r["n_queries"])])
    n_pairs = len(res["retrieval"])
    return (_table(rows) + f"\n\nSplit: {res['split']}; checkpoint {res.get('checkpoint')} (model hash "
            f"{res.get('model_hash')}), run {_date(res)}; the full report covers all {n_pairs} ordered pairs.")


def floors(res: dict) -> str:
    """One sentence per floor of the trained pairs, as the run computed it."""
    s = {p: f for p, f in res["summary"].items() if f["kind"] == "trained"}
    beat = [p for p, f in s.items() if f["beats_unaligned"]]
    five = [p for p, f in s.items() if f["x_chance"] >= 5]
    short = [f"{_name(p)} ({f['x_chance']:.1f}×)" for p, f in s.items() if f["x_chance"] < 5]
    text = (f"{len(beat)} of {len(s)} trained pairs beat their unaligned baseline at R@10 and {len(five)} of "
            f"{len(s)} reach 5× chance")
    return text + (f"; short of 5×: {', '.join(short)}." if short else ".")


def relatives(res: dict) -> str:
    """Same-family share of the top 10 (own protein excluded) for the pairs a family search uses."""
    rel = res.get("relatives", {})
    rows = [["query → targets", "model P@10", "3-mer P@10", "TM-score P@10", "anchor features P@10", "chance P@10",
             "model mAP", "3-mer mAP", "queries"]]
    for pair, r in rel.items():
        a, b = pair.split("->")
        if b != "sequence" and pair not in ("structure->structure", "pocket->structure", "sequence->structure"):
            continue

        def cell(key, metric="P@10"):
            v = r.get(key)
            if not v:
                return "–"
            return _f(v[metric]) + ("" if v["n_queries"] == r["n_queries"] else f" (n={v['n_queries']})")

        rows.append([_name(pair), cell("aligned"), cell("kmer"), cell("tmscore"), cell("anchor_features"),
                     _f(r["chance"]["P@10"]), cell("aligned", "mAP"), cell("kmer", "mAP"), str(r["n_queries"])])
    return _table(rows) + f"\n\nSplit: {res['split']}; all {len(rel)} ordered pairs are in the report."


def family(res: dict) -> str:
    """Same- vs different-family ROC-AUC of sequence vectors and the family probe, per representation."""
    ev = res["evolution"].get("sequence", {})
    names = {"aligned": "aligned embedding", "unaligned": "unaligned (baseline heads)",
             "encoder_features": "sequence encoder features (pre-head)",
             "unaligned_encoder_features": "baseline checkpoint's encoder features", "kmer_3mer": "3-mer composition"}
    rows = [["sequence representation", "same- vs different-family ROC-AUC", "centred", "families", "proteins"]]
    for key, label in names.items():
        if ev.get(key):
            rows.append([label, _f(ev[key]["roc_auc"]), _f(ev[key].get("roc_auc_centred")),
                         str(ev[key]["n_families"]), str(ev[key]["n_proteins"])])
    probe = res.get("probes", {}).get("family", {})
    extra = ""
    if probe.get("aligned"):
        p = probe["aligned"]
        extra = (f"\n\nFamily probe on the split (logistic, {p['folds']}-fold {p.get('cv', 'stratified')}): aligned "
                 f"{_f(p['accuracy'])}, unaligned encoder {_f(probe.get('unaligned_encoder', {}).get('accuracy'))}, "
                 f"random vectors {_f(probe.get('random', {}).get('accuracy'))}, majority class "
                 f"{_f(p['majority_class'])} ({p['n']} proteins, {p['classes']} families).")
    return _table(rows) + extra


def upstream(res: dict) -> str:
    """Upstream's protocol: R@1/10/100/500 and median rank, trained pairs."""
    rows = [["pair", "R@1", "R@10", "R@100", "R@500", "median rank", "chance R@10", "pairs"]]
    for pair, r in res["retrieval"].items():
        if r["kind"] == "trained" or set(pair.split("->")) == {"pocket", "structure"}:
            rows.append([_name(pair)] + [_f(r[f"R@{k}"]) for k in (1, 10, 100, 500)] +
                        [str(r["median_rank"]), _f(r["chance"]["R@10"]), str(r["n_pairs"])])
    return _table(rows) + (f"\n\nSplit: {res['split']}, run {_date(res)}; all {len(res['retrieval'])} ordered pairs "
                           "are in the report.")


def probes(res: dict) -> str:
    """Downstream probes: one row per target, one column per representation."""
    reps = ["aligned", "unaligned_anchor", "anchor_features", "baseline_anchor_features", "kmer_3mer", "random"]
    present = [r for r in reps if any(r in t["reps"] for t in res["targets"].values())]
    rows = [["target", "n / classes"] + present + ["chance"]]
    for name, t in res["targets"].items():
        first = next(iter(t["reps"].values()))
        if t["task"] == "regression":
            rows.append([f"{name} (R²)", str(first["n"])] + [_f(t["reps"].get(r, {}).get("r2")) for r in present]
                        + ["0"])
        else:
            rows.append([name, f"{first['n']} / {first['classes']}"] +
                        [_f(t["reps"].get(r, {}).get("accuracy")) for r in present] + [_f(first["majority_class"])])
    return (_table(rows) + f"\n\nAccuracy ({res['kind']}, cross-validated with the store's 50%-identity clusters as "
            f"groups) on the {res['n_proteins']} labelled proteins of split `{res['split']}`, run {_date(res)}; chance = "
            "majority class.")


def embeddings(man: dict) -> str:
    """Which proteins the bundled embeddings hold."""
    c = man["counts"]
    parts = ", ".join(f"{c[m]:,} {m.replace('structure_tokens', '3Di')}" for m in c)
    return (f"The bundled embeddings (`assets/embeddings/demo`, model hash {man['model_hash']}) hold a subset of the "
            f"store: the test split plus every protein with a structure, pocket, family or EC label "
            f"(`scripts/build_demo_embeddings.sh`): {parts} vectors.")


def pocket_shell(res: dict) -> str:
    """The pocket-shell choice, made on valid."""
    rows = [["shell (Å)", "pair", "R@10", "chance", "× chance", "n"]]
    for r in res["rows"]:
        rows.append([f"{r['shell']:g}", _name(r["pair"]), _f(r["R@10"]), _f(r["chance"]), f"{r['x_chance']:.1f}",
                     str(r["n"])])
    return (_table(rows) + f"\n\n{res['split']} split, {res['steps']} pocket-only steps per shell "
            f"(`{res['command']}`): picked {res['picked']:g} Å.")


def ablation(res: dict) -> str:
    """Modality ablation: mean ± sd over seeds per subset, then the untrained reference rows (the engine's table)."""
    from engine.evaluate.ablation import table

    rows = table(res["rows"], res.get("reference"))
    spr = res.get("seconds_per_run") or {}
    runtime = (f" Runtime on the shared 2-core machine: {spr['mean']:.0f} s per run on average (training and scoring;"
               f" the longest {spr['max']:.0f} s), {len(res['runs'])} runs." if spr else "")
    return (_table(rows) + f"\n\n{res['split']} split; {res['budget']} per run; `{res['command']}`.{runtime}")


def seeds(res: dict) -> str:
    """Mean ± sd over alignment seeds: trained pairs' R@10 and x chance, relatives, family ROC-AUC."""
    def ms(v: dict) -> str:
        return f"{v['mean']:.3f} ± {v['sd']:.3f}"

    rows = [["trained pair", "R@10", "× chance", "best possible × chance", "n"]]
    for pair, r in res["retrieval"].items():
        rows.append([_name(pair), ms(r["R@10"]), f"{r['x_chance']['mean']:.1f}", f"{r['max_x_chance']:.1f}",
                     str(r["n"])])
    rel = [["relatives pair", "P@10 aligned", "3-mer composition", "chance", "queries"]]
    for pair, r in res["relatives"].items():
        if r["kmer_P@10"] is not None and r["n_queries"]:
            rel.append([_name(pair), ms(r["P@10"]), _f(r["kmer_P@10"]), _f(r["chance_P@10"]), str(r["n_queries"])])
    fam = res.get("family") or {}
    tail = (f"Same- vs different-family ROC-AUC of the sequence embedding: {ms(fam['roc_auc'])} (3-mer composition "
            f"{_f(fam.get('kmer_roc_auc'))}, the frozen anchor's features {_f(fam.get('anchor_features_roc_auc'))}; "
            f"{fam['n_proteins']} proteins in {fam['n_families']} families)." if fam else "")
    return (_table(rows) + "\n\n" + _table(rel) + f"\n\n{tail}\n\n{res['split']} split, {res['n_seeds']} seeds; "
            f"`{res['command']}`")


def gpu_embed(text: str) -> str:
    """GPU embedding throughput per ESM-2 size: the run's own summary and floor lines beside each baseline."""
    rows: dict[str, dict[str, str]] = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) >= 7 and cells[0][:1].isdigit() and cells[0].endswith("M"):
            rows.setdefault(cells[0], {})[cells[1]] = cells[2]
    baselines = ["fair-esm fp32", "fair-esm bf16 autocast", "transformers SDPA bf16"]
    summary = re.compile(r"^(\S+): ours ([\d,]+) tok/s = ([\d.]+)x the best baseline, ([\d.]+%) of the FLOP floor.*"
                         r"min cosine vs fp32 ([\d.]+)")
    out = [["ESM-2 (random weights)", "ours (best setting), tokens/s", *baselines, "ours ÷ best baseline",
            "of FLOP floor", "min cosine vs fp32", "floors, as the run printed them"]]
    block = text.split("```")[1] if text.count("```") >= 2 else ""
    current = None
    for line in block.splitlines():
        m = summary.match(line)
        if m:
            size = m.group(1)
            current = [size, m.group(2), *[rows.get(size, {}).get(b, "–") for b in baselines],
                       f"{float(m.group(3)):.2f}×", m.group(4), m.group(5), ""]
            out.append(current)
        elif current is not None and line.strip():
            current[-1] = (current[-1] + "; " if current[-1] else "") + line.strip().removeprefix("floor ")
    out[1:] = sorted(out[1:], key=lambda r: float(r[0].rstrip("M")))
    head = text.splitlines()[2] if len(text.splitlines()) > 2 else ""
    return _table(out) + f"\n\n{head}"


GENERATORS = {"retrieval": retrieval, "floors": floors, "relatives": relatives, "family": family,
              "upstream": upstream, "probes": probes, "embeddings": embeddings, "pocket_shell": pocket_shell,
              "ablation": ablation, "gpu_embed": gpu_embed,
              "seeds": seeds}


def render(readme: str, root: Path = ROOT) -> str:
    """README text with every generated block rewritten from its result file."""
    cache: dict[str, dict] = {}

    def fill(m: re.Match) -> str:
        name = m.group(2)
        if name not in GENERATORS:
            raise SystemExit(f"readme_tables: unknown block {name!r} in README.md")
        path = root / FILES[name]
        if not path.is_file():
            raise SystemExit(f"readme_tables: block {name!r} needs {FILES[name]}, which is missing")
        if path not in cache:
            cache[path] = path.read_text() if path.suffix == ".md" else json.loads(path.read_text())
        return m.group(1) + GENERATORS[name](cache[path]).rstrip() + "\n" + m.group(4)

    return BLOCK.sub(fill, readme)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="fail when README.md differs from the result files")
    ap.add_argument("--readme", default=str(ROOT / "README.md"))
    args = ap.parse_args(argv)
    path = Path(args.readme)
    old = path.read_text()
    new = render(old, ROOT)
    if args.check:
        stale = [m.group(2) for m, n in zip(BLOCK.finditer(old), BLOCK.finditer(new)) if m.group(0) != n.group(0)]
        if stale:
            print(f"README.md differs from the result files in: {', '.join(stale)} "
                  "(run python scripts/readme_tables.py)", file=sys.stderr)
            return 1
        print(f"README.md matches the result files ({len(BLOCK.findall(old))} blocks)")
        return 0
    if new != old:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_text(new)
        tmp.replace(path)
    print(f"README.md: {len(BLOCK.findall(new))} blocks written")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
