"""engine.embed: the embeddings folder contract, resumability after a kill, shards + merge, exports."""

import json

import numpy as np
import pytest
import torch

from engine.data.store import ProteinStore
from engine.embed import EmbeddingSet, embed_store, export_h5, export_parquet, merge_shards, model_identity
from engine.errors import OneProtError

MODALITIES = ["sequence", "structure", "structure_tokens", "pocket"]


@pytest.fixture(scope="module")
def model():
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(0)
    enc = {k: v for k, v in build().model.encoders.items() if k in MODALITIES}  # no text: keeps the test fast
    return OneProt(ModelConfig(encoders=enc, dim=16)).eval()


@pytest.fixture(scope="module")
def store(make_family_store, tmp_path_factory):
    return ProteinStore.open(make_family_store(tmp_path_factory.mktemp("store") / "s"))


@pytest.fixture(scope="module")
def full(model, store, tmp_path_factory):
    return EmbeddingSet.open(embed_store(model, store, tmp_path_factory.mktemp("e") / "full", chunk_size=5))


def as_dict(eset, m):
    return dict(zip(eset.ids(m), np.asarray(eset.vectors(m))))


def test_folder_follows_the_contract(full, store, model):
    assert set(full.modalities) == set(MODALITIES)
    assert full.model_hash == model_identity(model) and full.dim == 16
    for m in MODALITIES:
        v = full.vectors(m)
        assert v.shape == (len(store.ids(modality=m)), 16) and v.dtype == np.float32
        np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
        assert full.ids(m) == store.ids(modality=m)
    assert {"id", "name", "family", "ec", "organism", "split"} <= set(full.labels.columns)
    assert not (full.path / "chunks").exists()  # temporary chunks are gone once finished
    manifest = json.loads((full.path / "manifest.json").read_text())
    assert manifest["counts"]["pocket"] == len(store.ids(modality="pocket"))


def test_batched_embedding_matches_one_by_one(model, store):
    items = [store.row(i)["sequence"] for i in store.ids()[:9]]
    batched = model.embed("sequence", items, batch_tokens=120)
    single = np.concatenate([model.embed("sequence", [x]) for x in items])
    np.testing.assert_allclose(batched, single, atol=1e-5)


def test_killed_run_resumes_and_gives_the_same_result(model, store, full, tmp_path):
    out = tmp_path / "resumed"
    done = []

    def die_after_two(m, k, n):
        done.append((m, k))
        if len(done) == 2:
            raise KeyboardInterrupt  # what Ctrl-C / a kill between chunks looks like to the loop

    with pytest.raises(KeyboardInterrupt):
        embed_store(model, store, out, chunk_size=5, on_chunk=die_after_two)
    with pytest.raises(OneProtError, match="manifest.json missing"):
        EmbeddingSet.open(out)
    assert len(list((out / "chunks").glob("*.npy"))) == 2
    redone = []
    embed_store(model, store, out, chunk_size=5, on_chunk=lambda m, k, n: redone.append((m, k)))
    assert not set(done) & set(redone)  # the finished chunks were skipped
    back = EmbeddingSet.open(out)
    for m in MODALITIES:
        assert back.ids(m) == full.ids(m)
        np.testing.assert_allclose(back.vectors(m), full.vectors(m), atol=1e-6)


def test_changed_plan_discards_stale_chunks(model, store, tmp_path):
    out = tmp_path / "plan"
    with pytest.raises(KeyboardInterrupt):
        embed_store(model, store, out, chunk_size=5, on_chunk=lambda *a: (_ for _ in ()).throw(KeyboardInterrupt()))
    calls = []
    embed_store(model, store, out, chunk_size=7, modalities=["sequence"], on_chunk=lambda m, k, n: calls.append(k))
    assert len(calls) == (len(store.ids()) + 6) // 7  # nothing reused from the chunk-size-5 run


def test_shards_merge_into_the_single_run(model, store, full, tmp_path):
    out = tmp_path / "sharded"
    for rank in range(2):
        folder = embed_store(model, store, out, chunk_size=4, rank=rank, world=2)
        assert folder.name == f"shard-{rank:03d}-of-002"
    with pytest.raises(OneProtError, match="unmerged shards"):
        EmbeddingSet.open(out)
    merged = EmbeddingSet.open(merge_shards(out))
    for m in MODALITIES:
        assert merged.ids(m) == full.ids(m), m  # the single run's order, not rank by rank
        a, b = as_dict(merged, m), as_dict(full, m)
        assert a.keys() == b.keys()
        for pid in a:
            np.testing.assert_allclose(a[pid], b[pid], atol=1e-6)


def test_merge_refuses_missing_shard(model, store, tmp_path):
    embed_store(model, store, tmp_path / "half", modalities=["sequence"], rank=0, world=2)
    with pytest.raises(OneProtError, match="shard 1 of 2"):
        merge_shards(tmp_path / "half")


def test_model_mismatch_is_refused_with_an_explanation(full):
    full.check_model(full.model_hash, full.dim)
    with pytest.raises(OneProtError, match="32 dimensions.*16-d"):
        full.check_model(full.model_hash, 32)
    with pytest.raises(OneProtError, match="model hash is deadbeef"):
        full.check_model("deadbeef", full.dim)


def test_exports_round_trip(full, tmp_path):
    import h5py
    import pandas as pd

    export_h5(full, tmp_path / "seq.h5", "sequence")
    with h5py.File(tmp_path / "seq.h5") as h:
        assert set(h.keys()) == set(full.ids("sequence"))
        pid = full.ids("sequence")[3]
        np.testing.assert_array_equal(h[pid][()], full.vectors("sequence")[3])
    export_parquet(full, tmp_path / "all.parquet")
    table = pd.read_parquet(tmp_path / "all.parquet")
    assert len(table) == sum(full.manifest["counts"].values())
    assert {"id", "modality", "embedding", "family"} <= set(table.columns)
    with pytest.raises(OneProtError, match="no text embeddings"):
        export_h5(full, tmp_path / "t.h5", "text")
    few = full.ids("sequence")[:2]  # the id filter: only those proteins, in every format
    with h5py.File(export_h5(full, tmp_path / "few.h5", "sequence", ids=few)) as h:
        assert set(h.keys()) == set(few)
    assert set(pd.read_parquet(export_parquet(full, tmp_path / "few.parquet", ids=few))["id"]) == set(few)


def test_float16_storage_reads_back_as_float32(model, store, full, tmp_path):
    small = EmbeddingSet.open(embed_store(model, store, tmp_path / "f16", modalities=["sequence"], storage_dtype="float16"))
    assert small.manifest["storage_dtype"] == "float16"
    v = small.vectors("sequence")
    assert v.dtype == np.float32
    np.testing.assert_allclose(v, full.vectors("sequence"), atol=2e-3)
    with pytest.raises(OneProtError, match="storage dtype"):
        embed_store(model, store, tmp_path / "bad", storage_dtype="int8")


@pytest.mark.parametrize("modality", ["sequence", "structure_tokens", "structure"])
def test_fast_path_matches_collate_and_forward(model, store, modality):
    # ESM encoders go through the packed forward pass; it must agree with collate + forward on one padded batch
    import torch

    from engine.data.items import items_for

    items = items_for(store, store.ids(modality=modality)[:12], modality)
    ours = model.embed(modality, items, batch_tokens=200)
    model.eval()
    with torch.no_grad():
        reference = model.encode(modality, model.collate(modality, items)).numpy()
    np.testing.assert_allclose(ours, reference, atol=1e-4)
    np.testing.assert_allclose(ours, model.embed(modality, items, packed=False), atol=1e-4)


def test_ids_restrict_the_run(model, store, tmp_path):
    some = store.ids()[::3]
    eset = EmbeddingSet.open(embed_store(model, store, tmp_path / "some", modalities=["sequence", "pocket"], ids=some))
    assert eset.ids("sequence") == some
    assert set(eset.ids("pocket")) == set(some) & set(store.ids(modality="pocket"))
    assert set(eset.labels["id"]) == set(some)
    with pytest.raises(OneProtError, match="not in the store"):
        embed_store(model, store, tmp_path / "bad", ids=["nobody"])


def _cosines(a: dict, b: dict) -> np.ndarray:
    assert a.keys() == b.keys()
    x = np.stack([a[k] for k in a]).astype(np.float64)
    y = np.stack([b[k] for k in a]).astype(np.float64)
    return (x * y).sum(1) / (np.linalg.norm(x, axis=1) * np.linalg.norm(y, axis=1))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_bf16_embedding_matches_cpu_fp32(model, store, tmp_path):
    import copy

    cpu = EmbeddingSet.open(embed_store(model, store, tmp_path / "cpu", chunk_size=5, build_indexes=False))
    on_gpu = copy.deepcopy(model).to("cuda")
    eset = EmbeddingSet.open(embed_store(on_gpu, store, tmp_path / "gpu", chunk_size=5, build_indexes=False))
    assert eset.model_hash == cpu.model_hash
    for m in MODALITIES:
        cos = _cosines(as_dict(eset, m), as_dict(cpu, m))
        assert cos.min() >= 0.99, (m, float(cos.min()))
