"""The bundled demo store (assets/demo, built by scripts/build_demo.py) meets the project's floors."""

import numpy as np
import pandas as pd
import pytest

from engine.data.store import SPLITS, ProteinStore
from engine.data.tokens3di import ALPHABET_3DI
from engine.paths import DEMO_STORE

pytestmark = pytest.mark.skipif(not (DEMO_STORE / "manifest.json").exists(), reason="demo store not built")


@pytest.fixture(scope="module")
def demo():
    return ProteinStore.open("demo")


def test_floors(demo):
    s = demo.stats()
    assert s["modalities"]["structure"] >= 580  # 621 chains before the hygiene rule left 29 out
    assert s["pockets"] >= 300
    assert s["family_labelled"] >= 1500
    assert s["modalities"]["text"] >= 5000
    assert set(s["splits"]) == set(SPLITS) and min(s["splits"].values()) > 0


def test_size_on_disk_under_40_mb():
    total = sum(f.stat().st_size for f in DEMO_STORE.rglob("*") if f.is_file())
    assert total <= 40e6


def test_no_cluster_spans_two_splits(demo):
    p = demo.proteins
    assert (p.groupby("cluster")["split"].nunique() == 1).all()
    # identical sequences always share a cluster
    assert (p.groupby("sequence")["cluster"].nunique() == 1).all()


def test_one_structure_per_distinct_sequence(demo):
    s = demo.proteins[demo.proteins["has_structure"]]
    assert s["sequence"].is_unique


def test_structure_rows_are_consistent(demo):
    p = demo.proteins
    rows = pd.concat([p[p["n_pockets"] > 0].head(20), p[p["n_pockets"] > 0].tail(20)])
    for pid, seq, tokens in zip(rows["id"], rows["sequence"], rows["structure_tokens"]):
        c = demo.coords(pid)
        assert c.shape == (len(seq), 4, 3)
        assert len(tokens) == len(seq) and set(tokens) <= set(ALPHABET_3DI)
        for pocket in demo.pockets(pid):
            assert len(pocket.residues) >= 3 and max(pocket.residues) < len(seq)
            assert pocket.source in ("ligand", "fpocket-rs") and pocket.center is not None
            assert bool(pocket.ligand_code) == (pocket.source == "ligand")
            # the pocket centre lies near its residues' CA atoms
            ca = c[pocket.residues, 1]
            assert np.nanmin(np.linalg.norm(ca - pocket.center, axis=1)) < 12.0


@pytest.mark.skipif(not (DEMO_STORE / "manifest.json").exists()
                    or "hygiene" not in ProteinStore.open("demo").manifest,
                    reason="store predates the hygiene rule (python scripts/demo_hygiene.py assets/demo)")
def test_hygiene_rule_holds_and_every_structure_is_named(demo):
    from engine.data.hygiene import exclusion_reason

    s = demo.proteins[demo.proteins["has_structure"]]
    assert (s["name"].str.strip() != "").all()
    assert not [pid for pid in s["id"] if exclusion_reason(demo.record(pid))]
