"""Trainer: overfitting, exact resume after a crash, live callbacks/cancel, 2-process DDP == 1 process."""

import json
import math
import os
import signal
import subprocess
import sys
import time

import pytest
import torch
import torch.multiprocessing as mp

from engine.checkpoint import load_checkpoint, save_checkpoint
from engine.data.store import ProteinStore
from engine.model import ModelConfig, OneProt
from engine.presets.base import TrainConfig
from engine.train import Trainer, recall_at

torch.set_num_threads(1)

# No text encoder here: keeps each test to a second or two (text is covered in test_presets).
SMALL = {
    "sequence": {"layers": 1, "dim": 32, "heads": 4, "pooling": "attention"},
    "structure_tokens": {"layers": 1, "dim": 32, "heads": 4},
    "structure": {"hidden": 32, "layers": 2, "dropout": 0.1},  # dropout: resume must restore RNG too
    "pocket": {"hidden": 16, "layers": 1},
}


def _model(seed=0, dropout=True):
    torch.manual_seed(seed)
    encoders = {k: dict(v) for k, v in SMALL.items()}
    if not dropout:  # per-rank dropout masks differ from a single process's, by design
        encoders["structure"]["dropout"] = 0.0
    return OneProt(ModelConfig(encoders=encoders, dim=16))


@pytest.fixture(scope="module")
def store(make_alignment_store, tmp_path_factory):
    return ProteinStore.open(make_alignment_store(tmp_path_factory.mktemp("s") / "store", n=40))


def _overfit(trainer, ids, steps=80):
    """(first loss, last loss) of `steps` 3Di steps on one fixed batch."""
    first = trainer.compute_gradients("structure_tokens", ids)["loss"]
    for _ in range(steps):
        loss = trainer.compute_gradients("structure_tokens", ids)["loss"]
        trainer.optimizer_step()
    return first, loss


def test_overfits_a_tiny_batch(store, tmp_path):
    trainer = Trainer(_model(), store, TrainConfig(lr=3e-3), tmp_path, progress=False)
    first, loss = _overfit(trainer, store.ids(split="train", modality="structure_tokens")[:8])
    assert first > 1.5 and loss < 0.05


def test_learning_rate_warms_up_holds_then_decays_to_zero(store, tmp_path):
    cfg = TrainConfig(steps=100, lr=1e-3, warmup_steps=10, decay_fraction=0.2)
    trainer = Trainer(_model(), store, cfg, tmp_path, progress=False)
    lr = [trainer.lr_at(s) for s in range(100)]
    assert lr[0] == pytest.approx(1e-4) and lr[9] == pytest.approx(1e-3) and lr[79] == pytest.approx(1e-3)
    assert lr[80] == pytest.approx(1e-3) and lr[90] == pytest.approx(5e-4) and 0 < lr[99] < 1e-4
    assert all(a >= b for a, b in zip(lr[80:], lr[81:]))
    trainer.total_steps = 200  # fit(steps=200): the decay moves to that run's end
    assert trainer.lr_at(99) == pytest.approx(1e-3) and trainer.lr_at(180) == pytest.approx(5e-4)
    constant = Trainer(_model(), store, TrainConfig(steps=100, lr=1e-3), tmp_path / "c", progress=False)
    assert {constant.lr_at(s) for s in (0, 50, 99)} == {1e-3}


def _params(model):
    return {k: v.detach().clone() for k, v in model.state_dict().items()}


@pytest.mark.parametrize("noise", [0.0, 0.3], ids=["stored-3di", "noisy-3di"])
def test_killed_run_resumes_exactly(store, tmp_path, noise):
    cfg = TrainConfig(steps=12, batch_size=8, lr=2e-3, eval_every=5, eval_size=8, checkpoint_every=4, seed=3,
                      structure_tokens_noise=noise)
    full = Trainer(_model(), store, cfg, tmp_path / "full", progress=False)
    full.fit()
    crashed = Trainer(_model(), store, cfg, tmp_path / "crash", progress=False)
    assert crashed.fit(stop_after=6)["status"] == "stopped"  # "killed" at step 6; last checkpoint: step 4
    resumed = Trainer(_model(seed=123), store, cfg, tmp_path / "crash", progress=False)  # other init on purpose
    resumed.fit(resume=True)
    a, b = _params(full.model), _params(resumed.model)
    assert all(torch.equal(a[k], b[k]) for k in a)
    log_a = [json.loads(x) for x in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    log_b = [json.loads(x) for x in (tmp_path / "crash" / "metrics.jsonl").read_text().splitlines()]
    strip = lambda log: [{k: v for k, v in r.items() if k != "seconds"} for r in log]  # noqa: E731
    assert strip(log_a) == strip(log_b)
    final = load_checkpoint(tmp_path / "crash" / "model")
    assert all(torch.equal(final.state_dict()[k], b[k]) for k in b)


def test_noisy_3di_items_are_recomputed_only_for_3di_training_batches(store, tmp_path):
    ids = store.ids(split="train", modality="structure_tokens")
    with_coords = [i for i in ids if store.coords(i) is not None][:6]
    plain = Trainer(_model(), store, TrainConfig(), tmp_path / "a", progress=False)
    noisy = Trainer(_model(), store, TrainConfig(structure_tokens_noise=0.3), tmp_path / "b", progress=False)
    stored = plain._training_items("structure_tokens", with_coords)
    assert stored == [store.row(i)["structure_tokens"] for i in with_coords]
    jittered = noisy._training_items("structure_tokens", with_coords)
    assert jittered != stored and [len(x) for x in jittered] == [len(x) for x in stored]
    assert jittered == noisy._training_items("structure_tokens", with_coords)  # same step: same noise
    assert noisy._training_items("sequence", with_coords) == plain._training_items("sequence", with_coords)


def test_anchor_trained_by_leaves_the_sequence_side_to_the_named_pairs(store, tmp_path):
    with_3di = set(store.ids(split="train", modality="structure_tokens"))
    ids = [i for i in store.ids(split="train", modality="structure") if i in with_3di][:6]
    trainer = Trainer(_model(), store, TrainConfig(anchor_trained_by=["structure_tokens"]), tmp_path, progress=False)
    seq_params = list(trainer.model.encoders["sequence"].parameters()) + list(trainer.model.heads["sequence"].parameters())
    trainer.compute_gradients("structure", ids)  # not named: the structure side learns, the sequence side does not
    assert all(p.grad is None for p in seq_params)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in trainer.model.heads["structure"].parameters())
    trainer.compute_gradients("structure_tokens", ids)  # named: both sides learn
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in seq_params)
    every = Trainer(_model(), store, TrainConfig(), tmp_path / "all", progress=False)  # default: every pair
    every.compute_gradients("structure", ids)
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in every.model.heads["sequence"].parameters())


def test_callbacks_cancel_and_metrics(store, tmp_path):
    cfg = TrainConfig(steps=50, batch_size=8, eval_every=0, eval_size=8, checkpoint_every=0)
    seen = []
    trainer = Trainer(_model(), store, cfg, tmp_path, progress=False, on_step=[seen.append])

    def stop_at_three(m):
        if m.get("step") == 3 and "loss" in m:
            trainer.cancel()

    trainer.callbacks.append(stop_at_three)
    out = trainer.fit()
    assert out["status"] == "cancelled" and out["step"] == 3
    steps = [m for m in seen if "loss" in m]
    assert [m["modality"] for m in steps] == ["structure", "structure_tokens", "pocket"]  # round-robin
    assert {"loss", "acc", "lr", "grad_norm"} <= set(steps[0])
    evals = [m for m in seen if any(k.startswith("eval/R@1/") for k in m)]
    assert evals and 0.0 <= evals[-1]["eval/R@1/structure"] <= 1.0
    assert (tmp_path / "checkpoint" / "trainer_state.json").exists()


def test_recall_at_against_a_loop():
    torch.manual_seed(0)
    a, b = torch.randn(20, 8).numpy(), torch.randn(20, 8).numpy()
    sims = a @ b.T
    ranks = [(sims[i] > sims[i, i]).sum() for i in range(20)]
    got = recall_at(a, b, ks=(1, 5))
    assert got[1] == sum(r < 1 for r in ranks) / 20 and got[5] == sum(r < 5 for r in ranks) / 20


# ---- distributed ---------------------------------------------------------------------------------
def _ddp_worker(rank, world, init_file, store_path, ids, out_file):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    store = ProteinStore.open(store_path)
    trainer = Trainer(_model(dropout=False), store, TrainConfig(batch_size=len(ids)), os.path.dirname(out_file),
                      progress=False)
    metrics = trainer.compute_gradients("structure", ids)
    if rank == 0:
        grads = {n: p.grad.clone() for n, p in trainer.model.named_parameters() if p.grad is not None}
        torch.save({"loss": metrics["loss"], "grads": grads}, out_file)
    dist.barrier()
    dist.destroy_process_group()


@pytest.mark.slow  # spawns two interpreters: ~10 s idle, more on a busy machine
def test_two_process_ddp_equals_one_process(store, tmp_path):
    ids = store.ids(split="train", modality="structure")[:8]
    single = Trainer(_model(dropout=False), store, TrainConfig(batch_size=8), tmp_path / "one", progress=False)
    ref = single.compute_gradients("structure", ids)
    ref_grads = {n: p.grad for n, p in single.model.named_parameters() if p.grad is not None}
    out_file = str(tmp_path / "ddp.pt")
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "init"), str(store.path), ids, out_file), nprocs=2, join=True)
    got = torch.load(out_file, weights_only=True)
    assert got["loss"] == pytest.approx(ref["loss"], rel=1e-5)
    assert set(got["grads"]) == set(ref_grads)
    for n, g in ref_grads.items():
        assert torch.allclose(got["grads"][n], g, atol=1e-5, rtol=1e-4), n


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_bf16_training_on_cuda_learns_and_saves(store, tmp_path):
    from engine.data.items import items_for

    cuda = torch.device("cuda")
    trainer = Trainer(_model(dropout=False), store, TrainConfig(lr=3e-3), tmp_path, progress=False, device=cuda)
    assert trainer.config.bf16 and next(trainer.model.parameters()).is_cuda
    ids = store.ids(split="train", modality="structure_tokens")[:8]
    first, loss = _overfit(trainer, ids)
    assert first > 1.5 and loss < 0.1
    for m in ("structure", "pocket"):  # the GNN encoders take a step on the GPU too
        assert math.isfinite(trainer.compute_gradients(m, store.ids(split="train", modality=m)[:8])["loss"])
        trainer.optimizer_step()
    # the saved checkpoint, loaded on the CPU in fp32, embeds like the bf16 model on the GPU
    cpu_model = load_checkpoint(save_checkpoint(trainer.model, tmp_path / "ck"))
    items = items_for(store, ids, "structure_tokens")
    a = torch.from_numpy(trainer.model.eval().embed("structure_tokens", items))
    b = torch.from_numpy(cpu_model.embed("structure_tokens", items))
    assert torch.nn.functional.cosine_similarity(a, b).min() >= 0.99


# ---- a real crash --------------------------------------------------------------------------------
@pytest.mark.slow
def test_sigkill_then_resume_matches_uninterrupted(store, tmp_path):
    base = [sys.executable, "-m", "engine.cli", "train", "--preset", "tiny", "--data", str(store.path),
            "--steps", "30", "--threads", "1", "--quiet"]
    subprocess.run(base + ["--out", str(tmp_path / "full")], check=True, capture_output=True, timeout=300)
    run = tmp_path / "killed"
    proc = subprocess.Popen(base + ["--out", str(run)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run / "checkpoint" / "trainer_state.json"
    deadline = time.time() + 240
    while time.time() < deadline and proc.poll() is None:
        if state.exists() and json.loads(state.read_text())["step"] >= 10:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL, "run finished before it could be killed"
    subprocess.run(base + ["--out", str(run), "--resume"], check=True, capture_output=True, timeout=300)
    a = load_checkpoint(tmp_path / "full" / "model").state_dict()
    b = load_checkpoint(run / "model").state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
