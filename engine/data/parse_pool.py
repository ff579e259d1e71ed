"""Run per-file parse jobs in worker processes with a progress bar; results travel through the parse cache.

Each job's worker writes its records to the parse cache (engine.data.parse_cache) and returns only
an error message or None, so the parent never receives coordinates through a pipe and a killed build
resumes from the entries already written. Workers are spawned (not forked): the parent may hold
threads (torch, BLAS) that a fork would copy in a broken state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections.abc import Callable, Sequence


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_jobs(func: Callable, jobs: Sequence, workers: int, desc: str = "parsing", progress: bool = True) -> list:
    """func(job) for every job, in job order; `workers` > 1 runs them in that many processes."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="file", disable=not progress or None, mininterval=1.0)
    out: list = [None] * len(jobs)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for k, job in enumerate(jobs):
                out[k] = func(job)
                bar.update(1)
            return out
        with mp.get_context("spawn").Pool(min(workers, len(jobs))) as pool:
            chunk = max(1, min(16, len(jobs) // (workers * 8)))
            for k, res in pool.imap_unordered(_indexed, [(func, k, job) for k, job in enumerate(jobs)], chunksize=chunk):
                out[k] = res
                bar.update(1)
        return out
    finally:
        bar.close()


def _indexed(item):
    func, k, job = item
    return k, func(job)
