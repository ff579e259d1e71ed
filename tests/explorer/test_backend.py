"""Shared resources: the model loads in the background without holding up the store or the map."""

import threading
import time

from explorer.backend import Resources


def test_slow_model_load_does_not_block_the_store(options, monkeypatch):
    import engine.checkpoint as C

    real = C.load_checkpoint
    started, release = threading.Event(), threading.Event()

    def slow(path):
        started.set()
        release.wait(30)
        return real(path)

    monkeypatch.setattr(C, "load_checkpoint", slow)
    res = Resources(options.data, options.checkpoint, options.embeddings)
    res.load_model_in_background()
    res.load_model_in_background()  # a second call starts nothing new
    assert started.wait(30)
    t = time.perf_counter()
    assert len(res.store.ids()) > 0 and res.modalities()  # answered while the model is still loading
    assert time.perf_counter() - t < 10 and not res.model_loaded
    release.set()
    deadline = time.perf_counter() + 60
    while not res.model_ready and time.perf_counter() < deadline:
        time.sleep(0.05)
    assert res.model_ready and res.model_error is None
    assert all(getattr(e, "loaded", True) for e in res.model.encoders.values())


def test_background_load_failure_is_reported(options, tmp_path):
    res = Resources(options.data, str(tmp_path / "no-such-checkpoint"), options.embeddings)
    res.load_model_in_background()
    res._background.join(30)
    assert res.model_error and not res.model_loaded


def test_hit_table_shows_missing_labels_as_blank():
    import pandas as pd

    from explorer.backend import Hit, QueryResult

    class Store:
        rows = {"a": pd.Series({"name": "LDH", "family": float("nan"), "ec": None, "organism": "E. coli"})}

        def __contains__(self, pid):
            return pid in self.rows

        def row(self, pid):
            return self.rows[pid]

    table = QueryResult("q", "sequence", "sequence", [Hit(1, "a", 0.9, "sequence"), Hit(2, "gone", 0.5, "sequence")]).table(Store())
    assert table.loc[0, ["name", "family", "ec", "organism"]].tolist() == ["LDH", "", "", "E. coli"]
    assert table.loc[1, ["name", "family"]].tolist() == ["", ""]
    assert "nan" not in table.to_string()
