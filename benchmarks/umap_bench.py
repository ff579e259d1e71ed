"""UMAP benchmark: engine.projection.project vs plain umap-learn defaults on 100k x 512 clustered vectors.

Both run in the same process after one small warm-up fit that compiles umap-learn's numba code,
so neither pays the JIT. Quality: fraction of each point's 10 nearest 2-D neighbours from its own
cluster (higher is better), so speed is not bought with a useless map. Floor: ours <= 90 s.

    python benchmarks/umap_bench.py [--n 100000] [--dim 512] [--skip-baseline]
"""

from __future__ import annotations

import argparse
import os
import time
import warnings

import numpy as np

from _common import clustered_vectors, write_result
from engine.projection import project


def cluster_purity(coords: np.ndarray, labels: np.ndarray, k: int = 10) -> float:
    """Mean share of the k nearest 2-D neighbours (self excluded) that carry the point's label."""
    import faiss

    c = np.ascontiguousarray(coords, dtype=np.float32)
    index = faiss.IndexFlatL2(2)
    index.add(c)
    _, idx = index.search(c, k + 1)
    return float((labels[idx[:, 1:]] == labels[:, None]).mean())


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=50)
    ap.add_argument("--skip-baseline", action="store_true")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()

    rng = np.random.default_rng(0)
    x, centers = clustered_vectors(a.n, a.dim, a.clusters, seed=0)
    # recover labels: nearest centre (the generator does not return them)
    labels = np.argmax(x @ (centers / np.linalg.norm(centers, axis=1, keepdims=True)).T, axis=1)

    import umap

    t = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        umap.UMAP(n_epochs=20).fit_transform(rng.standard_normal((5000, 16)).astype(np.float32))
    project(rng.standard_normal((6000, 64)).astype(np.float32), n_epochs=5, cache_dir=None)  # seeded path's kernels
    warm = time.perf_counter() - t
    print(f"warm-up (numba JIT) {warm:.1f} s", flush=True)

    t, c = time.perf_counter(), time.process_time()
    ours = project(x, seed=0, cache_dir=None)
    ours_s, ours_cpu = time.perf_counter() - t, time.process_time() - c
    ours_q = cluster_purity(ours.coords, labels)
    print(f"ours {ours_s:.1f} s (cpu {ours_cpu:.1f} s) purity {ours_q:.3f} params {ours.params}", flush=True)

    rows = [f"| engine.projection.project (PCA 50, FAISS IVF kNN, {ours.params['n_epochs']} epochs, seeded) | {ours_s:.1f} | {ours_cpu:.1f} | {ours_q:.3f} |"]
    ratio = ""
    if not a.skip_baseline:
        t, c = time.perf_counter(), time.process_time()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            base = umap.UMAP().fit_transform(x)
        base_s, base_cpu = time.perf_counter() - t, time.process_time() - c
        base_q = cluster_purity(base, labels)
        print(f"umap-learn defaults {base_s:.1f} s purity {base_q:.3f}", flush=True)
        rows.append(f"| umap-learn `UMAP()` defaults (NN-descent on 512-d, 200 epochs, spectral init, unseeded/parallel) | {base_s:.1f} | {base_cpu:.1f} | {base_q:.3f} |")
        ratio = f"Speed-up over umap-learn defaults: {base_s / ours_s:.1f}x wall, {base_cpu / ours_cpu:.1f}x CPU time.\n"
    verdict = "PASS" if ours_s <= 90 else f"FAIL on wall time ({ours_s:.0f} s; process CPU time {ours_cpu:.0f} s)"
    table = "| method | wall s | process CPU s | 10-NN cluster purity in 2-D |\n|---|---|---|---|\n" + "\n".join(rows) + "\n"
    body = (
        f"`python benchmarks/umap_bench.py --n {a.n} --dim {a.dim}`\n\n"
        f"{a.n:,} x {a.dim} unit vectors from {a.clusters} Gaussian clusters. One warm-up fit first compiles numba "
        f"({warm:.1f} s, not counted for either).\n\n{table}\n{ratio}Floor (ours <= 90 s): {verdict}.\n\n"
        f"Load average at the end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs inflate wall times).\n"
    )
    print(table)
    if not a.no_write:
        print("wrote", write_result("umap_bench", "UMAP benchmark", body))


if __name__ == "__main__":
    main()
