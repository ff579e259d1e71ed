"""Align live: train or re-align a small model from the page and watch loss, R@1 and the map move."""

from __future__ import annotations

import html
from pathlib import Path
from typing import TYPE_CHECKING

import panel as pn
import param

from explorer.state import ExplorerState
from explorer.training_run import LiveRun, active_run, default_run_folder
from explorer.views import LazyHoloViews, holoviews
from explorer.views.map_figure import colour_map

if TYPE_CHECKING:  # imported where used: the first page is drawn without pandas (explorer cold start)
    import pandas as pd

POLL_MS = 700


def loss_element(losses: list[tuple[int, float, str]]):
    """Per-step loss (faint) and its running mean (bold), a HoloViews Overlay."""
    hv = holoviews()
    if not losses:
        return hv.Curve([], "step", "loss").opts(responsive=True, height=220, title="InfoNCE loss")
    import pandas as pd

    df = pd.DataFrame(losses, columns=["step", "loss", "modality"])
    df["smooth"] = df["loss"].rolling(10, min_periods=1).mean()
    return (hv.Curve(df, "step", "loss").opts(color="#9ecae1", line_width=1)
            * hv.Curve(df, "step", "smooth").opts(color="#08519c", line_width=2)).opts(
        responsive=True, height=220, title="InfoNCE loss (running mean bold)", show_legend=False)


def recall_element(recalls: list[tuple[int, str, float, float]]):
    """Held-out R@1 (sequence -> modality) per modality over steps, chance dashed (a HoloViews Overlay)."""
    hv = holoviews()
    if not recalls:
        return hv.Curve([], "step", "R@1").opts(responsive=True, height=220, title="held-out R@1")
    import pandas as pd

    df = pd.DataFrame(recalls, columns=["step", "modality", "R@1", "chance"])
    cmap = colour_map(sorted(df["modality"].unique()))
    curves = [hv.Curve(g, "step", "R@1", label=m).opts(color=cmap[m], line_width=2) * hv.Scatter(g, "step", "R@1").opts(color=cmap[m], size=5)
              for m, g in df.groupby("modality")]
    chance = hv.HLine(float(df["chance"].max())).opts(color="#888", line_dash="dashed")
    return hv.Overlay(curves + [chance]).opts(responsive=True, height=220, ylim=(0, 1.02), legend_position="right",
                                               title="held-out R@1, sequence → modality (dashed: chance)")


def live_map_element(table: pd.DataFrame | None, step: int, families: list[str] | None = None):
    """The live UMAP of a fixed protein sample coloured by family (the store-wide colours of the main map when
    `families` is given); markers by modality (HoloViews Points)."""
    hv = holoviews()
    if table is None:
        return hv.Points([], ["x", "y"]).opts(responsive=True, height=360, title="live map: waiting for the first snapshot")
    cmap = colour_map(list(families) + ["other", "unlabelled"]) if families is not None else \
        colour_map(table["family"].value_counts().index.tolist())
    table = table.assign(family=table["family"].where(table["family"].isin(list(cmap)), "other"))
    return hv.Points(table, ["x", "y"], ["id", "family", "modality"]).opts(
        color="family", cmap=cmap, marker=hv.dim("modality").categorize({"sequence": "circle"}, default="triangle"),
        size=7, alpha=0.8, tools=["hover"], responsive=True, height=360, xaxis=None, yaxis=None,
        legend_position="right", title=f"live map at step {step} (circles: sequence, triangles: other modality)")


class TrainingView(pn.viewable.Viewer):
    """Start/cancel a run, watch progress; afterwards use, or save, the new model."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        self.start_from = pn.widgets.RadioButtonGroup(name="Start from", options=["fresh model", "current checkpoint"],
                                                      value="fresh model")
        self.preset = pn.widgets.Select(name="Preset", options=["tiny", "demo"], value="tiny", width=120)
        self.steps = pn.widgets.IntInput(name="Steps", value=200, start=10, end=20_000, step=50, width=100)
        self.batch = pn.widgets.IntInput(name="Batch", value=32, start=4, end=512, width=90)
        self.lr = pn.widgets.FloatInput(name="Learning rate", value=1e-3, start=1e-6, end=1.0, width=110)
        self.eval_every = pn.widgets.IntInput(name="Evaluate every", value=25, start=5, end=5000, width=110)
        self.map_modality = pn.widgets.Select(name="Live map: sequence +", options=["structure", "structure_tokens", "pocket", "text"],
                                              value="structure", width=160)
        self.start = pn.widgets.Button(name="Start training", button_type="success")
        self.cancel = pn.widgets.Button(name="Cancel", button_type="danger", disabled=True)
        self.use = pn.widgets.Button(name="Use the new model in this session", button_type="primary", disabled=True)
        self.save_path = pn.widgets.TextInput(name="Save checkpoint to (allowed folders only)", sizing_mode="stretch_width")
        self.save = pn.widgets.Button(name="Save checkpoint", disabled=True)
        self.progress = pn.indicators.Progress(value=0, max=100, bar_color="success", sizing_mode="stretch_width", height=18)
        self.message = pn.pane.HTML(self._idle_message(), sizing_mode="stretch_width")
        # the plots are drawn by the first poll of a run: HoloViews is imported then, not while the page starts
        self.loss_pane = LazyHoloViews()
        self.recall_pane = LazyHoloViews()
        self.map_pane = LazyHoloViews()
        self.start.on_click(self._start)
        self.cancel.on_click(self._cancel)
        self.use.on_click(self._use)
        self.save.on_click(self._save)
        self.run: LiveRun | None = None
        self._poller = None
        self._shown = (-1, -1, -2)

    @staticmethod
    def _idle_message() -> str:
        """'Idle.' only when no session of this server trains; else that run's progress (one run per server)."""
        other = active_run()
        if other is None:
            return "Idle."
        snap = other.snapshot()
        return (f"<b>Another session is training on this server</b> (step {snap.step}/{snap.total}, "
                f"{html.escape(snap.status)}); a new run can start when it ends.")

    def refresh(self) -> None:
        """Re-read whether another session trains (called when the Align tab is shown)."""
        if self.run is None or not self.run.running:
            self.message.object = self._idle_message()

    # ---- actions ---------------------------------------------------------------------------
    def _start(self, _=None) -> None:
        s = self.state
        with s.reporting("training"):
            out = default_run_folder(s.options.runs_folder)
            s.roots.check(out.parent, "run folder")
            init = s.checkpoint if self.start_from.value == "current checkpoint" else None
            self.run = LiveRun(s.store, out, self.preset.value, self.steps.value, self.batch.value, self.lr.value,
                               self.eval_every.value, init, self.map_modality.value)
            self.run.start()
            self.save_path.value = str(out / "saved-model")
            self._shown = (-1, -1, -2)
            self._set_running(True)
            if self._poller is None:
                self._poller = pn.state.add_periodic_callback(self.poll, period=POLL_MS)

    def _cancel(self, _=None) -> None:
        if self.run is not None:
            self.run.cancel()
            self.message.object = "Cancelling after the current step…"

    def _use(self, _=None) -> None:
        snap = self.run.snapshot() if self.run else None
        if snap is None or not snap.embeddings_dir:
            return
        s = self.state
        s.open_paths(s.data, snap.model_dir, snap.embeddings_dir)
        if not s.error:
            s.status = f"now using the model trained in {snap.model_dir}"

    def _save(self, _=None) -> None:
        s = self.state
        with s.reporting("save checkpoint"):
            if self.run is None or self.run.model is None:
                return
            from engine.checkpoint import save_checkpoint

            target = Path(s.roots.check(self.save_path.value, "save path"))
            if target.exists() and any(target.iterdir()):
                from engine.errors import OneProtError

                raise OneProtError("folder exists and is not empty; choose a new one", str(target))
            save_checkpoint(self.run.model, target, extra={"saved_from": "explorer live training"})
            s.status = f"checkpoint saved to {target}"

    def _set_running(self, running: bool) -> None:
        self.start.disabled = running
        self.cancel.disabled = not running
        self.use.disabled = True
        self.save.disabled = running

    # ---- polling ---------------------------------------------------------------------------
    def poll(self) -> None:
        """Copy the run's snapshot into the widgets (runs on the session's own thread)."""
        if self.run is None:
            return
        snap = self.run.snapshot()
        self.progress.value = int(100 * snap.step / max(snap.total, 1))
        last = snap.losses[-1][1] if snap.losses else float("nan")
        self.message.object = (f"<b>{html.escape(snap.status)}</b> · step {snap.step}/{snap.total} · loss {last:.3f}"
                               f" · {html.escape(snap.message)}")
        key = (len(snap.losses), len(snap.recalls), snap.map_step)
        if key != self._shown:
            if key[0] != self._shown[0]:
                self.loss_pane.object = loss_element(snap.losses)
            if key[1] != self._shown[1]:
                self.recall_pane.object = recall_element(snap.recalls)
            if key[2] != self._shown[2]:
                from explorer.mapdata import store_categories

                self.map_pane.object = live_map_element(snap.map_points, snap.map_step,
                                                        store_categories(self.state.store, "family"))
            self._shown = key
        if not self.run.running and snap.status in ("finished", "cancelled", "failed"):
            self._set_running(False)
            self.use.disabled = not snap.embeddings_dir
            self.save.disabled = self.run.model is None
            if self._poller is not None:
                self._poller.stop()
                self._poller = None

    def __panel__(self):
        settings = pn.Row(self.preset, self.steps, self.batch, self.lr, self.eval_every, self.map_modality)
        return pn.Column(
            pn.pane.HTML("<h3>Align live</h3><p>Train the sequence-anchored contrastive alignment here and watch the "
                         "held-out retrieval rise and same-family points gather. Runs one at a time per server. "
                         "The live map projects sequence and the other modality jointly without centring them: watch "
                         "the modality gap, each modality on its own island joined by training only in its pairing "
                         "(the Evolution tab measures it; the main map closes it).</p>",
                         sizing_mode="stretch_width"),
            self.start_from, settings, pn.Row(self.start, self.cancel, self.use), self.progress, self.message,
            pn.Row(self.loss_pane, self.recall_pane, sizing_mode="stretch_width"), self.map_pane,
            pn.Row(self.save_path, self.save, sizing_mode="stretch_width"), sizing_mode="stretch_width")
