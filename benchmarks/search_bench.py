"""Search benchmark: our index (engine.index, auto kind) vs numpy brute force on clustered unit vectors.

Reports single-query top-10 latency (p50/p95) and recall@10 against exact search on fresh queries
drawn from the same mixture (not from the indexed set). Floor: p50 <= 10 ms at recall@10 >= 0.95
for 1M x 512 on a 2-core machine.

    python benchmarks/search_bench.py [--n 1000000] [--dim 512] [--queries 1000]
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from _common import clustered_vectors, write_result
from engine.index import build_index, exact_search, recall_at_k


def _latencies(fn, queries: np.ndarray) -> np.ndarray:
    out = []
    for q in queries:
        t = time.perf_counter()
        fn(q[None, :])
        out.append(time.perf_counter() - t)
    return np.array(out) * 1000.0


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=1_000_000)
    ap.add_argument("--dim", type=int, default=512)
    ap.add_argument("--clusters", type=int, default=1000)
    ap.add_argument("--queries", type=int, default=1000)
    ap.add_argument("--brute-queries", type=int, default=30)
    ap.add_argument("--kind", default="auto")
    ap.add_argument("--no-write", action="store_true")
    a = ap.parse_args()

    t = time.perf_counter()
    x, centers = clustered_vectors(a.n, a.dim, a.clusters, seed=0)
    q, _ = clustered_vectors(a.queries, a.dim, a.clusters, seed=1, centers=centers)
    print(f"data {a.n} x {a.dim} in {time.perf_counter() - t:.1f} s", flush=True)

    t = time.perf_counter()
    index = build_index(x, kind=a.kind)
    build_s = time.perf_counter() - t
    print(f"built {index.info} in {build_s:.1f} s", flush=True)

    _, exact = exact_search(x, q, 10)
    _, approx = index.search(q, 10)
    recall = recall_at_k(approx, exact, 10)

    ours = _latencies(lambda v: index.search(v, 10), q)

    def brute(v: np.ndarray) -> np.ndarray:
        s = x @ v[0]
        top = np.argpartition(-s, 10)[:10]
        return top[np.argsort(-s[top])]

    bq = q[: a.brute_queries]
    brute_ms = _latencies(brute, bq)
    brute_recall = recall_at_k(np.stack([brute(v[None, :]) for v in bq]), exact[: len(bq)], 10)

    p50, p95, bp50 = np.percentile(ours, 50), np.percentile(ours, 95), np.percentile(brute_ms, 50)
    table = (
        "| method | p50 ms | p95 ms | recall@10 vs exact | build s |\n|---|---|---|---|---|\n"
        f"| engine.index ({index.info.kind}, {index.info.params}) | {p50:.2f} | {p95:.2f} | {recall:.4f} | {build_s:.1f} |\n"
        f"| numpy brute force (x @ q, argpartition) | {bp50:.2f} | {np.percentile(brute_ms, 95):.2f} | {brute_recall:.4f} | 0 |\n"
    )
    verdict = "PASS" if (p50 <= 10.0 and recall >= 0.95) else "FAIL"
    body = (
        f"`python benchmarks/search_bench.py --n {a.n} --dim {a.dim} --queries {a.queries}`\n\n"
        f"{a.n:,} x {a.dim} unit vectors, mixture of {a.clusters} Gaussian clusters; {a.queries} fresh queries from the "
        "same mixture, one at a time (single-query latency), top-10 by cosine.\n"
        f"Calibration recall@10 stored in the index metadata: {index.info.recall_at_10}.\n\n"
        f"{table}\nSpeed-up over brute force at p50: {bp50 / p50:.0f}x. Floor (p50 <= 10 ms, recall@10 >= 0.95): {verdict}.\n\n"
        f"Load average at the end of the run: {os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (other jobs inflate wall times).\n"
    )
    print(table)
    print(f"speed-up {bp50 / p50:.0f}x; floor {verdict}")
    if not a.no_write:
        print("wrote", write_result("search_bench", "Search benchmark", body))


if __name__ == "__main__":
    main()
