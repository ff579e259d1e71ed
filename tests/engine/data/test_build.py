"""`oneprot data build/stats` end to end on small inputs, the bad-input corpus, and atomic writes."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.data import build as build_mod
from engine.data.build import build_store
from engine.data.store import ProteinStore
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"
REPO = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _own_clustering(monkeypatch):
    # these tests are about parsing and writing; the MMseqs2 split path (seconds of index set-up per call)
    # is covered in test_mmseqs_splits.py
    monkeypatch.setenv("ONEPROT_MMSEQS", "off")


@pytest.fixture()
def corpus(tmp_path, monkeypatch):
    """The committed bad corpus plus a file over the size limit used by the tests (0.05 MB)."""
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "inputs"
    shutil.copytree(FIX / "bad", folder)
    (folder / "huge.fasta").write_text(">big\n" + "ACDEFGHIKLMNPQRSTVWY" * 4000 + "\n")  # 80 kB
    return folder


def test_bad_corpus_builds_from_good_files(corpus, tmp_path):
    path, report = build_store([corpus], tmp_path / "store", max_file_mb=0.05, cache_dir=tmp_path / "cache")
    skipped = {Path(f).name: why for f, why in report.skipped}
    assert "truncated" in skipped["truncated.pdb.gz"]
    assert "binary" in skipped["binary.pdb"] and "binary" in skipped["blob.dat"]
    assert skipped["empty.fasta"] == "empty file"
    assert "not a protein sequence" in skipped["dna.fasta"]
    assert "ligands/waters only" in skipped["ligand_only.pdb"]
    assert "too large" in skipped["huge.fasta"]
    assert "unrecognised" in skipped["notes.txt"]
    assert "gzip_bomb.pdb.gz" in skipped  # 62 kB that expands to 64 MB
    assert set(skipped) == {"truncated.pdb.gz", "binary.pdb", "blob.dat", "empty.fasta", "dna.fasta",
                            "ligand_only.pdb", "huge.fasta", "notes.txt", "gzip_bomb.pdb.gz"}
    notes = " | ".join(f"{Path(f).name}: {n}" for f, n in report.notes)
    assert "ca_only.pdb: chain A: CA-only" in notes and "bad_record: invalid character '1'" in notes
    store = ProteinStore.open(path)
    ids = set(store.proteins["id"])
    assert ids == {"P69905", "lower_case", "good_toy_A", "ca_only_A"}
    assert store.row("lower_case")["sequence"].startswith("MKTAYIAKQ")
    assert store.row("P69905")["sequence"].endswith("SKYR")  # trailing '*' dropped
    assert store.coords("ca_only_A") is None  # CA-only kept as sequence-only
    toy = store.record("good_toy_A")
    assert toy.coords.shape == (25, 4, 3) and len(toy.structure_tokens) == 25
    assert [p.residues for p in toy.pockets] == [[4, 5, 6]]
    assert "Hemoglobin subunit alpha" in store.row("P69905")["text"]


def test_no_usable_file_exits_nonzero_without_traceback(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    folder = tmp_path / "junk"
    folder.mkdir()
    for name in ("empty.fasta", "binary.pdb", "dna.fasta", "notes.txt", "truncated.pdb.gz"):
        shutil.copy(FIX / "bad" / name, folder / name)
    code = main(["data", "build", str(folder), "--out", str(tmp_path / "store")])
    err = capsys.readouterr().err
    assert code == 1
    assert "no usable protein" in err and "empty.fasta: empty file" in err
    assert "Traceback" not in err
    assert not (tmp_path / "store").exists()


def test_missing_input_and_bad_identity(tmp_path, capsys):
    assert main(["data", "build", str(tmp_path / "nope"), "--out", str(tmp_path / "s")]) == 1
    assert "no such file or folder" in capsys.readouterr().err
    assert main(["data", "build", str(FIX / "bad" / "good.fasta"), "--out", str(tmp_path / "s"), "--identity", "2"]) == 1
    assert "--identity" in capsys.readouterr().err


def test_cli_build_and_stats_json(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "store"
    assert main(["data", "build", str(FIX / "bad" / "good.fasta"), str(FIX / "pocket_toy.pdb"),
                 str(FIX / "swissprot_small.dat"), "--out", str(out), "--quiet"]) == 0
    capsys.readouterr()
    assert main(["data", "stats", str(out), "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["proteins"] == 5
    assert set(stats["modalities"]) == {"sequence", "structure", "structure_tokens", "pocket", "text"}
    assert stats["modalities"]["structure"] == 1 and stats["modalities"]["pocket"] == 1
    assert stats["modalities"]["text"] == 5
    assert set(stats["splits"]) == {"train", "valid", "test"} and sum(stats["splits"].values()) == 5
    assert "family_labelled" in stats and stats["split_method"]["identity"] == 0.5


def test_stockholm_labels_and_resume_from_cache(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    sto = tmp_path / "fam.sto"
    sto.write_text("# STOCKHOLM 1.0\n#=GF ID   Toy_fam\n#=GF AC   PF99999.1\n"
                   "P69905/1-40   MVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTT\n"
                   "NEW_MEMBER/3-40 --LSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFP..\n//\n")
    inputs = [FIX / "bad" / "good.fasta", sto]
    path, _ = build_store(inputs, tmp_path / "s1", cache_dir=cache)
    store = ProteinStore.open(path)
    assert store.row("P69905")["family"] == "Toy_fam (PF99999)"
    assert store.row("NEW_MEMBER/3-40")["family"] == "Toy_fam (PF99999)"
    assert store.stats()["family_labelled"] == 2

    def boom(*a, **k):
        raise AssertionError("file parsed again although it is cached")

    monkeypatch.setattr(build_mod, "parse_file", boom)
    path2, _ = build_store(inputs, tmp_path / "s2", cache_dir=cache)
    assert ProteinStore.open(path2).proteins["id"].tolist() == store.proteins["id"].tolist()


def test_failed_write_keeps_old_store(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    out = tmp_path / "store"
    build_store([FIX / "bad" / "good.fasta"], out, cache_dir=cache)
    before = ProteinStore.open(out).proteins["id"].tolist()

    import engine.data.store as store_mod

    def fail(*a, **k):
        raise RuntimeError("disk full (injected)")

    monkeypatch.setattr(store_mod.ArrayWriter, "add", fail)  # dies after proteins.parquet is written
    with pytest.raises(RuntimeError, match="injected"):
        build_store([FIX / "bad" / "good.fasta", FIX / "pocket_toy.pdb"], out, cache_dir=cache)
    assert ProteinStore.open(out).proteins["id"].tolist() == before
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith("store")] == ["store"]


def test_killed_build_process_keeps_old_store(tmp_path):
    out = tmp_path / "store"
    build_store([FIX / "bad" / "good.fasta"], out, cache_dir=tmp_path / "cache")
    before = ProteinStore.open(out).proteins["id"].tolist()
    script = (
        "import os, signal, numpy as np, engine.data.store as s\n"
        "from engine.data.build import build_store\n"
        "def die(*a, **k): os.kill(os.getpid(), signal.SIGKILL)\n"
        "s.ArrayWriter.add = die\n"
        f"build_store([{str(FIX / 'bad' / 'good.fasta')!r}, {str(FIX / 'pocket_toy.pdb')!r}], {str(out)!r},"
        f" cache_dir={str(tmp_path / 'cache')!r})\n"
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True,
                          env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == -9  # really killed mid-write
    assert ProteinStore.open(out).proteins["id"].tolist() == before


def test_p2rank_output_attached_to_its_structure(tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    shutil.copy(FIX / "pocket_toy.pdb", folder / "toy.pdb")
    (folder / "toy.pdb_predictions.csv").write_text(
        "name,rank,score,probability,sas_points,surf_atoms,center_x,center_y,center_z,residue_ids,surf_atom_ids\n"
        "pocket1,1,9.0,0.7,10,5,0,0,0,A_1 A_2 A_3,1 2\n")
    (folder / "other.pdb_predictions.csv").write_text("name,rank,score,residue_ids\npocket1,1,1.0,A_1\n")
    path, report = build_store([folder], tmp_path / "store", cache_dir=tmp_path / "cache")
    pockets = ProteinStore.open(path).pockets("toy_A")
    assert [(p.source, p.residues) for p in pockets] == [("ligand", [4, 5, 6]), ("p2rank", [0, 1, 2])]
    assert any("other.pdb_predictions.csv" in f and "no structure named 'other'" in w for f, w in report.skipped)


def test_open_missing_store_is_a_clear_error(tmp_path):
    with pytest.raises(OneProtError, match="no such store"):
        ProteinStore.open(tmp_path / "missing")


def test_predict_pockets_flag(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "store"
    assert main(["data", "build", str(FIX / "d1cih__.pdb.gz"), str(FIX / "pocket_toy.pdb"), "--out", str(out),
                 "--predict-pockets", "--quiet"]) == 0
    store = ProteinStore.open(out)
    assert [p.source for p in store.pockets("d1cih__")] == ["fpocket-rs"]
    assert [p.source for p in store.pockets("pocket_toy_A")] == ["ligand"]  # ligand pockets are not replaced
