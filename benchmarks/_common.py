"""Helpers shared by the benchmark scripts: machine description, synthetic clustered vectors, result files."""

from __future__ import annotations

import platform
import subprocess
import time
from pathlib import Path

import numpy as np

from engine.files import write_text_atomic

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> str:
    """CPU model name and core count as lscpu reports them."""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True, check=True).stdout
        model = next((l.split(":", 1)[1].strip() for l in out.splitlines() if l.startswith("Model name")), "?")
    except (OSError, subprocess.CalledProcessError):
        model = platform.processor() or "?"
    import os

    return f"{model}, {os.cpu_count()} logical CPUs, {platform.system()} {platform.release()}"


def clustered_vectors(n: int, dim: int, clusters: int, seed: int, centers: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Unit vectors from a mixture of Gaussians (random centres, per-cluster spread 0.3-0.7 of the centre norm)."""
    rng = np.random.default_rng(seed)
    if centers is None:
        centers = rng.standard_normal((clusters, dim)).astype(np.float32) / np.sqrt(dim)
    spread = np.random.default_rng(12345).uniform(0.3, 0.7, size=len(centers)).astype(np.float32)
    labels = rng.integers(0, len(centers), size=n)
    out = np.empty((n, dim), dtype=np.float32)
    step = 100_000  # chunks keep the float64 temporaries small
    for s in range(0, n, step):
        lab = labels[s : s + step]
        noise = rng.standard_normal((len(lab), dim), dtype=np.float32) / np.sqrt(dim)
        x = centers[lab] + noise * spread[lab, None]
        out[s : s + step] = x / np.linalg.norm(x, axis=1, keepdims=True)
    return out, centers


def write_result(name: str, title: str, body: str) -> Path:
    """Write benchmarks/results/<name>.md with machine and date."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.md"
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    return write_text_atomic(path, f"# {title}\n\nMachine: {machine()}  \nDate: {stamp}\n\n{body.strip()}\n")
