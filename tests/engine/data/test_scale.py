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
