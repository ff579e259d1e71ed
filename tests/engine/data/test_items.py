"""Store rows -> encoder items: the right type per modality, pockets as the chain plus their residues."""

import numpy as np
import pytest

from engine.data.items import item_for, items_for, pocket_input
from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.modality import StructureInput


@pytest.fixture(scope="module")
def store(make_alignment_store, tmp_path_factory):
    return ProteinStore.open(make_alignment_store(tmp_path_factory.mktemp("s") / "store", n=12))


def test_item_types(store):
    pid = store.ids(modality="pocket")[0]
    assert isinstance(item_for(store, pid, "sequence"), str)
    s = item_for(store, pid, "structure")
    assert isinstance(s, StructureInput) and s.coords.shape == (len(s.sequence), 4, 3)
    pocket = items_for(store, [pid], "pocket")[0]
    first = store.pockets(pid)[0].residues
    assert pocket.sequence == store.row(pid)["sequence"]
    assert np.array_equal(pocket.coords, store.coords(pid), equal_nan=True)
    assert pocket.focus.tolist() == sorted(first)


def test_missing_modality_names_the_protein(store):
    no_text = [i for i in store.ids() if i not in set(store.ids(modality="text"))][0]
    with pytest.raises(OneProtError, match=no_text):
        items_for(store, [no_text], "text")
    no_pocket = [i for i in store.ids() if i not in set(store.ids(modality="pocket"))][0]
    with pytest.raises(OneProtError, match=no_pocket):
        items_for(store, [no_pocket], "pocket")


def test_pocket_indices_checked():
    with pytest.raises(OneProtError, match="outside"):
        pocket_input("ACD", np.zeros((3, 4, 3), np.float32), [1, 5])
