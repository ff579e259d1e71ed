"""The `oneprot` dispatcher: help, unknown commands, and user errors printed without a traceback."""

import subprocess
import sys

from engine import cli


def test_help_lists_every_command(capsys):
    assert cli.main([]) == 2
    out = capsys.readouterr().out
    for name in cli.COMMANDS:
        assert name in out


def test_every_command_module_exists_and_has_its_entry_points():
    import importlib

    for module, _ in cli.COMMANDS.values():
        mod = importlib.import_module(f"engine.commands.{module}")
        assert callable(mod.add_arguments) and callable(mod.run)


def test_user_error_is_one_line_without_traceback(tmp_path):
    missing = tmp_path / "nowhere"
    proc = subprocess.run(
        [sys.executable, "-m", "engine.cli", "data", "stats", str(missing), "--json"],
        capture_output=True, text=True, timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert str(missing) in proc.stderr
