"""scripts/align_variant.py: preset overrides reach the run's saved config; bad overrides are refused."""

import json
import runpy
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "tests" / "engine"))

from alignment_store import make_alignment_store  # noqa: E402

main = runpy.run_path(str(ROOT / "scripts" / "align_variant.py"))["main"]


def test_overrides_change_the_trained_model(tmp_path):
    store = make_alignment_store(tmp_path / "store", n=24)
    over = {"encoders": {"structure_tokens": {"train_mask": 0.2}}, "train": {"eval_every": 0, "batch_size": 8}}
    assert main([json.dumps(over), str(tmp_path / "run"), "--preset", "tiny", "--data", str(store),
                 "--modalities", "structure_tokens", "--steps", "2"]) == 0
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())
    assert config["encoders"]["structure_tokens"]["train_mask"] == 0.2


@pytest.mark.parametrize("bad", ['[1]', '{"model": {}}', 'not json'])
def test_malformed_overrides_exit_with_a_message(tmp_path, bad):
    with pytest.raises(SystemExit) as exc:
        main([bad, str(tmp_path / "run"), "--preset", "tiny"])
    assert "OVERRIDES" in str(exc.value)


def test_unknown_fields_are_refused(tmp_path):
    store = make_alignment_store(tmp_path / "store", n=24)
    assert main(['{"train": {"nope": 1}}', str(tmp_path / "run"), "--preset", "tiny", "--data", str(store)]) != 0


def test_the_preset_is_unchanged_afterwards(tmp_path):
    from engine.presets import get_preset

    main(['{"train": {"steps": 7}}', str(tmp_path / "run"), "--preset", "tiny", "--data", "/nonexistent"])
    assert get_preset("tiny").train.steps != 7
