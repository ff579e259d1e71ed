"""Frozen-anchor feature cache: same features as the encoder, read instead of recomputed, resumable,
rebuilt when its plan changes, and wired into the trainer (RUN/anchor_cache)."""

import json

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.data.items import items_for
from engine.data.store import ProteinStore
from engine.encoders.feature_cache import build_feature_cache
from engine.encoders.unirep import UniRepEncoder
from engine.model import ModelConfig, OneProt
from engine.presets.base import TrainConfig
from engine.train import Trainer
from test_unirep import tiny_arrays

torch.set_num_threads(1)
SEQS = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMAEELK", "PPGW", "MKTAYIAKQ", "ACDEFGHIKLMNPQRSTVWY", "M"]


@pytest.fixture
def tiny_npz(tmp_path):
    path = tmp_path / "tiny_unirep.npz"
    np.savez(path, **tiny_arrays())
    return path


class Counting:
    """Wraps residue_states to count how many sequences it computes."""

    def __init__(self, enc):
        self.n, self.inner = 0, enc.residue_states
        enc.residue_states = self

    def __call__(self, tokens, lengths):
        self.n += len(lengths)
        return self.inner(tokens, lengths)


@pytest.mark.parametrize("pooling", ["mean", "mean_max", "attention"])
def test_cache_gives_the_encoders_features_without_recomputing(tiny_npz, tmp_path, pooling):
    enc = UniRepEncoder({"weights": str(tiny_npz), "pooling": pooling})
    want = enc(enc.collate(SEQS)).pooled
    cache = build_feature_cache(enc, SEQS, tmp_path / "cache", batch_residues=40, max_batch=3)
    assert cache.kind == ("states" if pooling == "attention" else "pooled") and len(cache) == len(SEQS)
    enc.attach_feature_cache(cache)
    count = Counting(enc)
    got = enc(enc.collate(SEQS[::-1])).pooled
    assert count.n == 0
    atol = 2e-3 if pooling == "attention" else 1e-6  # per-residue states are stored as float16
    assert np.allclose(got.detach().numpy(), want.detach().numpy()[::-1], atol=atol)
    if pooling == "attention":  # the scorer trains on cached states
        enc.train()
        enc(enc.collate(SEQS[:2])).pooled.sum().backward()
        assert all(p.grad is not None for p in enc.pool.parameters())
    enc(enc.collate(["MKV"]))  # not in the cache: computed
    assert count.n == 1


def test_cache_resumes_finished_chunks_and_rebuilds_on_a_new_plan(tiny_npz, tmp_path):
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    folder = tmp_path / "cache"
    build_feature_cache(enc, SEQS, folder, batch_residues=40, max_batch=2)
    chunks = sorted(folder.glob("chunk_*.npy"))
    assert len(chunks) >= 3 and (folder / "manifest.json").is_file()
    # a build killed after some chunks: no manifest, one chunk missing
    (folder / "manifest.json").unlink()
    chunks[1].unlink()
    count = Counting(enc)
    build_feature_cache(enc, SEQS, folder, batch_residues=40, max_batch=2)
    assert 0 < count.n <= 2
    count.n = 0
    build_feature_cache(enc, SEQS, folder, batch_residues=40, max_batch=2)  # complete: nothing computed
    assert count.n == 0
    cache = build_feature_cache(enc, SEQS + ["WWW"], folder, batch_residues=40, max_batch=2)  # other sequences
    assert count.n == len(SEQS) + 1 and "WWW" in cache
    assert json.loads((folder / "plan.json").read_text())["sequences"] == len(SEQS) + 1


def test_trainer_caches_the_frozen_anchor_and_checkpoint_holds_none_of_it(make_alignment_store, tiny_npz, tmp_path):
    store = ProteinStore.open(make_alignment_store(tmp_path / "store", n=24))
    torch.manual_seed(0)
    model = OneProt(ModelConfig(encoders={
        "sequence": {"type": "unirep", "weights": str(tiny_npz), "pooling": "attention"},
        "structure_tokens": {"layers": 1, "dim": 16, "heads": 2}}, dim=8))
    enc = model.encoders["sequence"]
    trainer = Trainer(model, store, TrainConfig(steps=3, batch_size=4, eval_every=0, checkpoint_every=0,
                                                eval_size=4), tmp_path / "run", progress=False)
    count = Counting(enc)
    summary = trainer.fit()
    assert summary["anchor_cache_seconds"] >= 0
    assert (tmp_path / "run" / "anchor_cache" / "manifest.json").is_file()
    train_ids = store.ids(split="train", modality="structure_tokens")
    valid_ids = store.ids(split="valid", modality="structure_tokens")
    assert count.n == len(set(items_for(store, train_ids + valid_ids, "sequence")))  # once each, in the cache
    assert set(trainer._eval_ids["structure_tokens"]) <= set(valid_ids)
    for s in items_for(store, train_ids, "sequence"):
        assert s in enc.feature_cache
    keys = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert not any("mlstm" in k or k.startswith("encoders.sequence.embedding") for k in keys)


def test_runs_with_a_shared_anchor_cache_dir_compute_it_once(make_alignment_store, tiny_npz, tmp_path):
    store = ProteinStore.open(make_alignment_store(tmp_path / "store", n=24))
    shared = tmp_path / "shared_cache"
    counts = []
    for seed, max_length in ((0, 2000), (1, 2000), (0, 8)):  # a second seed shares; another max_length does not
        torch.manual_seed(seed)
        model = OneProt(ModelConfig(encoders={
            "sequence": {"type": "unirep", "weights": str(tiny_npz), "max_length": max_length},
            "structure_tokens": {"layers": 1, "dim": 16, "heads": 2}}, dim=8))
        count = Counting(model.encoders["sequence"])
        Trainer(model, store, TrainConfig(steps=2, batch_size=4, eval_every=0, checkpoint_every=0, eval_size=4,
                                          seed=seed, anchor_cache_dir=str(shared)),
                tmp_path / f"run{seed}_{max_length}", progress=False).fit()
        counts.append(count.n)
    assert counts[0] > 0 and counts[1] == 0 and counts[2] > 0
    assert len([d for d in shared.iterdir() if d.is_dir()]) == 2
    assert not (tmp_path / "run1_2000" / "anchor_cache").exists()


def test_cli_switches_the_anchor_to_unirep_with_sets(make_alignment_store, tiny_npz, tmp_path, capsys):
    from engine.cli import main

    store = make_alignment_store(tmp_path / "store", n=24)
    unirep = ["--set", "encoders.sequence.type=unirep", "--set", f"encoders.sequence.weights={tiny_npz}",
              "--set", "encoders.sequence.pooling=attention"]
    assert main(["train", "--preset", "tiny", "--data", str(store), "--out", str(tmp_path / "run"), "--quiet",
                 "--modalities", "structure_tokens", "--steps", "2", "--set", "train.eval_every=0", *unirep]) == 0
    config = json.loads((tmp_path / "run" / "model" / "config.json").read_text())["encoders"]["sequence"]
    assert config["type"] == "unirep" and config["pooling"] == "attention" and len(config["sha256"]) == 64
    assert "layers" not in config  # the ESM fields of the preset do not follow the switch
    assert (tmp_path / "run" / "anchor_cache" / "manifest.json").is_file()
    assert main(["pretrain", "--modality", "sequence", "--preset", "tiny", "--data", str(store), "--quiet",
                 "--out", str(tmp_path / "pre"), *unirep]) == 1
    assert "UniRep anchor comes pretrained" in capsys.readouterr().err


def test_a_new_plan_in_a_shared_folder_computes_only_new_sequences(tiny_npz, tmp_path):
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    shared = tmp_path / "shared"
    first = build_feature_cache(enc, SEQS[:4], shared, batch_residues=40, max_batch=2, keyed=True)
    count = Counting(enc)
    more = SEQS[2:] + ["WWW"]  # two sequences the first plan holds, three it does not
    second = build_feature_cache(enc, more, shared, batch_residues=40, max_batch=2, keyed=True)
    assert count.n == 3 and len(list(shared.iterdir())) == 2
    want = enc(enc.collate(more)).pooled.detach().numpy()
    assert np.allclose(second.pooled(more).numpy(), want, atol=1e-6)
    assert np.array_equal(second.pooled(SEQS[2:4]).numpy(), first.pooled(SEQS[2:4]).numpy())  # copied, not recomputed
    # a sibling of another encoder (another size or weight file) is never read
    other = UniRepEncoder({"weights": str(tiny_npz), "max_length": 5})
    count = Counting(other)
    build_feature_cache(other, SEQS[:2], shared, batch_residues=40, max_batch=2, keyed=True)
    assert count.n == 2
