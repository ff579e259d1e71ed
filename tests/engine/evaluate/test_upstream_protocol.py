"""engine.evaluate.upstream_protocol: upstream OneProt's ranks, R@k and median rank, and `--protocol oneprot`."""

import numpy as np
import pytest

from engine.evaluate.upstream_protocol import sample_rows, upstream_metrics, upstream_ranks


def test_ranks_are_zero_based_argsort_positions():
    q = np.eye(4, dtype=np.float32)
    c = np.array([[1, 0, 0, 0], [1, 0.1, 0, 0], [0, 0, 0, 1], [0, 0, 0.9, 1]], dtype=np.float32)
    # query 0: own partner first (0); query 1: partner 1 is [1, .1] vs query e1 -> beats the others -> 0
    # query 2: e3 scores c3 highest, then c2 ... own partner c2 scores 0 -> after c3 (0.9 cos) -> rank >= 1
    r = upstream_ranks(q, c)
    assert r[0] == 0 and r[1] == 0 and r[2] >= 1
    m = upstream_metrics(np.array([0, 0, 3, 5]))
    assert m["R@1"] == 0.5 and m["R@10"] == 1.0
    assert m["median_rank"] == 2  # median of (0, 0, 3, 5) = 1.5 -> floor 1 -> +1
    assert m["chance"]["R@1"] == 0.25 and m["chance"]["R@500"] == 1.0


def test_sample_is_seeded_and_capped():
    ids = [f"p{i}" for i in range(50)]
    a1, b1 = sample_rows(ids, ids[::-1], 10, seed=3)
    a2, b2 = sample_rows(ids, ids[::-1], 10, seed=3)
    assert len(a1) == 10 and np.array_equal(a1, a2) and np.array_equal(b1, b2)
    assert all(ids[i] == ids[::-1][j] for i, j in zip(a1, b1))
    a, _ = sample_rows(ids, ids[:20], 1000, seed=0)
    assert len(a) == 20  # all of them when fewer


def test_evaluate_cli_protocol_oneprot(make_family_store, tmp_path):
    import torch

    from engine.checkpoint import save_checkpoint
    from engine.cli import main
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(0)
    enc = {k: v for k, v in build().model.encoders.items() if k in ("sequence", "structure")}
    save_checkpoint(OneProt(ModelConfig(encoders=enc, dim=16)), tmp_path / "ckpt")
    store = make_family_store(tmp_path / "store")
    out = tmp_path / "r.json"
    assert main(["evaluate", "--checkpoint", str(tmp_path / "ckpt"), "--data", str(store), "--protocol", "oneprot",
                 "--out", str(out), "--report", str(tmp_path / "rep")]) == 0
    import json

    res = json.loads(out.read_text())
    assert res["protocol"] == "oneprot" and set(res["retrieval"]) == {"sequence->structure", "structure->sequence"}
    r = res["retrieval"]["sequence->structure"]
    assert {"R@1", "R@10", "R@100", "R@500", "median_rank", "n_pairs"} <= set(r) and r["n_pairs"] == 16
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "upstream" in text and "R@500" in text
