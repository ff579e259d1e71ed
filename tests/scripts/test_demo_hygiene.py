"""scripts/demo_hygiene.py re-applies the hygiene rule to a store and its embeddings in place, atomically."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd

from engine.data.store import ProteinStore, write_store
from engine.embed import EmbeddingSet
from engine.modality import ProteinRecord

ROOT = Path(__file__).resolve().parents[2]


def _chain(pid, n, source):
    c = np.random.default_rng(len(pid)).normal(size=(n, 4, 3)).astype(np.float32)
    return ProteinRecord(id=pid, sequence="A" * n, coords=c, source=source)


def test_store_and_embeddings_lose_the_same_chains(tmp_path):
    recs = [_chain("good_A", 80, "pkg:t/good.pdb"), _chain("frag_A", 30, "pkg:t/frag.pdb"),
            _chain("unordered_res_X", 90, "pkg:t/unordered_res.pdb"), ProteinRecord(id="P1", sequence="MKVL" * 20)]
    store = write_store(recs, tmp_path / "store", {r.id: "train" for r in recs}, {r.id: i for i, r in enumerate(recs)})
    emb = tmp_path / "emb"
    emb.mkdir()
    ids = {"sequence": [r.id for r in recs], "structure": [r.id for r in recs[:3]]}
    for m, mids in ids.items():
        np.save(emb / f"{m}.npy", np.eye(len(mids), 4, dtype=np.float32))
        (emb / f"{m}.ids.txt").write_text("".join(f"{i}\n" for i in mids))
    pd.DataFrame({"id": ids["sequence"], "name": ""}).to_parquet(emb / "labels.parquet")
    (emb / "manifest.json").write_text(json.dumps({"format_version": 1, "model_hash": "x", "dim": 4,
                                                   "counts": {m: len(v) for m, v in ids.items()}}))
    run = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_hygiene.py"), str(store), "--embeddings", str(emb)],
                         capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert run.returncode == 0, run.stderr
    assert "2 structure chains left out" in run.stdout
    s = ProteinStore.open(store)
    assert s.proteins["id"].tolist() == ["good_A", "P1"] and s.manifest["hygiene"]["left_out"] == 2
    assert s.row("good_A")["name"] == "good" and s.coords("good_A").shape == (80, 4, 3)
    e = EmbeddingSet.open(emb)
    assert e.ids("structure") == ["good_A"] and e.vectors("structure").shape == (1, 4)
    assert e.ids("sequence") == ["good_A", "P1"] and np.allclose(e.vectors("sequence")[1], np.eye(4, 4)[3])
    assert e.labels.set_index("id")["name"]["good_A"] == "good"
    assert not any(p.name.startswith(("store.", "emb.")) for p in tmp_path.iterdir())  # no temp folders left
    again = subprocess.run([sys.executable, str(ROOT / "scripts" / "demo_hygiene.py"), str(store)],
                           capture_output=True, text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    assert again.returncode == 0 and "0 structure chains left out" in again.stdout
    assert ProteinStore.open(store).manifest["hygiene"]["left_out"] == 2  # the chains left out earlier still count
