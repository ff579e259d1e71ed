"""Baselines, evolution and probes on hand-made vectors with known answers."""

import numpy as np
import pytest
import torch

from engine.evaluate import baselines as B
from engine.evaluate.evolution import family_similarity
from engine.evaluate.probes import ec_class, probe


def families(n_fam=4, per=15, dim=12, spread=0.1, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.standard_normal((n_fam, dim))
    labels = np.repeat(np.arange(n_fam), per)
    return centres[labels] + spread * rng.standard_normal((len(labels), dim)), [f"F{l}" for l in labels]


def test_kmer_vectors_are_unit_and_identical_strings_match():
    v = B.kmer_vectors(["ACDEF", "ACDEF", "WWWWW", "AC"], B.AMINO)
    assert v.shape == (4, 8000)
    np.testing.assert_allclose(np.linalg.norm(v[:3], axis=1), 1.0, atol=1e-6)
    assert v[0] @ v[1] == pytest.approx(1.0) and v[0] @ v[2] == 0.0
    assert not v[3].any()  # too short for a 3-mer


def test_classical_baseline_exists_only_where_letters_compare():
    assert B.classical_name("sequence", "structure").startswith("amino-acid")
    assert B.classical_name("structure_tokens", "structure").startswith("3Di")
    assert B.classical_name("text", "sequence") is None
    assert B.classical_strings("sequence", ["MKV"], "pocket") == (["MKV"], B.AMINO)
    from engine.modality import StructureInput

    pocket = StructureInput("MKVLA", np.zeros((5, 4, 3), np.float32), focus=np.array([1, 3]))
    assert B.classical_strings("pocket", [pocket], "sequence") == (["KL"], B.AMINO)  # lining residues, not the chain


def test_random_heads_are_seeded_and_differ_from_the_trained_ones():
    class Fake:
        modalities = ["sequence", "text"]
        heads = torch.nn.ModuleDict({"sequence": torch.nn.Linear(4, 3), "text": torch.nn.Linear(5, 3)})

    with torch.no_grad():
        for h in Fake.heads.values():
            h.weight.fill_(0.5)
    a, b = B.random_heads(Fake, seed=1), B.random_heads(Fake, seed=1)
    assert torch.equal(a["text"].weight, b["text"].weight)
    assert not torch.equal(a["text"].weight, Fake.heads["text"].weight)
    assert not torch.equal(a["sequence"].weight[:, :3], a["text"].weight[:, :3])
    out = B.apply_head(a["sequence"], np.ones((2, 4), np.float32))
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1.0, atol=1e-6)


def test_family_similarity_separates_clusters_and_not_noise():
    x, fam = families()
    good = family_similarity(x, fam)
    assert good["roc_auc"] > 0.99 and good["same"]["mean"] > good["different"]["mean"]
    assert sum(good["hist_same"]) == good["same"]["n"]
    noise = family_similarity(np.random.default_rng(3).standard_normal(x.shape), fam)
    assert abs(noise["roc_auc"] - 0.5) < 0.1
    assert family_similarity(x, ["F0"] * len(fam)) is None  # one family: nothing to compare
    sub = family_similarity(x, fam, max_pairs=200)
    assert sub["n_pairs"] <= 200 and sub["roc_auc"] > 0.95


def test_probe_learns_separable_labels_and_skips_tiny_classes():
    x, fam = families(per=10)
    res = probe(x, fam, seed=0)
    assert res["accuracy"] > 0.95 and res["majority_class"] == pytest.approx(0.25) and res["folds"] == 5
    mlp = probe(x, fam, kind="mlp")
    assert mlp["accuracy"] > 0.9
    assert probe(x[:4], fam[:4]) is None  # no class with 3 members
    shuffled = probe(np.random.default_rng(0).standard_normal(x.shape), fam)
    assert shuffled["accuracy"] < 0.6


def test_ec_class():
    assert ec_class("3.4.21.4") == "3" and ec_class("1.-.-.-") == "1"
    assert ec_class(None) is None and ec_class(float("nan")) is None and ec_class("n/a") is None
