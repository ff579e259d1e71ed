"""scripts/seed_sweep.py: every (variant, seed) trains and is scored; results are cached; bad input is refused."""

import importlib.util
import json
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]

# A named module (not runpy's '<run_path>'), so the worker processes can unpickle its run_one.
_spec = importlib.util.spec_from_file_location("seed_sweep", ROOT / "scripts" / "seed_sweep.py")
seed_sweep = importlib.util.module_from_spec(_spec)
sys.modules["seed_sweep"] = seed_sweep
_spec.loader.exec_module(seed_sweep)
main = seed_sweep.main


def test_variants_by_seeds_summary_and_cache(make_alignment_store, tmp_path, capsys):
    store = make_alignment_store(tmp_path / "store", n=24)
    variants = {"mask": {"train": {"batch_size": 8}},
                "noise": {"encoders": {"structure_tokens": {"train_mask": 0.0}},
                          "train": {"batch_size": 8, "structure_tokens_noise": 0.3}}}
    argv = [json.dumps(variants), "--preset", "tiny", "--data", str(store), "--seeds", "0,1", "--steps", "2",
            "--jobs", "1", "--out", str(tmp_path / "sweep")]
    assert main(argv) == 0
    summary = json.loads((tmp_path / "sweep" / "summary.json").read_text())
    pair = summary["pairs"]["structure_tokens->sequence"]
    assert set(pair) == {"mask", "noise"} and len(pair["noise"]["hits"]) == 2
    assert 0.0 <= pair["mask"]["R@10_mean"] <= 1.0 and pair["mask"]["n"] > 0
    first = (tmp_path / "sweep" / "noise" / "seed1" / "result.json").read_text()
    config = json.loads((tmp_path / "sweep" / "noise" / "seed1" / "model" / "config.json").read_text())
    assert config["encoders"]["structure_tokens"]["train_mask"] == 0.0
    capsys.readouterr()
    assert main(argv) == 0  # the second call reuses every finished run
    assert (tmp_path / "sweep" / "noise" / "seed1" / "result.json").read_text() == first
    assert "mean ± sd" in capsys.readouterr().out


@pytest.mark.parametrize("bad", ["{}", "[1]", "nope", '{"a": 1}'])
def test_bad_variants_exit_with_a_message(tmp_path, bad):
    with pytest.raises(SystemExit) as exc:
        main([bad, "--out", str(tmp_path / "s")])
    assert "VARIANTS" in str(exc.value)
