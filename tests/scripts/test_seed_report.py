"""scripts/seed_report.py: mean ± sd over seeds' evaluate files, refusing files from different settings."""

import importlib.util
import json
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("seed_report", ROOT / "scripts" / "seed_report.py")
seed_report = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(seed_report)


def _result(r10: float, p10: float, auc: float, params: dict | None = None) -> dict:
    chance = {"R@1": 0.025, "R@10": 0.25, "R@100": 1.0}
    return {
        "split": "test", "params": params or {"split": "test", "seed": 0}, "model_hash": f"h{r10}",
        "retrieval": {"sequence->structure": {"R@10": r10, "chance": chance, "kind": "trained", "n_queries": 40},
                      "structure->pocket": {"R@10": 0.5, "chance": chance, "kind": "emergent", "n_queries": 40}},
        "relatives": {"structure->sequence": {"aligned": {"P@10": p10}, "kmer": {"P@10": 0.55},
                                              "chance": {"P@10": 0.05}, "n_queries": 13}},
        "evolution": {"sequence": {"aligned": {"roc_auc": auc, "n_proteins": 137, "n_families": 8},
                                   "kmer_3mer": {"roc_auc": 0.76}, "encoder_features": {"roc_auc": 0.66}}},
    }


def test_mean_and_sd_over_seeds_of_trained_pairs_only(tmp_path):
    files = []
    for i, (r10, p10, auc) in enumerate([(1.0, 0.4, 0.7), (0.8, 0.5, 0.8), (0.9, 0.6, 0.75)]):
        files.append(tmp_path / f"s{i}.json")
        files[-1].write_text(json.dumps(_result(r10, p10, auc)))
    out = tmp_path / "seeds.json"
    assert seed_report.main([*map(str, files), "--out", str(out), "--command", "cmd"]) == 0
    s = json.loads(out.read_text())
    assert list(s["retrieval"]) == ["sequence->structure"]  # the emergent pair is not a trained pair
    row = s["retrieval"]["sequence->structure"]
    assert row["R@10"]["mean"] == pytest.approx(0.9) and row["R@10"]["sd"] == pytest.approx(0.1)
    assert row["x_chance"]["mean"] == pytest.approx(3.6) and row["max_x_chance"] == pytest.approx(4.0)
    assert s["relatives"]["structure->sequence"]["P@10"]["mean"] == pytest.approx(0.5)
    assert s["family"]["roc_auc"]["values"] == [0.7, 0.8, 0.75] and s["n_seeds"] == 3


def test_files_from_different_settings_are_refused(tmp_path, capsys):
    a, b = tmp_path / "a.json", tmp_path / "b.json"
    a.write_text(json.dumps(_result(1.0, 0.4, 0.7)))
    b.write_text(json.dumps(_result(1.0, 0.4, 0.7, params={"split": "test", "seed": 1})))
    assert seed_report.main([str(a), str(b), "--out", str(tmp_path / "o.json")]) == 1
    assert "different settings" in capsys.readouterr().err
    assert not (tmp_path / "o.json").exists()
