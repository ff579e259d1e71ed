"""On the bundled demo: noise and unrelated folds get no significant hit, relatives do (`oneprot search --json`)."""

import json
import random

import pytest

from engine.cli import main
from engine.data.store import ProteinStore
from engine.embed import EmbeddingSet
from engine.paths import DEMO_EMBEDDINGS
from engine.significance import table_for


def _current_table() -> bool:
    try:
        return (DEMO_EMBEDDINGS / "manifest.json").exists() and table_for(EmbeddingSet.open("demo")) is not None
    except Exception:
        return False


pytestmark = [pytest.mark.skipif(not _current_table(), reason="demo embeddings lack a current significance table "
                                 "(run: oneprot calibrate --embeddings demo --data demo)"), pytest.mark.slow]


def search(capsys, *argv) -> dict:
    assert main(["search", "--json", *argv]) == 0
    return json.loads(capsys.readouterr().out)


def test_hello_and_a_random_sequence_have_no_significant_hit(capsys):
    hello = search(capsys, "--query-sequence", "HELLO")
    assert hello["significance"]["significant_hits"] == 0 and "no significant hit" in hello["significance"]["note"]
    assert any("only 5 residues" in w for w in hello["warnings"])
    # the note says how often this pair's search finds a relative at all (the table's out-of-fold power)
    found = hello["significance"]["relatives_found"]
    assert 0.0 <= found <= 1.0 and f"{found:.0%} of held-out queries" in hello["significance"]["note"]
    rnd = "".join(random.Random(0).choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(300))
    for target in ("sequence", "structure"):
        out = search(capsys, "--query-sequence", rnd, "--target", target)
        assert out["significance"]["significant_hits"] == 0, out["hits"][:2]
        assert all(h["evalue"] > 0.05 and h["significant"] is False for h in out["hits"])


def test_a_fold_absent_from_the_store_has_no_significant_structure_hit(capsys):
    # Enolase (a TIM barrel) meets LDH/MDH's Rossmann folds at cosine ~0.8, as FtsZ did at 0.89: without its
    # own chain (rank 1), nothing in the demo's structures is a relative, and no hit may be called significant.
    out = search(capsys, "--query-id", "pdb3enl_A", "--query-modality", "structure", "--target", "structure")
    others = [h for h in out["hits"] if h["id"] != "pdb3enl_A"]
    assert others and others[0]["score"] > 0.75 and not any(h["significant"] for h in others)


def test_a_relative_is_significant(capsys):
    # LDH's structure finds other LDH structures at E < 0.05. (With the frozen UniRep anchor, 1ldm_A's sequence
    # still ranks ten LDH/MDH sequences first, but at E ~0.1: unrelated sequences sit close in UniRep's space.)
    out = search(capsys, "--query-id", "1ldm_A", "--query-modality", "structure", "--target", "structure")
    rel = [h for h in out["hits"] if h["id"] != "1ldm_A"]
    assert rel[0]["significant"] and rel[0]["family"] == "LDH/MDH (lactate/malate dehydrogenase)"


def test_an_identical_ldh_sequence_is_significant_and_likely_a_relative(capsys):
    # A per-query background once made this hit (cosine 1.00) insignificant: LDH/MDH is a large share of
    # the demo's sequences. The probability map reads the raw score, so it must call it a relative.
    seq = ProteinStore.open("demo").row("1ldm_A")["sequence"]
    out = search(capsys, "--query-sequence", seq, "--target", "sequence")
    top = out["hits"][0]
    assert top["id"] == "1ldm_A" and top["score"] > 0.99 and top["significant"]
    assert top["evalue"] < 1e-4  # an exponential tail in the cosine itself gave it 0.013: "barely significant"
    pair = table_for(EmbeddingSet.open("demo")).pair("sequence", "sequence")
    assert pair.probability([top["score"]])[0] >= 0.9  # the map, whether or not the app reports this pair
    assert top["probability"] is None or top["probability"] >= 0.9
