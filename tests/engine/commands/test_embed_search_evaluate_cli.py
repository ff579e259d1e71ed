"""End to end through the `oneprot` CLI: embed -> search (every query kind) -> evaluate -> project,
and the refusals a user can run into (mismatched checkpoint/index, bad queries). Self-contained:
the checkpoint is built here with the model API."""

import json

import pytest
import torch

from engine import cli

pytestmark = pytest.mark.slow


def tiny_checkpoint(folder, dim=16, seed=0, text=True):
    from engine.checkpoint import save_checkpoint
    from engine.model import ModelConfig, OneProt
    from engine.presets.tiny import build

    torch.manual_seed(seed)
    enc = {k: v for k, v in build().model.encoders.items() if text or k != "text"}
    return save_checkpoint(OneProt(ModelConfig(encoders=enc, dim=dim)), folder)


@pytest.fixture(scope="module")
def world(make_family_store, tmp_path_factory):
    root = tmp_path_factory.mktemp("cli")
    store = make_family_store(root / "store")
    ckpt = tiny_checkpoint(root / "ckpt")
    assert cli.main(["embed", "--checkpoint", str(ckpt), "--data", str(store), "--out", str(root / "emb"),
                     "--chunk-size", "8", "--export-h5", str(root / "seq.h5"), "--export-parquet", str(root / "all.parquet")]) == 0
    return root, store, ckpt


def run_json(capsys, argv):
    assert cli.main(argv) == 0, capsys.readouterr().err
    return json.loads(capsys.readouterr().out)


def test_search_every_query_kind(world, capsys, tmp_path):
    from test_query import write_pdb  # a hand-made PDB with a ligand

    root, _, ckpt = world
    base = ["search", "--checkpoint", str(ckpt), "--embeddings", str(root / "emb"), "-k", "3", "--json"]
    out = run_json(capsys, base + ["--query-sequence", "MKVLAAGLLGKEV", "--target", "text"])
    assert len(out["hits"]) == 3 and out["hits"][0]["rank"] == 1
    assert {"id", "score", "modality", "name", "family", "ec", "organism"} <= set(out["hits"][0])
    assert out["hits"][0]["score"] >= out["hits"][-1]["score"]
    out = run_json(capsys, base + ["--query-text", "family 2 enzyme", "--target", "pocket"])
    assert all(h["modality"] == "pocket" for h in out["hits"])
    pdb = write_pdb(tmp_path / "q.pdb")
    out = run_json(capsys, base + ["--query-structure", str(pdb), "--target", "sequence"])
    assert out["query"]["modality"] == "structure"
    out = run_json(capsys, base + ["--query-structure", str(pdb), "--query-modality", "pocket", "--target", "structure"])
    assert out["query"]["modality"] == "pocket"
    fasta = tmp_path / "q.fa"
    fasta.write_text(">q\nMKVLAAGLLG\n")
    assert run_json(capsys, base + ["--query-fasta", str(fasta), "--target", "structure_tokens"])["hits"]
    # an id query finds its own structure first: the stored vector is the same one
    out = run_json(capsys, ["search", "--embeddings", str(root / "emb"), "--query-id", "fam1_p0",
                            "--query-modality", "structure", "--target", "structure", "-k", "2", "--json"])
    assert out["hits"][0]["id"] == "fam1_p0" and out["hits"][0]["score"] == pytest.approx(1.0, abs=1e-4)
    # --tm-align: the structural check beside the E-value; the protein's own structure superposes exactly
    store = str(world[1])
    out = run_json(capsys, ["search", "--embeddings", str(root / "emb"), "--data", store, "--query-id", "fam1_p0",
                            "--query-modality", "structure", "--target", "sequence", "-k", "3", "--tm-align", "--json"])
    own = next(h for h in out["hits"] if h["id"] == "fam1_p0")
    assert own["tm_score"] == pytest.approx(1.0, abs=1e-3) and own["tm_rmsd"] < 0.01
    assert all(0.0 < h["tm_score"] <= 1.0 for h in out["hits"] if "tm_score" in h)
    out = run_json(capsys, base + ["--data", store, "--query-structure", str(pdb), "--target", "structure", "--tm-align"])
    assert all("tm_score" in h for h in out["hits"])  # every structure hit has a backbone to align
    assert cli.main(base + ["--data", store, "--query-text", "kinase", "--target", "structure", "--tm-align"]) == 1
    assert "needs a query with a structure" in capsys.readouterr().err


def test_bad_queries_and_mismatches_are_refused(world, capsys, tmp_path):
    root, _, ckpt = world
    base = ["search", "--checkpoint", str(ckpt), "--embeddings", str(root / "emb"), "--target", "sequence"]
    for query, message in ((["--query-sequence", ""], "empty sequence"), (["--query-sequence", "MKV#L"], "invalid character"),
                           (["--query-sequence", "A" * 6000], "above the limit"), (["--query-text", "  "], "empty text"),
                           (["--query-id", "nobody"], "no sequence embedding for protein 'nobody'")):
        assert cli.main(base + query) == 1
        assert message in capsys.readouterr().err
    other = tiny_checkpoint(tmp_path / "other", seed=1, text=False)  # same shape, other weights
    # the old flag name --index still works
    assert cli.main(["search", "--checkpoint", str(other), "--index", str(root / "emb"), "--query-sequence", "MKV"]) == 1
    assert "model hash" in capsys.readouterr().err
    narrow = tiny_checkpoint(tmp_path / "narrow", dim=8, text=False)
    assert cli.main(["search", "--checkpoint", str(narrow), "--embeddings", str(root / "emb"), "--query-sequence", "MKV"]) == 1
    assert "8 dimensions" in capsys.readouterr().err
    # a checkpoint without a text encoder cannot embed a text query (its own index, so the hash matches)
    assert cli.main(["embed", "--checkpoint", str(other), "--data", str(root / "store"), "--out", str(tmp_path / "e2"),
                     "--modalities", "sequence"]) == 0
    capsys.readouterr()
    assert cli.main(["search", "--checkpoint", str(other), "--embeddings", str(tmp_path / "e2"), "--query-text", "kinase"]) == 1
    assert "no text encoder" in capsys.readouterr().err


def test_evaluate_json_and_report(world, capsys, tmp_path):
    root, store, ckpt = world
    res = run_json(capsys, ["evaluate", "--checkpoint", str(ckpt), "--data", str(store), "--split", "test", "--json",
                            "--report", str(tmp_path / "rep"), "--out", str(tmp_path / "new" / "dir" / "r.json")])
    assert {"retrieval", "baselines", "evolution", "probes"} <= set(res)
    assert json.loads((tmp_path / "new" / "dir" / "r.json").read_text())["retrieval"] == res["retrieval"]
    assert "structure->text" in res["retrieval"] and res["retrieval"]["structure->text"]["kind"] == "emergent"
    tm = res["baselines"]["tmscore"]["pocket->structure"]  # the classical geometric baseline, on by default
    assert tm["method"].startswith("TM-score") and tm["n_queries"] == res["retrieval"]["pocket->structure"]["n_queries"]
    assert (tmp_path / "rep" / "report.html").is_file() and (tmp_path / "rep" / "retrieval_r10.png").is_file()


def test_evaluate_refuses_a_bad_out_path_before_working(world, capsys, tmp_path):
    root, store, ckpt = world
    (tmp_path / "taken").mkdir()
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(store), "--out", str(tmp_path / "taken")]) != 0
    assert "--out" in capsys.readouterr().err
    assert cli.main(["evaluate", "--checkpoint", str(ckpt), "--data", str(store), "--tmscore-max", "-1"]) != 0
    assert "--tmscore-max" in capsys.readouterr().err


def test_project_and_exports(world, capsys, tmp_path):
    import h5py
    import pandas as pd

    root, _, _ = world
    out = run_json(capsys, ["project", "--embeddings", str(root / "emb"), "--modalities", "sequence,structure",
                            "--out", str(tmp_path / "map.parquet"), "--json", "--no-cache"])
    table = pd.read_parquet(tmp_path / "map.parquet")
    assert out["points"] == len(table) and set(table["modality"]) == {"sequence", "structure"}
    assert {"x", "y", "family"} <= set(table.columns)
    with h5py.File(root / "seq.h5") as h:
        assert len(h.keys()) == 32
    assert len(pd.read_parquet(root / "all.parquet")) > 32
