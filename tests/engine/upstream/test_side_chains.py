"""Side-chain atoms for the all-atom ProNet: reader -> parse cache -> store -> items."""

from pathlib import Path

import numpy as np

from engine.data import parse_cache
from engine.data.items import items_for
from engine.data.store import ProteinStore, write_store
from engine.data.structure import read_structure
from engine.modality import Modality

FIXTURE = Path(__file__).parents[2] / "fixtures" / "data" / "1a5z_A.cif.gz"


def test_reader_keeps_side_chain_atoms_and_the_store_round_trips_them(tmp_path):
    rec = read_structure(FIXTURE).records[0]
    side = rec.extra["side_chains"]
    assert side.shape == (len(rec.sequence), 6, 3)
    seq = rec.sequence
    gly, lys, arg = seq.index("G"), seq.index("K"), seq.index("R")
    assert np.isnan(side[gly]).all()  # glycine: no side chain
    assert np.isfinite(side[lys, :5]).all() and np.isnan(side[lys, 5]).all()  # CB CG CD CE NZ, no NH1
    assert np.isfinite(side[arg]).all()  # CB CG CD NE CZ NH1
    # the parse cache keeps them
    parse_cache.save(tmp_path / "c.npz", [rec], {})
    cached = parse_cache.load(tmp_path / "c.npz")[0][0]
    assert np.array_equal(cached.extra["side_chains"], side, equal_nan=True)
    # the store keeps them, and structure items carry them
    path = write_store([rec], tmp_path / "store", {rec.id: "train"}, {rec.id: 0})
    store = ProteinStore.open(path)
    assert np.array_equal(store.side_chains(rec.id), side, equal_nan=True)
    item = items_for(store, [rec.id], Modality.STRUCTURE)[0]
    assert np.array_equal(item.side_chains, side, equal_nan=True)


def test_store_without_side_chains_says_none(tmp_path):
    rec = read_structure(FIXTURE).records[0]
    rec.extra.pop("side_chains")
    store = ProteinStore.open(write_store([rec], tmp_path / "store", {rec.id: "train"}, {rec.id: 0}))
    assert store.side_chains(rec.id) is None and store.coords(rec.id) is not None


def test_structure_file_queries_carry_side_chains():
    from engine.query import read_structure_query

    _, item = read_structure_query(FIXTURE, "structure")
    assert item.side_chains is not None and item.side_chains.shape == (len(item.sequence), 6, 3)
