"""The test split is for reporting only: nothing under scripts/ or engine/ selects on it, and sweeps refuse it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.errors import OneProtError
from engine.evaluate.selection import require_selection_split

ROOT = Path(__file__).resolve().parents[2]
# an evaluation asked for test inside code, or a split pinned to test; a line that only reports says why
# with a "# report-only:" comment
PATTERNS = [re.compile(r"""evaluate\([^)]*["']test["']"""), re.compile(r"""split\s*=\s*["']?test\b""", re.I),
            re.compile(r"""--split[ =]["']?test\b"""), re.compile(r"""choices=[^)]*["']test["']""")]
# reporting, not selection: the evaluate command (whose job is to report on test) and split building
REPORTING = {"engine/commands/evaluate.py", "engine/commands/embed.py", "engine/evaluate/selection.py"}
SWEEPS = ["scripts/seed_sweep.py", "scripts/pocket_shell_sweep.py", "scripts/significance_power_valid.py"]


def _files():
    for folder in ("scripts", "engine"):
        for path in sorted((ROOT / folder).rglob("*")):
            rel = path.relative_to(ROOT).as_posix()
            if path.suffix in (".py", ".sh") and rel not in REPORTING and not rel.startswith("engine/data/"):
                yield rel, path.read_text()


def test_no_code_selects_on_the_test_split():
    hits = [f"{rel}:{n}: {line.strip()}" for rel, text in _files() for n, line in enumerate(text.splitlines(), 1)
            if any(p.search(line) for p in PATTERNS) and "# report-only:" not in line]
    assert not hits, "selection on the test split (choose on valid; test is for reporting):\n" + "\n".join(hits)


def test_every_script_that_trains_and_scores_guards_its_split():
    for rel, text in _files():
        trains = "Trainer(" in text or "ablate" in rel
        scores = "evaluate(" in text or "evaluate import" in text
        if rel.startswith("scripts/") and trains and scores:
            assert "require_selection_split" in text, f"{rel} trains and scores but does not refuse the test split"


def test_the_guard_refuses_test():
    assert require_selection_split("valid", "--split") == "valid"
    with pytest.raises(OneProtError, match="reporting only"):
        require_selection_split("test", "--split")


@pytest.mark.parametrize("script", SWEEPS)
def test_sweeps_refuse_to_select_on_test(script, tmp_path):
    args = {"scripts/seed_sweep.py": ["{}", "--split", "test", "--out", str(tmp_path)],
            "scripts/pocket_shell_sweep.py": ["--pretrained-sequence", str(tmp_path), "--split", "test",
                                              "--out", str(tmp_path)],
            "scripts/significance_power_valid.py": ["--split", "test", "--out", str(tmp_path / "power.md")]}[script]
    proc = subprocess.run([sys.executable, str(ROOT / script), *args], capture_output=True, text=True, timeout=120,
                          cwd=tmp_path)
    assert proc.returncode != 0
    assert "test split is for reporting only" in proc.stderr and "--split" in proc.stderr
    assert not any(tmp_path.iterdir())  # refused before any work
