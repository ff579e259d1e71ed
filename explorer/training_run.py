"""A live alignment run for the page: engine.train.Trainer in a background thread, progress in memory.

The page polls `LiveRun.snapshot()` from a periodic callback rather than being called from the
training thread, so no Bokeh document is ever touched off its own thread. One run at a time per
server process: the machine's cores are shared by every session.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import OneProtError

_ACTIVE = threading.Lock()  # held while any session's run trains
_CURRENT: list["LiveRun"] = []  # the run holding _ACTIVE, so other sessions can show its progress
MAP_PROTEINS = 300  # proteins re-embedded and re-projected at each evaluation (the live map)


@dataclass
class LiveSnapshot:
    """What the page shows: progress, curves, the latest live map, and how the run ended."""

    step: int = 0
    total: int = 0
    losses: list[tuple[int, float, str]] = field(default_factory=list)  # (step, loss, modality)
    recalls: list[tuple[int, str, float, float]] = field(default_factory=list)  # (step, modality, R@1, chance)
    map_points: object = None  # DataFrame x, y, id, modality, family; None until the first evaluation
    map_step: int = -1
    status: str = "idle"  # idle | starting | training | embedding | finished | cancelled | failed
    message: str = ""
    model_dir: str = ""
    embeddings_dir: str = ""
    phases: dict = field(default_factory=dict)  # seconds per phase: training (incl. live maps), re-embedding
    started: float = 0.0  # time.time() at start


class LiveRun:
    """Train (and then re-embed the store) in a thread; `cancel()` stops after the current step."""

    def __init__(self, store, out: Path, preset: str, steps: int, batch_size: int, lr: float,
                 eval_every: int, init_checkpoint: str | None, map_modality: str = "structure", seed: int = 0):
        self.store, self.out = store, Path(out)
        self.preset, self.steps, self.batch_size, self.lr = preset, int(steps), int(batch_size), float(lr)
        self.eval_every, self.init_checkpoint, self.map_modality, self.seed = int(eval_every), init_checkpoint, map_modality, seed
        self._snap = LiveSnapshot(total=self.steps)
        self._lock = threading.Lock()
        self._trainer = None
        self._cancel = threading.Event()
        self._thread: threading.Thread | None = None
        self.model = None

    # ---- control -------------------------------------------------------------------------
    def start(self) -> None:
        if not _ACTIVE.acquire(blocking=False):
            raise OneProtError("another session is training on this server; wait for it to finish", "training")
        _CURRENT[:] = [self]
        self._set(status="starting", message="building the model…", started=time.time())
        self._thread = threading.Thread(target=self._run, name="oneprot-live-train", daemon=True)
        self._thread.start()

    def cancel(self) -> None:
        self._cancel.set()
        if self._trainer is not None:
            self._trainer.cancel()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()

    def snapshot(self) -> LiveSnapshot:
        with self._lock:
            s = self._snap
            return LiveSnapshot(s.step, s.total, list(s.losses), list(s.recalls), s.map_points, s.map_step,
                                s.status, s.message, s.model_dir, s.embeddings_dir, dict(s.phases), s.started)

    def join(self, timeout: float | None = None) -> None:
        if self._thread is not None:
            self._thread.join(timeout)

    # ---- the thread ----------------------------------------------------------------------
    def _set(self, **kw) -> None:
        with self._lock:
            for k, v in kw.items():
                setattr(self._snap, k, v)

    def _run(self) -> None:
        import torch

        try:
            torch.set_num_threads(1)  # leave a core for the server and the other sessions
            from engine.checkpoint import load_checkpoint
            from engine.recipe import build_recipe, build_trainer

            preset = build_recipe(self.preset, overrides={"train": {
                "steps": self.steps, "batch_size": self.batch_size, "lr": self.lr, "eval_every": self.eval_every,
                "checkpoint_every": 0, "seed": self.seed}})
            preset.train.eval_size = min(preset.train.eval_size, 64)  # a live evaluation must stay quick
            model = load_checkpoint(self.init_checkpoint) if self.init_checkpoint else None
            self._trainer = build_trainer(preset, self.store, self.out, model=model, on_step=[self._on_metrics])
            model = self.model = self._trainer.model
            if self._cancel.is_set():
                self._trainer.cancel()
            self._set(status="training", message=f"training {self.steps} steps")
            t0 = time.time()
            self._live_map(0)
            result = self._trainer.fit()
            self._phase("training", time.time() - t0)
            if result["status"] == "cancelled":
                self._set(status="cancelled", message=f"cancelled at step {result['step']}; checkpoint saved "
                          f"({self._timing()})", model_dir=str(self.out / "model"))
                return
            self._set(status="embedding", message="re-embedding the store with the new model…",
                      model_dir=str(self.out / "model"))
            from engine.embed import embed_store

            t1 = time.time()
            emb = embed_store(model, self.store, self.out / "embeddings", checkpoint=str(self.out / "model"),
                              on_chunk=lambda m, k, n: self._set(message=f"re-embedding {m} ({k + 1}/{n})"))
            self._phase("re-embedding", time.time() - t1)
            self._set(status="finished", message=f"done: {self._timing()}", embeddings_dir=str(emb))
        except OneProtError as exc:
            self._set(status="failed", message=str(exc))
        except Exception as exc:  # a bug must not kill the server; show it
            import traceback

            traceback.print_exc()
            self._set(status="failed", message=f"{exc.__class__.__name__}: {exc}")
        finally:
            _CURRENT[:] = []
            _ACTIVE.release()

    def _phase(self, name: str, seconds: float) -> None:
        with self._lock:
            self._snap.phases[name] = seconds

    def _timing(self) -> str:
        """'412 s in all: training 160 s (incl. live maps), re-embedding 240 s, setup 12 s' (wall clock)."""
        with self._lock:
            total, phases = time.time() - self._snap.started, dict(self._snap.phases)
        parts = [f"{k} {v:.0f} s" + (" (incl. live maps)" if k == "training" else "") for k, v in phases.items()]
        parts.append(f"setup {max(total - sum(phases.values()), 0):.0f} s")
        return f"{total:.0f} s in all: " + ", ".join(parts)

    def _on_metrics(self, metrics: dict) -> None:
        with self._lock:
            if "loss" in metrics:
                self._snap.step = int(metrics["step"])
                self._snap.losses.append((int(metrics["step"]), float(metrics["loss"]), str(metrics.get("modality", ""))))
            for k, v in metrics.items():
                if k.startswith("eval/R@1/"):
                    m = k.split("/", 2)[2]
                    chance = float(metrics.get(f"eval/chance_R@1/{m}", 0.0))
                    self._snap.recalls.append((int(metrics["step"]), m, float(v), chance))
        if any(k.startswith("eval/R@1/") for k in metrics):
            self._live_map(int(metrics["step"]))

    def _live_map(self, step: int) -> None:
        """Embed a fixed sample of proteins (sequence + map modality) and project jointly: clusters forming."""
        from engine.data.items import items_for
        from engine.projection import project

        model = self.model
        store = self.store
        ids = store.ids(modality=self.map_modality) if self.map_modality in model.modalities else []
        ids = ids or store.ids()
        rng = np.random.default_rng(self.seed)
        ids = [ids[i] for i in sorted(rng.permutation(len(ids))[:MAP_PROTEINS])]
        mods = ["sequence"] + ([self.map_modality] if self.map_modality in model.modalities and self.map_modality != "sequence" else [])
        vecs = {m: model.embed(m, items_for(store, ids, m)) for m in mods}
        proj = project(vecs, {m: ids for m in mods}, n_epochs=150, cache_dir=None)
        import pandas as pd

        fam = store.proteins.set_index("id")["family"].reindex(proj.ids).fillna("unlabelled").astype(str).to_numpy()
        table = pd.DataFrame({"x": proj.coords[:, 0], "y": proj.coords[:, 1], "id": proj.ids,
                              "modality": proj.modalities, "family": fam})
        self._set(map_points=table, map_step=step)


def default_run_folder(runs: str | Path) -> Path:
    """explorer-<UTC time> under `runs` (the per-user data folder, or --runs-dir), unique per call."""
    base = Path(runs) / time.strftime("explorer-%Y%m%d-%H%M%S", time.gmtime())
    out, n = base, 1
    while out.exists():
        n += 1
        out = base.with_name(f"{base.name}-{n}")
    return out


def active_run() -> "LiveRun | None":
    """The run training on this server now (any session's), or None."""
    return _CURRENT[0] if _CURRENT else None
