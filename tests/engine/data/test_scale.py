"""Parallel parsing, shard builds + merge, and memory-mapped store arrays."""

import shutil
from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.build import build_store, in_shard
from engine.data.store import ProteinStore
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


@pytest.fixture()
def inputs(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ONEPROT_MMSEQS", "off")  # splits are not under test here
    d = tmp_path / "in"
    d.mkdir()
    for name in ("1lzh.pdb.gz", "d1cih__.pdb.gz", "1a5z_A.cif.gz", "pocket_toy.pdb", "uniprot_small.fasta"):
        shutil.copy(FIX / name, d / name)
    for k in range(3):  # more structures under new names, as the benchmark re-uses files
        shutil.copy(FIX / "pocket_toy.pdb", d / f"toy{k}.pdb")
    return d


def _summary(path):
    st = ProteinStore.open(path)
    p = st.proteins.sort_values("id")
    coords = {i: st.coords(i) for i in st.ids(modality="structure")}
    return p[["id", "sequence", "structure_tokens", "n_pockets"]].reset_index(drop=True), coords


@pytest.mark.slow
def test_two_workers_build_the_same_store(inputs, tmp_path):
    one, _ = build_store([inputs], tmp_path / "w1", cache_dir=tmp_path / "c1", workers=1)
    two, _ = build_store([inputs], tmp_path / "w2", cache_dir=tmp_path / "c2", workers=2)
    (a, ca), (b, cb) = _summary(one), _summary(two)
    assert a.equals(b) and ca.keys() == cb.keys()
    assert all(np.array_equal(ca[k], cb[k], equal_nan=True) for k in ca)


def test_store_arrays_are_memory_mapped(inputs, tmp_path):
    path, _ = build_store([inputs], tmp_path / "s", cache_dir=tmp_path / "c", workers=1)
    st = ProteinStore.open(path)
    arrays = st._load_structures()
    assert isinstance(arrays["coords"], np.memmap)
    pid = st.ids(modality="structure")[0]
    c = st.coords(pid)
    assert c.flags.writeable and c.shape == (len(st.row(pid)["sequence"]), 4, 3)


def test_shards_merge_into_the_full_store(inputs, tmp_path, capsys):
    full, _ = build_store([inputs], tmp_path / "full", cache_dir=tmp_path / "c", workers=1)
    shards = []
    for i in range(3):
        out = tmp_path / f"shard{i}"
        assert main(["data", "build", str(inputs), "--out", str(out), "--shard", f"{i}/3", "--workers", "1",
                     "--quiet"]) == 0
        st = ProteinStore.open(out)
        assert st.manifest["shard"] == [i, 3] and st.manifest["split_method"]["method"].startswith("none")
        shards.append(str(out))
    assert main(["data", "merge", *shards, "--out", str(tmp_path / "merged")]) == 0
    assert "wrote" in capsys.readouterr().out
    (a, ca), (b, cb) = _summary(full), _summary(tmp_path / "merged")
    assert a.equals(b)
    assert all(np.array_equal(ca[k], cb[k], equal_nan=True) for k in ca)
    merged = ProteinStore.open(tmp_path / "merged")
    assert merged.manifest["split_method"]["tool"] == "own" and set(merged.proteins["split"]) <= {"train", "valid", "test"}
    assert len(merged.manifest["merged_from"]) == 3
    assert len(merged.pockets("pocket_toy_A")) == len(ProteinStore.open(full).pockets("pocket_toy_A"))
    with pytest.raises(OneProtError, match="twice"):
        from engine.data.shards import merge_stores
        merge_stores([shards[0], shards[0]], tmp_path / "bad")


def test_shard_keeps_a_complex_together():
    for n in (2, 3, 7):
        hits = {in_shard(Path(f), (i, n)) for f in ("1abc_protein.pdb", "1abc_ligand.sdf", "1abc.pdb_predictions.csv",
                                                    "1abc_out") for i in range(n) if in_shard(Path(f), (i, n))}
        assert hits == {True}
        owners = [[i for i in range(n) if in_shard(Path(f), (i, n))] for f in
                  ("1abc_protein.pdb", "1abc_ligand.sdf", "1abc.pdb_predictions.csv", "1abc_out")]
        assert all(len(o) == 1 and o == owners[0] for o in owners)


def test_bad_shard_and_workers_options(tmp_path):
    for bad in ("3/3", "a/b", "1"):
        assert main(["data", "build", str(FIX / "pocket_toy.pdb"), "--out", str(tmp_path / "x"), "--shard", bad]) == 1
    assert main(["data", "build", str(FIX / "pocket_toy.pdb"), "--out", str(tmp_path / "x"), "--workers", "0"]) == 1


def test_build_writes_the_store_in_chunks_without_holding_every_structure(inputs, tmp_path, monkeypatch):
    """The store is written `chunk_size` proteins at a time and no more structures than one chunk's are in memory
    then (the rest stay in the parse cache); the store is the same as one written in a single chunk."""
    import gc

    from engine.data import store as store_mod
    from engine.modality import ProteinRecord

    whole, _ = build_store([inputs], tmp_path / "whole", cache_dir=tmp_path / "c", workers=1, chunk_size=10_000)
    calls = []
    add = store_mod.StoreWriter.add

    def spy(self, records):
        held = sum(1 for o in gc.get_objects() if type(o) is ProteinRecord and o.coords is not None)
        calls.append((len(records), sum(r.coords is not None for r in records), held))
        return add(self, records)

    monkeypatch.setattr(store_mod.StoreWriter, "add", spy)
    path, _ = build_store([inputs], tmp_path / "chunked", cache_dir=tmp_path / "c", workers=1, chunk_size=2)
    n = len(ProteinStore.open(path))
    n_struct = len(ProteinStore.open(path).ids(modality="structure"))
    assert n_struct > 4 and [c[0] for c in calls] == [2] * (n // 2) + ([n % 2] if n % 2 else [])
    assert all(held <= 2 for _, _, held in calls), calls  # only the chunk being written has coordinates
    (a, ca), (b, cb) = _summary(whole), _summary(path)
    assert a.equals(b) and ca.keys() == cb.keys()
    assert all(np.array_equal(ca[k], cb[k], equal_nan=True) for k in ca)
    assert ProteinStore.open(path).proteins["split"].tolist() == ProteinStore.open(whole).proteins["split"].tolist()


def test_array_writer_appends_exactly_what_was_sized(tmp_path):
    from engine.data.store_arrays import ArrayWriter, open_arrays

    c = np.arange(2 * 12, dtype=np.float32).reshape(2, 4, 3)
    w = ArrayWriter(tmp_path / "structures", 2, 3, 2, 2, side_chains=True, plddt=True)
    w.add("a", c, ["1", "2"], None, np.array([50.0, 60.0]))
    w.add("b", c[:1], ["7A"], np.ones((1, 6, 3)), None)
    with pytest.raises(OneProtError, match="more than"):
        w.add("c", c[:1], ["1"])
    w.close()
    got = open_arrays(tmp_path)
    assert got["index"] == {"a": 0, "b": 1} and got["offsets"].tolist() == [0, 2, 3]
    assert np.array_equal(got["coords"], np.concatenate([c, c[:1]])) and got["residue_numbers"].tolist() == ["1", "2", "7A"]
    assert np.isnan(got["side_chains"][:2]).all() and (got["side_chains"][2] == 1).all()
    assert got["has_side_chains"].tolist() == [False, True] and np.isnan(got["plddt"][2]) and got["plddt"][1] == 60
    short = ArrayWriter(tmp_path / "short", 2, 3, 2, 2, side_chains=False, plddt=False)
    short.add("a", c, ["1", "2"])
    with pytest.raises(OneProtError, match="wrote 1/2"):
        short.close()
