"""`oneprot probe`: family, EC levels and user labels (classification and regression), cluster-aware CV,
the aligned embedding beside unaligned, raw-feature and 3-mer baselines; bad label files are refused."""

import json

import numpy as np
import pytest
import torch

from engine.cli import main
from engine.evaluate.probes import ec_level, is_regression, probe, regression_probe


@pytest.fixture(scope="module")
def world(tmp_path_factory, make_family_records):
    from engine.checkpoint import save_checkpoint
    from engine.data.store import write_store
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    root = tmp_path_factory.mktemp("probe")
    records = make_family_records(n_families=3, per_family=12)
    # clusters cut across families, so a cluster-grouped fold still sees every family in training
    clusters = {r.id: i % 9 for i, r in enumerate(records)}
    splits = {r.id: "train" for r in records}
    store = write_store(records, root / "store", splits, clusters)
    torch.manual_seed(0)
    enc = {"sequence": build().model.encoders["sequence"]}
    save_checkpoint(OneProt(ModelConfig(encoders=enc, dim=16)), root / "ckpt")
    rng = np.random.default_rng(0)
    labels = root / "labels.csv"
    lines = ["id,stability,kind"] + [f"{r.id},{float(i) + rng.normal():.3f},{'a' if i % 2 else 'b'}"
                                     for i, r in enumerate(records)]
    labels.write_text("\n".join(lines) + "\n")
    return root, store, labels


def test_probe_family_ec_and_user_regression(world, capsys):
    root, store, labels = world
    out = root / "probe.json"
    assert main(["probe", "--checkpoint", str(root / "ckpt"), "--data", str(store), "--labels", str(labels),
                 "--column", "stability", "--out", str(out)]) == 0
    res = json.loads(out.read_text())
    t = res["targets"]
    assert t["family"]["task"] == "classification" and t["stability"]["task"] == "regression"
    fam = t["family"]["reps"]
    assert {"aligned", "unaligned_anchor", "anchor_features", "kmer_3mer", "random"} <= set(fam)
    assert fam["kmer_3mer"]["accuracy"] == pytest.approx(1.0)  # families are mutated copies of one sequence
    assert fam["aligned"]["cv"] == "cluster-grouped"
    assert "ec_level1" in t  # synthetic EC numbers: three first-level classes
    assert {"r2", "spearman"} <= set(t["stability"]["reps"]["aligned"])
    assert "stability" in capsys.readouterr().out


def test_a_class_label_column_and_a_baseline_checkpoint(world):
    root, store, labels = world
    out = root / "probe2.json"
    assert main(["probe", "--checkpoint", str(root / "ckpt"), "--data", str(store), "--labels", str(labels),
                 "--column", "kind", "--baseline-checkpoint", str(root / "ckpt"), "--out", str(out)]) == 0
    t = json.loads(out.read_text())["targets"]
    assert t["kind"]["task"] == "classification" and "baseline_anchor_features" in t["kind"]["reps"]
    # the same checkpoint as its own baseline: identical probe results
    assert t["family"]["reps"]["unaligned_anchor"]["accuracy"] == t["family"]["reps"]["aligned"]["accuracy"]


def test_bad_label_files_are_refused(world, capsys, tmp_path):
    root, store, _ = world
    base = ["probe", "--checkpoint", str(root / "ckpt"), "--data", str(store)]
    assert main(base + ["--labels", str(tmp_path / "none.csv"), "--column", "x"]) == 1
    assert "none.csv" in capsys.readouterr().err
    bad = tmp_path / "bad.csv"
    bad.write_text("id,other\nfam0_p0,1\n")
    assert main(base + ["--labels", str(bad), "--column", "x"]) == 1
    assert "has no column 'x'" in capsys.readouterr().err
    alien = tmp_path / "alien.csv"
    alien.write_text("id,x\nnobody,1\n")
    assert main(base + ["--labels", str(alien), "--column", "x"]) == 1
    assert "none of its ids" in capsys.readouterr().err
    assert main(base + ["--labels", str(alien)]) == 1


def test_ec_levels_and_task_detection():
    assert ec_level("3.4.21.4", 1) == "3" and ec_level("3.4.21.4", 3) == "3.4.21"
    assert ec_level("6.3.2.-", 4) is None and ec_level("6.3.2.-", 3) == "6.3.2" and ec_level(None, 1) is None
    assert is_regression([str(x) for x in range(20)]) and not is_regression(["a", "b"] * 10)
    assert not is_regression([1, 2, 1, 2])


def test_grouped_cv_keeps_clusters_apart():
    rng = np.random.default_rng(0)
    # each cluster is one point cloud; the label is tied to the cluster: grouped CV must not memorise clusters
    groups = np.repeat(np.arange(12), 5)
    x = rng.normal(size=(12, 8))[groups] + 0.01 * rng.normal(size=(60, 8))
    y = np.where(rng.random(12) < 0.5, "a", "b")[groups]
    free = probe(x, list(y), seed=0)
    grouped = probe(x, list(y), seed=0, groups=list(groups))
    assert free["accuracy"] > 0.95 and grouped["accuracy"] < free["accuracy"]
    r = regression_probe(x[:, :1] * 2 + 0.1 * rng.normal(size=(60, 1)), list(x[:, 0] * 2), groups=list(groups))
    assert r["r2"] > 0.9
