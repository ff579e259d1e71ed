"""Live alignment from the page: a background run with progress, curves, live map, cancel, and reuse."""

from __future__ import annotations

from pathlib import Path

import pytest

from explorer.state import ExplorerState
from explorer.training_run import LiveRun
from explorer.views.training import TrainingView

pytestmark = pytest.mark.slow


def test_live_run_trains_reembeds_and_is_usable(options, fast_projection, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    before = {p for p in Path.cwd().iterdir() if p.name != "runs"}
    options.runs_dir = str(tmp_path / "runs")  # a folder named on the command line (default: per-user data)
    state = ExplorerState(options)
    view = TrainingView(state=state)
    assert view.loss_pane.object is None and view.map_pane.object is None  # no plots (nor HoloViews) before a run
    view.steps.value, view.batch.value, view.eval_every.value = 6, 8, 3
    view._start()
    assert state.error == "" and view.run is not None and view.start.disabled
    view.run.join(timeout=600)
    view.poll()
    snap = view.run.snapshot()
    assert snap.status == "finished", snap.message
    # the real wall-clock total and its phases, not the trainer's own seconds
    assert "in all: training" in snap.message and "re-embedding" in snap.message
    assert set(snap.phases) == {"training", "re-embedding"} and all(v >= 0 for v in snap.phases.values())
    assert Path(snap.model_dir).is_relative_to(tmp_path / "runs")
    assert {p for p in Path.cwd().iterdir() if p.name != "runs"} == before  # only the named runs folder
    assert [s for s, _, _ in snap.losses] == [1, 2, 3, 4, 5, 6]
    assert {m for _, m, _, _ in snap.recalls} >= {"structure"} and snap.map_points is not None
    assert view.progress.value == 100 and not view.use.disabled and not view.start.disabled
    assert "InfoNCE" in view.loss_pane.object.opts.get().kwargs["title"] and view.map_pane.object is not None
    assert Path(snap.embeddings_dir, "manifest.json").is_file()
    view._use()
    assert state.error == "" and state.checkpoint == str(Path(snap.model_dir).resolve())
    assert state.query_protein("kin00_A", "structure", "sequence", 3) is not None and state.error == ""
    view.save_path.value = str(tmp_path / "runs" / "saved")
    view._save()
    assert state.error == "" and (tmp_path / "runs" / "saved" / "model.safetensors").is_file()
    view.save_path.value = str(tmp_path / "saved")  # the working directory is no longer an allowed root
    view._save()
    assert "outside the folders" in state.error
    view.save_path.value = "/etc/oneprot-should-not-write"
    view._save()
    assert "outside the folders" in state.error


def test_cancel_stops_a_run(options, tmp_path, fast_projection):
    state = ExplorerState(options)
    run = LiveRun(state.store, tmp_path / "run", "tiny", 5000, 8, 1e-3, 1000, None)
    run.start()
    run.cancel()
    run.join(timeout=300)
    snap = run.snapshot()
    assert snap.status == "cancelled" and snap.step < 5000


def test_another_sessions_run_shows_in_every_align_tab(options, tmp_path, fast_projection):
    import explorer.training_run as T

    mine, other = ExplorerState(options), TrainingView(state=ExplorerState(options))
    assert other.message.object == "Idle."
    run = LiveRun(mine.store, tmp_path / "run", "tiny", 5000, 8, 1e-3, 1000, None)
    run.start()
    try:
        assert T.active_run() is run
        other.refresh()
        assert "Another session is training" in other.message.object
        assert "Another session is training" in TrainingView(state=ExplorerState(options)).message.object
    finally:
        run.cancel()
        run.join(timeout=300)
    other.refresh()
    assert T.active_run() is None and other.message.object == "Idle."
