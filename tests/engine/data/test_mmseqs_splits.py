"""MMseqs2 splits, the own-clustering fallback, `data resplit` and `data check-leakage`."""

import json

import numpy as np
import pytest

from engine.cli import main
from engine.data import mmseqs
from engine.data.resplit import check_leakage, resplit_store
from engine.data.splits import SplitRule, cluster_for_splits, union_pairs
from engine.data.store import ProteinStore, write_store
from engine.errors import OneProtError
from engine.modality import ProteinRecord

needs_mmseqs = pytest.mark.skipif(mmseqs.mmseqs_binary() is None, reason="mmseqs binary not installed")


@pytest.fixture(scope="module")
def families(seqgen):
    return seqgen.families(seed=5, n=8, max_length=150, max_mutation=0.25)


def _leaky_store(path, families):
    """Every family member is its own 'cluster' with a round-robin split: families span all splits."""
    recs, splits = [], {}
    names = ("train", "valid", "test")
    for f, fam in enumerate(families):
        for k, s in enumerate(fam):
            pid = f"f{f}_{k}"
            recs.append(ProteinRecord(id=pid, sequence=s))
            splits[pid] = names[k % 3]
    clusters = {r.id: i for i, r in enumerate(recs)}
    method = {"method": "planted leak", "identity": 0.5, "identity_definition": "identical positions / alignment "
              "length (MMseqs2 --seq-id-mode 0)", "coverage": 0.8}
    return write_store(recs, path, splits, clusters, manifest_extra={"split_method": method})


def test_union_pairs_merges_transitively():
    assert union_pairs([0, 1, 2, 3], [(0, 1), (2, 1)]) == [0, 0, 0, 1]
    assert union_pairs([0, 0, 1], []) == [0, 0, 1]


@pytest.mark.slow
@needs_mmseqs
def test_mmseqs_recovers_families(families):
    seqs = [s for fam in families for s in fam]
    labels, desc = cluster_for_splits(seqs, identity=0.5, coverage=0.8, method="mmseqs", threads=1)
    for k in range(len(families)):
        assert len(set(labels[k * 5:(k + 1) * 5])) == 1, f"family {k} split across clusters"
    assert len(set(labels)) == len(families)
    assert desc["tool"].startswith("mmseqs") and desc["coverage"] == 0.8
    assert "alignment length" in desc["identity_definition"]


@pytest.mark.slow
@needs_mmseqs
def test_identity_option_changes_clusters(families):
    seqs = [s for fam in families for s in fam]
    strict, _ = cluster_for_splits(seqs, identity=0.95, coverage=0.8, method="mmseqs", threads=1)
    assert len(set(strict)) > len(families)  # 10-25 % mutants are below 95 % identity


def test_fallback_without_binary(families, monkeypatch):
    monkeypatch.setattr(mmseqs, "mmseqs_binary", lambda: None)
    seqs = [s for fam in families[:4] for s in fam]
    said = []
    labels, desc = cluster_for_splits(seqs, method="auto", log=said.append)
    assert desc["tool"] == "own" and desc["fallback"] == "mmseqs binary not found"
    assert any("fallback" in s for s in said) and len(set(labels)) == 4
    with pytest.raises(OneProtError, match="mmseqs"):
        cluster_for_splits(seqs, method="mmseqs")


def test_bad_options_are_named():
    with pytest.raises(OneProtError) as e:
        cluster_for_splits(["MKV"], coverage=1.5)
    assert e.value.where == "--coverage"
    with pytest.raises(OneProtError) as e:
        cluster_for_splits(["MKV"], method="cd-hit")
    assert e.value.where == "--split-method"


@pytest.mark.slow
@needs_mmseqs
def test_check_then_resplit_removes_leaks(families, tmp_path, capsys):
    store = _leaky_store(tmp_path / "store", families)
    before = check_leakage(store, threads=1)
    assert before["leaking"] == before["test_proteins"] > 0  # each test member has train family members
    assert before["definition"] == "alignment" and before["coverage"] == 0.8
    assert before["examples"][0]["identity"] >= 0.5
    coords_before = (store / "structures").exists()
    assert main(["data", "resplit", str(store), "--identity", "0.5", "--coverage", "0.8", "--threads", "1"]) == 0
    assert "re-split" in capsys.readouterr().out
    st = ProteinStore.open(store)
    assert st.manifest["split_method"]["tool"].startswith("mmseqs")
    assert st.manifest["previous_split_method"]["method"] == "planted leak"
    assert (store / "structures").exists() == coords_before
    assert not list(tmp_path.glob("store.tmp-*")) and not list(tmp_path.glob("store.old-*"))
    p = st.proteins
    fam = p["id"].str.split("_").str[0]
    assert (p.groupby(fam)["split"].nunique() == 1).all()  # whole families per split
    assert main(["data", "check-leakage", str(store), "--json", "--threads", "1"]) == 0
    after = json.loads(capsys.readouterr().out)
    assert after["leaking"] == 0 and after["test_proteins"] > 0


def test_own_check_without_binary(families, tmp_path, monkeypatch, capsys):
    store = _leaky_store(tmp_path / "store", families[:6])
    monkeypatch.setattr(mmseqs, "mmseqs_binary", lambda: None)
    res = check_leakage(store, definition="shorter", coverage=0.0)
    assert res["leaking"] == res["test_proteins"] and res["tool"].startswith("own")
    assert main(["data", "check-leakage", str(store), "--definition", "shorter", "--coverage", "0", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["leaking"] == res["leaking"]
    with pytest.raises(OneProtError, match="own definition"):
        check_leakage(store)  # the manifest asks for alignment-length identity with coverage


def test_resplit_keeps_old_store_on_failure(families, tmp_path, monkeypatch):
    store = _leaky_store(tmp_path / "store", families[:4])
    before = (store / "proteins.parquet").read_bytes()

    def boom(*a, **k):
        raise OneProtError("simulated clustering failure", "mmseqs")

    monkeypatch.setattr("engine.data.resplit.clusters_and_splits", boom)
    with pytest.raises(OneProtError):
        resplit_store(store)
    assert (store / "proteins.parquet").read_bytes() == before
    assert np.array_equal(sorted(p.name for p in tmp_path.iterdir()), ["store"])


@pytest.mark.slow
@needs_mmseqs
def test_build_splits_by_mmseqs_by_default(families, tmp_path, monkeypatch):
    from engine.data.build import build_store

    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    fasta = tmp_path / "in.fasta"
    fasta.write_text("".join(f">f{f}_{k}\n{s}\n" for f, fam in enumerate(families) for k, s in enumerate(fam)))
    path, _ = build_store([fasta], tmp_path / "store", cache_dir=tmp_path / "cache", split=SplitRule(coverage=0.7),
                          threads=1)
    st = ProteinStore.open(path)
    sm = st.manifest["split_method"]
    assert sm["tool"].startswith("mmseqs") and sm["coverage"] == 0.7 and sm["fractions"] == [0.8, 0.1, 0.1]
    fam = st.proteins["id"].str.split("_").str[0]
    assert (st.proteins.groupby(fam)["split"].nunique() == 1).all()


def test_resplit_keep_held_out_moves_only_train_clusters(families, tmp_path, capsys):
    """--keep-clusters --keep-held-out --stratify: held-out proteins stay put; a scarce stratum reaches test."""
    recs, splits = [], {}
    for f, fam in enumerate(families[:12]):
        for k, s in enumerate(fam):
            recs.append(ProteinRecord(id=f"f{f}_{k}", sequence=s, family="rare" if f < 6 else None))
            splits[f"f{f}_{k}"] = "valid" if f == 11 else "train"  # every 'rare' family starts in train
    clusters = {r.id: int(r.id.split("_")[0][1:]) for r in recs}
    store = write_store(recs, tmp_path / "s", splits, clusters, manifest_extra={"split_method": {"method": "planted"}})
    args = ["data", "resplit", str(store), "--keep-clusters", "--keep-held-out", "--stratify",
            "--strata-fractions", "0.5,0.25,0.25"]
    assert main(args) == 0 and "re-split" in capsys.readouterr().out
    p = ProteinStore.open(store).proteins.set_index("id")
    fam = p.index.str.split("_").str[0]
    assert (p.groupby(fam)["split"].nunique() == 1).all() and (p.groupby(fam)["cluster"].nunique() == 1).all()
    assert (p[fam == "f11"]["split"] == "valid").all()  # a held-out cluster never moves
    rare = p[p["family"] == "rare"]
    assert set(rare["split"]) == {"train", "valid", "test"}
    m = ProteinStore.open(store).manifest["split_method"]
    assert m["clusters_kept"] and m["held_out_kept"] and m["stratified"]["fractions"] == [0.5, 0.25, 0.25]
    with pytest.raises(OneProtError, match="keep-clusters"):
        resplit_store(store, keep_held_out=True)
