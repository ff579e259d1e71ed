"""`oneprot embed` on a GPU through the CLI: two torchrun ranks sharing one GPU write bf16 shards that,
merged, give what one fp32 CPU run gives."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from engine.embed import EmbeddingSet
from test_embed_search_evaluate_cli import tiny_checkpoint

pytestmark = [pytest.mark.gpu, pytest.mark.slow,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")]
ROOT = Path(__file__).resolve().parents[3]


def _cli(args, torchrun=False):
    launcher = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2"] if torchrun else [sys.executable]
    env = dict(os.environ, PYTHONPATH=os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    done = subprocess.run(launcher + ["-m", "engine.cli", "embed"] + args, cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]


def test_torchrun_shards_on_one_gpu_merge_into_the_cpu_run(make_family_store, tmp_path):
    store = make_family_store(tmp_path / "store")
    ckpt = tiny_checkpoint(tmp_path / "ckpt", text=False)
    common = ["--checkpoint", str(ckpt), "--data", str(store), "--chunk-size", "8", "--no-index"]
    _cli(common + ["--out", str(tmp_path / "cpu"), "--device", "cpu"])
    _cli(common + ["--out", str(tmp_path / "gpu"), "--device", "cuda:0"], torchrun=True)
    assert sorted(p.name for p in (tmp_path / "gpu").glob("shard-*")) == ["shard-000-of-002", "shard-001-of-002"]
    _cli(["--merge", "--out", str(tmp_path / "gpu"), "--no-index"])
    cpu, gpu = EmbeddingSet.open(tmp_path / "cpu"), EmbeddingSet.open(tmp_path / "gpu")
    assert gpu.model_hash == cpu.model_hash and gpu.modalities == cpu.modalities
    for m in cpu.modalities:
        assert gpu.ids(m) == cpu.ids(m), m
        x, y = np.asarray(gpu.vectors(m), np.float64), np.asarray(cpu.vectors(m), np.float64)
        cos = (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))
        assert cos.min() >= 0.99, (m, float(cos.min()))
