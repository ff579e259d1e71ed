"""The shipped bundle belongs together: the demo checkpoint, its embeddings, their cached maps, and the committed
evaluation result (re-running `oneprot evaluate` on the demo gives the committed figures, or says which changed)."""

import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
RESULT = ROOT / "benchmarks" / "results" / "demo_evaluate" / "result.json"


@pytest.fixture(scope="module")
def model():
    from engine.checkpoint import load_checkpoint

    return load_checkpoint("demo")


def test_checkpoint_hash_equals_the_embeddings_manifest():
    from engine.embed import EmbeddingSet
    from engine.paths import resolve_checkpoint

    meta = json.loads((resolve_checkpoint("demo") / "meta.json").read_text())
    emb = EmbeddingSet.open("demo")
    assert meta["model_hash"] == emb.model_hash, "the embeddings are from another checkpoint: make demo-embeddings"
    assert json.loads(RESULT.read_text())["model_hash"] == meta["model_hash"], \
        "benchmarks/results/demo_evaluate is from another checkpoint: bash scripts/demo_reports.sh"


def test_the_cached_maps_load_for_these_embeddings():
    from engine.embed import EmbeddingSet
    from engine.projection import cached_projection

    emb = EmbeddingSet.open("demo")
    for m in emb.modalities:
        proj = cached_projection({m: emb.vectors(m)}, {m: list(emb.ids(m))}, cache_dir=emb.path)
        assert proj is not None and len(proj) == len(emb.ids(m)), f"no cached map for {m}: python -m explorer.prepare"


def _diff(old, new, path="", out=None, tol=1e-6):
    """Paths where two JSON-like values differ (numbers beyond tol)."""
    out = [] if out is None else out
    if isinstance(old, dict) and isinstance(new, dict):
        for k in old.keys() & new.keys():
            _diff(old[k], new[k], f"{path}/{k}", out, tol)
    elif isinstance(old, (int, float)) and isinstance(new, (int, float)) and not isinstance(old, bool):
        if abs(old - new) > tol:
            out.append(f"{path}: committed {old}, now {new}")
    elif isinstance(old, list) and isinstance(new, list) and len(old) == len(new):
        for i, (a, b) in enumerate(zip(old, new)):
            _diff(a, b, f"{path}[{i}]", out, tol)
    elif old != new:
        out.append(f"{path}: committed {old!r}, now {new!r}")
    return out


@pytest.mark.slow
def test_evaluate_on_the_demo_reproduces_the_committed_result(model):
    """Every modality but text (its MiniLM pass over 2,000 texts is the slow part), no TM-score, no probes: the
    pairs, relatives and family figures that remain depend only on their own modalities, so they must match."""
    from engine.checkpoint import load_checkpoint
    from engine.data.store import ProteinStore
    from engine.evaluate.run import evaluate

    committed = json.loads(RESULT.read_text())
    p = committed["params"]
    base = load_checkpoint(committed["baseline_checkpoint"]) if committed.get("baseline_checkpoint") else None
    mods = [m for m in model.modalities if m != "text"]
    now = evaluate(model, ProteinStore.open("demo"), p["split"], baseline_model=base, seed=p["seed"],
                   max_queries=p["max_queries"], modalities=mods, run_probes=False, tmscore_max=0, relatives_tm_max=0,
                   log=lambda m: None)
    for section in ("retrieval", "relatives", "evolution"):
        assert set(now[section]) <= set(committed[section]), f"{section}: new entries"
    diffs = []
    for section in ("retrieval", "relatives", "evolution"):
        diffs += _diff({k: v for k, v in committed[section].items() if k in now[section]}, now[section], section)
    for name in ("unaligned", "classical", "length"):
        b = committed["baselines"][name]
        diffs += _diff({k: v for k, v in b.items() if k in now["baselines"][name]}, now["baselines"][name], name)
    assert not diffs, "re-run differs from benchmarks/results/demo_evaluate/result.json:\n" + "\n".join(diffs[:30])
