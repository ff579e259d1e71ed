"""Run per-file parse jobs in worker processes with a progress bar; results travel through the parse cache.

Each job's worker writes its records to the parse cache (engine.data.parse_cache) and returns only
an error message or None, so the parent never receives coordinates through a pipe and a killed build
resumes from the entries already written. Workers are spawned (not forked): the parent may hold
threads (torch, BLAS) that a fork would copy in a broken state.
"""

from __future__ import annotations

import multiprocessing as mp
import os
from collections import deque
from collections.abc import Callable, Sequence


def default_workers() -> int:
    """The number of CPU cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def run_jobs(func: Callable, jobs: Sequence, workers: int, desc: str = "parsing", progress: bool = True) -> list:
    """func(job) for every job, in job order; `workers` > 1 runs them in that many processes.

    With N workers this process is one of them: it parses too, beside N - 1 spawned processes, so no core
    waits while the others start (a spawned worker pays about a second of imports before its first job).
    Jobs go out in small chunks, at most two per spawned worker in flight, and chunks shrink to one file
    near the end, so no process is left with a long tail while the others idle."""
    from tqdm import tqdm

    bar = tqdm(total=len(jobs), desc=desc, unit="file", disable=not progress or None, mininterval=1.0)
    out: list = [None] * len(jobs)
    try:
        if workers <= 1 or len(jobs) <= 1:
            for k, job in enumerate(jobs):
                out[k] = func(job)
                bar.update(1)
            return out
        spawned = min(workers, len(jobs)) - 1
        todo = deque(range(len(jobs)))
        flying: deque = deque()
        with mp.get_context("spawn").Pool(spawned) as pool:

            def feed() -> None:
                while todo and len(flying) < 2 * spawned:
                    n = max(1, min(MAX_CHUNK, len(todo) // (workers * 4)))
                    idx = [todo.popleft() for _ in range(min(n, len(todo)))]
                    flying.append((idx, pool.apply_async(_run_chunk, (func, [jobs[k] for k in idx]))))

            def collect(wait: bool) -> None:
                while flying and (wait or any(res.ready() for _, res in flying)):
                    done = next((f for f in flying if f[1].ready()), flying[0])
                    flying.remove(done)
                    for k, r in zip(done[0], done[1].get()):
                        out[k] = r
                    bar.update(len(done[0]))

            feed()
            while todo:
                k = todo.pop()  # this process takes from the end, the workers from the front
                out[k] = func(jobs[k])
                bar.update(1)
                collect(wait=False)
                feed()
            collect(wait=True)
        return out
    finally:
        bar.close()


MAX_CHUNK = 4  # files per message to a worker: few enough that the last chunks end together


def _run_chunk(func: Callable, chunk: list) -> list:
    return [func(job) for job in chunk]
