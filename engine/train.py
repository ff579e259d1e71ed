"""Align every modality to the sequence anchor: the OneProt trainer.

CPU or GPU (bf16 autocast on CUDA), one process or many (torchrun + DDP: gloo on CPU, nccl on GPU),
Adam, gradient clipping, one (sequence, modality) pair type per step (engine.data.batching), metrics
to `RUN/metrics.jsonl`, held-out R@1/R@10 (sequence -> modality on a sample of the valid split).

Run folder:
    RUN/metrics.jsonl     one JSON object per step (and per evaluation)
    RUN/checkpoint/       latest training state: a loadable model checkpoint plus optimizer, RNG
                          states of every rank, data position and step; written atomically
    RUN/model/            final model checkpoint (save_checkpoint), loadable with load_checkpoint

Resuming (`resume=True`) restores all of it, so a killed run continues exactly as if never stopped.

Live control (the explorer's training view uses this):
    trainer = Trainer(model, store, config, out, on_step=[callback])
    callback(metrics: dict) is called on rank 0 after every step with keys step, modality, loss,
    acc, lr, grad_norm, seconds, and after each evaluation with keys step and `eval/R@1/<m>`,
    `eval/R@10/<m>`. `trainer.cancel()` (thread-safe) stops after the current step, saving a checkpoint.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist

from engine.checkpoint import (
    TRAINER_FILE, _unwrap, read_rng_file, read_training_files, save_checkpoint, write_rng_file, write_training_files,
)
from engine.data.batching import PairSampler, shard
from engine.data.items import items_for
from engine.data.noisy_tokens3di import NoisyTokens3Di
from engine.errors import OneProtError
from engine.files import fsync_dir, replace_dir, temp_path
from engine.loss import PairwiseInfoNCE
from engine.modality import ANCHOR
from engine.model import OneProt
from engine.presets.base import TrainConfig

Callback = Callable[[dict], None]


# ---- distributed setup ---------------------------------------------------------------------------
def init_distributed() -> tuple[int, int, torch.device]:
    """(rank, world, device). Initialises the process group when launched by torchrun."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world > 1 and not dist.is_initialized():
        backend = "nccl" if torch.cuda.is_available() else "gloo"
        dist.init_process_group(backend=backend)
    rank = dist.get_rank() if dist.is_initialized() else 0
    world = dist.get_world_size() if dist.is_initialized() else 1
    if torch.cuda.is_available():
        local = int(os.environ.get("LOCAL_RANK", rank % max(torch.cuda.device_count(), 1)))
        torch.cuda.set_device(local)
        return rank, world, torch.device("cuda", local)
    return rank, world, torch.device("cpu")


def recall_at(seq: np.ndarray, other: np.ndarray, ks: tuple[int, ...] = (1, 10)) -> dict[int, float]:
    """Fraction of rows i whose partner other[i] ranks in the top k of seq[i] @ other.T."""
    sims = seq @ other.T  # (N, N)
    true = np.diag(sims)[:, None]
    rank = (sims > true).sum(axis=1)  # 0 = best; ties count in the query's favour
    return {k: float((rank < k).mean()) for k in ks}


class Trainer:
    """Alignment trainer. See the module docstring for the run folder and live-control hooks.

    Args:
        model: the OneProt to train (on CPU; moved to the device here).
        store: a ProteinStore; training uses its train split, evaluation its valid split.
        config: TrainConfig.
        out: run folder.
        on_step: callbacks called on rank 0 with each metrics dict.
        progress: show a tqdm bar on rank 0.
    """

    def __init__(self, model: OneProt, store, config: TrainConfig, out: str | os.PathLike,
                 on_step: list[Callback] | None = None, progress: bool = True, device: torch.device | None = None):
        self.rank, self.world, default_device = init_distributed()
        self.device = device or default_device
        self.config = config
        self.store = store
        self.out = Path(out)
        self.callbacks = list(on_step or [])
        self.progress = progress and self.rank == 0
        self._cancel = threading.Event()
        self.model = model.to(self.device).ensure_loaded()  # DDP must see every module from the start
        self.loss_fn = PairwiseInfoNCE(l1_weight=config.l1_weight)
        pairs = [m for m in self.model.modalities if m != ANCHOR.value]
        self.ids_by_modality = {m: store.ids(split="train", modality=m) for m in pairs}
        self.sampler = PairSampler(self.ids_by_modality, config.batch_size, config.seed, config.modality_weights,
                                   config.modality_batch_sizes)
        self.skipped = sorted(set(pairs) - set(self.sampler.modalities))  # no training pairs in this store
        self.noisy_3di = (NoisyTokens3Di(store, config.structure_tokens_noise, config.structure_tokens_noise_prob)
                          if config.structure_tokens_noise > 0 else None)
        trainable = [p for p in self.model.parameters() if p.requires_grad]
        self.optimizer = torch.optim.Adam(trainable, lr=config.lr, weight_decay=config.weight_decay)
        self.total_steps = config.steps  # fit() sets the run's own total
        self.ddp = None
        if self.world > 1:
            # One modality per step leaves the other encoders unused, hence find_unused_parameters.
            self.ddp = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None,
                find_unused_parameters=True,
            )
        self.step = 0
        self.history: list[dict] = []
        self._eval_ids = self._pick_eval_ids()

    # ---- control --------------------------------------------------------------------------------
    def cancel(self) -> None:
        """Ask the run to stop after the current step (it saves a checkpoint first)."""
        self._cancel.set()

    @property
    def cancelled(self) -> bool:
        return self._cancel.is_set()

    # ---- one step ---------------------------------------------------------------------------------
    def _autocast(self):
        if self.device.type == "cuda" and self.config.bf16:
            return torch.autocast("cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    def lr_at(self, step: int) -> float:
        """Linear warm-up to config.lr, constant, then (decay_fraction > 0) a linear fall to 0 at the last step."""
        c = self.config
        lr = c.lr * min(1.0, (step + 1) / c.warmup_steps) if c.warmup_steps > 0 else c.lr
        if c.decay_fraction > 0:
            start = self.total_steps * (1.0 - min(c.decay_fraction, 1.0))
            if step >= start:
                lr *= max(0.0, (self.total_steps - step) / max(self.total_steps - start, 1e-9))
        return lr

    def compute_gradients(self, modality: str, global_ids: list[str]) -> dict[str, float]:
        """Forward + backward on this rank's shard of a global batch; gradients are left in .grad."""
        local = shard(global_ids, self.rank, self.world) if self.world > 1 else global_ids
        module = _unwrap(self.model)
        batches = {
            ANCHOR.value: module.collate(ANCHOR, items_for(self.store, local, ANCHOR)),
            modality: module.collate(modality, self._training_items(modality, local)),
        }
        # encoders that augment while training (ProNet) draw from this seed: a resumed run repeats the draws
        batches[modality]["augment_seed"] = (self.config.seed, self.step, self.rank, 5)
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with self._autocast():
            embeddings = (self.ddp or self.model)(batches)
        moves_anchor = self.config.anchor_trained_by
        if moves_anchor is not None and modality not in moves_anchor:
            embeddings = {**embeddings, ANCHOR.value: embeddings[ANCHOR.value].detach()}
        terms = self.loss_fn(embeddings, module.logit_scale)
        terms["loss"].backward()
        return {"loss": float(terms["loss"].detach()), "acc": float(terms[f"acc/{modality}"])}

    def _training_items(self, modality: str, ids: list[str]) -> list:
        """Raw items of a training batch; 3Di strings are re-derived from jittered coordinates if configured."""
        if modality == "structure_tokens" and self.noisy_3di is not None:
            # seeded by (seed, step, rank): a resumed run draws the same noise as an uninterrupted one
            return self.noisy_3di(ids, np.random.default_rng([self.config.seed, self.step, self.rank, 3]))
        return items_for(self.store, ids, modality)

    def optimizer_step(self) -> float:
        """Clip, set the scheduled learning rate and step; returns the pre-clip gradient norm."""
        params = [p for p in self.model.parameters() if p.requires_grad]
        norm = torch.nn.utils.clip_grad_norm_(params, self.config.grad_clip) if self.config.grad_clip > 0 else None
        for group in self.optimizer.param_groups:
            group["lr"] = self.lr_at(self.step)
        self.optimizer.step()
        return float(norm) if norm is not None else float("nan")

    def train_step(self) -> dict:
        """One full step: next batch, gradients, optimizer update, metrics."""
        t0 = time.perf_counter()
        modality, ids = self.sampler.next()
        metrics = self.compute_gradients(modality, ids)
        lr = self.lr_at(self.step)
        grad_norm = self.optimizer_step()
        self.step += 1
        return {"step": self.step, "modality": modality, **metrics, "lr": lr, "grad_norm": grad_norm,
                "batch": len(ids), "seconds": round(time.perf_counter() - t0, 4)}

    # ---- evaluation ---------------------------------------------------------------------------------
    def _pick_eval_ids(self) -> dict[str, list[str]]:
        out = {}
        for m in self.sampler.modalities:
            ids = self.store.ids(split="valid", modality=m)
            if len(ids) >= 2:
                pick = np.random.default_rng([self.config.seed, 99]).permutation(len(ids))[: self.config.eval_size]
                out[m] = [ids[i] for i in sorted(pick)]
        return out

    def evaluate(self) -> dict:
        """Held-out R@1/R@10 for sequence -> each modality on the sampled valid proteins, vs chance."""
        module = _unwrap(self.model)
        metrics: dict = {"step": self.step}
        for m, ids in self._eval_ids.items():
            seq = module.embed(ANCHOR, items_for(self.store, ids, ANCHOR))
            other = module.embed(m, items_for(self.store, ids, m))
            r = recall_at(seq, other)
            metrics[f"eval/R@1/{m}"] = r[1]
            metrics[f"eval/R@10/{m}"] = r[10]
            metrics[f"eval/n/{m}"] = len(ids)
            metrics[f"eval/chance_R@1/{m}"] = 1.0 / len(ids)
        return metrics

    # ---- checkpoints ------------------------------------------------------------------------------
    @property
    def checkpoint_dir(self) -> Path:
        return self.out / "checkpoint"

    def _barrier(self) -> None:
        if self.world > 1:
            dist.barrier()

    def save(self) -> None:
        """Write RUN/checkpoint atomically: rank 0 writes model/optimizer/state, every rank its RNG."""
        tmp = temp_path(self.checkpoint_dir, tag=f"step{self.step}")  # one name every rank agrees on
        if self.rank == 0:
            if tmp.exists():
                shutil.rmtree(tmp)
            tmp.mkdir(parents=True)
        self._barrier()
        write_rng_file(tmp, self.rank)
        if self.rank == 0:
            state = {"step": self.step, "sampler": self.sampler.state_dict(), "world": self.world,
                     "config": self.config.to_dict()}
            write_training_files(tmp, self.model, self.optimizer, state, extra={"step": self.step, "kind": "training"})
        self._barrier()
        if self.rank == 0:
            fsync_dir(tmp)
            replace_dir(tmp, self.checkpoint_dir)
        self._barrier()

    def resume(self) -> bool:
        """Restore the latest training state if RUN/checkpoint exists; returns whether it did."""
        folder = self.checkpoint_dir
        if not (folder / TRAINER_FILE).is_file():
            return False
        state = read_training_files(folder, self.model, self.optimizer)
        if state.get("world", 1) != self.world:
            raise OneProtError(f"checkpoint was written by {state.get('world')} ranks, this run has {self.world}",
                               str(folder / TRAINER_FILE))
        self.step = int(state["step"])
        self.sampler.load_state_dict(state["sampler"])
        read_rng_file(folder, self.rank)
        self._truncate_log()
        return True

    # ---- logging ------------------------------------------------------------------------------------
    @property
    def log_path(self) -> Path:
        return self.out / "metrics.jsonl"

    def _truncate_log(self) -> None:
        # Steps logged after the checkpoint we resume from will be redone; drop them from the log.
        if self.rank != 0 or not self.log_path.exists():
            return
        keep = [line for line in self.log_path.read_text().splitlines()
                if line.strip() and json.loads(line).get("step", 0) <= self.step]
        self.log_path.write_text("".join(line + "\n" for line in keep))

    def _emit(self, metrics: dict) -> None:
        if self.rank != 0:
            return
        self.history.append(metrics)
        with open(self.log_path, "a") as fh:
            fh.write(json.dumps(metrics) + "\n")
        for callback in self.callbacks:
            callback(metrics)

    # ---- the loop ---------------------------------------------------------------------------------
    def fit(self, steps: int | None = None, resume: bool = False, stop_after: int | None = None,
            final_save: bool = True) -> dict:
        """Train until `steps` (default config.steps) total steps. Returns a summary dict.

        `stop_after` ends the call after that many steps of this call without a final save (used to
        simulate a crash in tests); `final_save=False` skips the final checkpoint and model.
        """
        from tqdm.auto import tqdm

        total = steps if steps is not None else self.config.steps
        self.total_steps = total  # the learning-rate decay ends here
        self.out.mkdir(parents=True, exist_ok=True)
        resumed = self.resume() if resume else False
        cache_seconds = self.attach_anchor_cache()
        feature_seconds = self.attach_feature_caches()
        if self.rank == 0 and not resumed and self.log_path.exists():
            self.log_path.unlink()  # a fresh run starts a fresh log
        bar = tqdm(total=total, initial=self.step, disable=not self.progress, desc="align", dynamic_ncols=True)
        done_here, status, started = 0, "finished", time.perf_counter()
        while self.step < total:
            if self.cancelled:
                status = "cancelled"
                break
            metrics = self.train_step()
            done_here += 1
            self._emit(metrics)
            bar.update(1)
            bar.set_postfix(loss=f"{metrics['loss']:.3f}", m=metrics["modality"][:6])
            if not self.progress and self.rank == 0 and self.step % 50 == 0:  # heartbeat for logs
                print(f"align step {self.step}/{total} loss {metrics['loss']:.3f}", file=sys.stderr, flush=True)
            if self.config.eval_every and self.step % self.config.eval_every == 0 and self.step < total:
                self._run_eval()
            if stop_after is not None and done_here >= stop_after:
                bar.close()
                return {"status": "stopped", "step": self.step}
            if self.config.checkpoint_every and self.step % self.config.checkpoint_every == 0:
                self.save()
        bar.close()
        final_eval = self._run_eval()
        if final_save:
            self.save()
            if self.rank == 0:
                save_checkpoint(self.model, self.out / "model", extra={
                    "step": self.step, "train_config": self.config.to_dict(), "eval": final_eval,
                    "store": str(self.store.path), "skipped_modalities": self.skipped,
                    "store_manifest": {k: self.store.manifest.get(k) for k in ("created", "proteins", "built_by")}})
            self._barrier()
        summary = {"status": status, "step": self.step, "eval": final_eval,
                   "seconds": round(time.perf_counter() - started, 1), "skipped_modalities": self.skipped}
        if cache_seconds is not None:
            summary["anchor_cache_seconds"] = round(cache_seconds, 1)  # not part of "seconds" (the steps)
        if feature_seconds is not None:
            summary["feature_cache_seconds"] = round(feature_seconds, 1)
        return summary

    def attach_anchor_cache(self) -> float | None:
        """A frozen anchor with a feature cache (UniRep) gets the features of every training and valid sequence of
        the paired modalities computed once into RUN/anchor_cache, or into config.anchor_cache_dir shared by runs (rank 0;
        resumable), then reads them at every step.
        Returns the seconds that took (None without such an anchor)."""
        anchor = _unwrap(self.model).encoders[ANCHOR.value]
        if not self.config.anchor_cache or not hasattr(anchor, "attach_feature_cache"):
            return None
        t0 = time.perf_counter()
        from engine.encoders.feature_cache import build_feature_cache

        # every valid protein of the paired modalities, not only this seed's evaluation sample: the set (and so a
        # shared cache) is then the same for every seed
        valid = [self.store.ids(split="valid", modality=m) for m in self.ids_by_modality]
        ids = sorted(set().union(*self.ids_by_modality.values(), *self._eval_ids.values(), *valid))
        sequences = items_for(self.store, ids, ANCHOR)
        shared = self.config.anchor_cache_dir
        folder, keyed = (Path(shared).expanduser(), True) if shared else (self.out / "anchor_cache", False)
        cache = (build_feature_cache(anchor, sequences, folder, progress=self.progress, keyed=keyed)
                 if self.rank == 0 else None)
        self._barrier()
        anchor.attach_feature_cache(cache or build_feature_cache(anchor, sequences, folder, keyed=keyed))  # open it
        seconds = time.perf_counter() - t0
        if self.rank == 0 and not self.progress:
            print(f"anchor cache: {len(sequences)} sequences in {seconds:.0f} s", file=sys.stderr, flush=True)
        return seconds

    def attach_feature_caches(self) -> float | None:
        """Frozen structure-side encoders with a feature cache (ProteinMPNN) get the features of every training and
        valid item of their modality computed once into RUN/feature_cache/<modality> (rank 0; resumable).
        Returns the seconds that took (None without such an encoder)."""
        module = _unwrap(self.model)
        todo = [m for m, enc in module.encoders.items() if m != ANCHOR.value and hasattr(enc, "cache_entries")
                and hasattr(enc, "attach_feature_cache") and m in self.ids_by_modality]
        if not self.config.anchor_cache or not todo:
            return None
        t0 = time.perf_counter()
        from engine.encoders.feature_cache import build_item_feature_cache

        for m in todo:
            ids = sorted(set(self.ids_by_modality[m]) | set(self._eval_ids.get(m, []))
                         | set(self.store.ids(split="valid", modality=m)))
            items, folder = items_for(self.store, ids, m), self.out / "feature_cache" / m
            cache = build_item_feature_cache(module.encoders[m], items, folder, progress=self.progress) \
                if self.rank == 0 else None
            self._barrier()
            module.encoders[m].attach_feature_cache(cache or build_item_feature_cache(module.encoders[m], items, folder))
            if self.rank == 0 and not self.progress:
                print(f"{m} feature cache: {len(items)} items in {time.perf_counter() - t0:.0f} s", file=sys.stderr,
                      flush=True)
        return time.perf_counter() - t0

    def _run_eval(self) -> dict:
        metrics = self.evaluate() if self.rank == 0 else {}
        self._emit(metrics) if metrics else None
        self._barrier()
        return metrics
