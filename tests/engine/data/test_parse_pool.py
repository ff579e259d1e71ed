"""run_jobs: every job once, results in job order, with this process working beside the spawned workers."""

from __future__ import annotations

import os

import pytest

from engine.data.parse_pool import run_jobs


def test_results_in_job_order_and_every_job_once():
    jobs = [f"/d/file{k:03d}.pdb" for k in range(37)]
    for workers in (1, 2, 3):
        assert run_jobs(os.path.basename, jobs, workers, progress=False) == [os.path.basename(j) for j in jobs]


def test_this_process_and_a_worker_both_parse():
    pids = run_jobs(_pid, list(range(60)), 2, progress=False)  # each job sleeps, so neither side can take all
    assert os.getpid() in pids and len(set(pids)) == 2


def test_a_worker_exception_reaches_the_caller():
    with pytest.raises(ValueError):
        run_jobs(int, ["1", "2", "three", "4"] * 5, 2, progress=False)


def _pid(_job) -> int:
    import time

    time.sleep(0.02)
    return os.getpid()


def test_light_cache_load_has_shapes_without_data(tmp_path):
    import numpy as np

    from engine.data import parse_cache
    from engine.modality import ProteinRecord

    rec = ProteinRecord(id="a", sequence="ACDE", coords=np.ones((4, 4, 3), np.float32),
                        extra={"cb": np.ones((4, 3), np.float32)})
    path = tmp_path / "e.npz"
    parse_cache.save(path, [rec], {"notes": []})
    full, light = parse_cache.load(path)[0][0], parse_cache.load(path, arrays=False)[0][0]
    assert full.coords.shape == light.coords.shape == (4, 4, 3) and float(full.coords.sum()) == 48.0
    assert light.coords.strides == (0, 0, 0) and not light.coords.flags.writeable  # a placeholder, no data
    assert light.extra["cb"].shape == (4, 3) and light.extra["side_chains"] is None
