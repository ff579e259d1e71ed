"""Ligand-contact pockets against a hand-checked contact set, and P2Rank / fpocket import."""

from pathlib import Path

import numpy as np

from engine.data.pockets import CONTACT_CUTOFF, EXCLUDED_LIGANDS, import_fpocket, import_p2rank, ligand_name
from engine.data.structure import read_structure

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def test_contacts_match_hand_checked_set():
    # tests/fixtures/data/make_fixtures.py derives {4, 5, 6} by hand for the 4.5 A cut-off
    assert CONTACT_CUTOFF == 4.5
    r = read_structure(FIX / "pocket_toy.pdb", min_length=10).records[0]
    assert len(r.pockets) == 1  # SO4 (additive), ZN (ion) and HOH (water) give no pocket
    p = r.pockets[0]
    assert p.residues == [4, 5, 6]
    assert p.ligand_code == "ATP" and p.ligand_name == "ADENOSINE-5'-TRIPHOSPHATE"
    assert np.allclose(p.center, [19.5, 4.0, 0.0])
    assert p.ligand_coords.shape == (2, 3) and p.ligand_elements == ["P", "O"]


def test_smaller_cutoff_shrinks_the_set():
    # at 4.1 A only residue 5 (CA directly below PG at 4.0 A) and residue 6 (N at 4.39 A -> out) remain
    r = read_structure(FIX / "pocket_toy.pdb", min_length=10, cutoff=4.1).records[0]
    assert r.pockets == []  # fewer than 3 residues -> not a pocket


def test_exclusion_list_and_ccd_names():
    assert {"SO4", "GOL", "EDO", "PEG"} <= EXCLUDED_LIGANDS
    assert ligand_name("NAD") == "NICOTINAMIDE-ADENINE-DINUCLEOTIDE"
    assert ligand_name("ZZZZZ") == ""


def _toy():
    return read_structure(FIX / "pocket_toy.pdb", min_length=10).records


def test_import_p2rank(tmp_path):
    csv = tmp_path / "pocket_toy.pdb_predictions.csv"
    csv.write_text(
        "name   ,rank, score, probability, sas_points, surf_atoms, center_x, center_y, center_z, residue_ids, surf_atom_ids\n"
        "pocket1,   1, 12.5, 0.80, 50, 30, 19.0, 2.0, 0.0, A_5 A_6 A_7 B_1, 1 2 3\n"
        "pocket2,   2,  3.1, 0.20, 10,  5, 0.0, 0.0, 0.0, A_1 A_2, 4 5\n")
    found = import_p2rank(csv, _toy())
    pockets = found["pocket_toy_A"]
    assert [p.residues for p in pockets] == [[4, 5, 6], [0, 1]]
    assert pockets[0].score == 12.5 and pockets[0].source == "p2rank"
    assert np.allclose(pockets[0].center, [19, 2, 0])


def test_import_fpocket(tmp_path):
    out = tmp_path / "pocket_toy_out"
    (out / "pockets").mkdir(parents=True)
    (out / "pocket_toy_info.txt").write_text(
        "Pocket 1 :\n\tScore : \t0.512\n\tDruggability Score : \t0.1\n\n"
        "Pocket 2 :\n\tScore : \t0.100\n\tDruggability Score : \t0.0\n")
    atom = "ATOM      1  CA  ALA A{:4d}    {:8.3f}{:8.3f}{:8.3f}  1.00  0.00           C\n"
    (out / "pockets" / "pocket1_atm.pdb").write_text(atom.format(8, 26.6, 0, 0) + atom.format(9, 30.4, 0, 0))
    (out / "pockets" / "pocket2_atm.pdb").write_text(atom.format(1, 0.0, 0, 0))
    found = import_fpocket(out, _toy())["pocket_toy_A"]
    assert [p.residues for p in found] == [[7, 8], [0]]
    assert found[0].score == 0.512 and found[0].source == "fpocket"
    assert np.allclose(found[0].center, [28.5, 0, 0])


def test_predicted_pocket_on_ligand_free_chain(tmp_path):
    # cytochrome c without its haem: fpocket-rs must return a pocket of >= 3 real residues
    r = read_structure(FIX / "d1cih__.pdb.gz").records[0]
    from engine.data.pocket_prediction import predict_pockets_cached

    first = predict_pockets_cached(FIX / "d1cih__.pdb.gz", r, top=1, cache_dir=tmp_path)
    assert len(first) == 1
    p = first[0]
    assert p.source == "fpocket-rs" and len(p.residues) >= 3 and max(p.residues) < len(r.sequence)
    ca = r.coords[p.residues, 1]
    assert np.linalg.norm(ca - p.center, axis=1).min() < 10.0  # centre sits among its residues
    again = predict_pockets_cached(FIX / "d1cih__.pdb.gz", r, top=1, cache_dir=tmp_path)  # from the JSON cache
    assert again[0].residues == p.residues and np.allclose(again[0].center, p.center)
    assert len(list(tmp_path.glob("*.json"))) == 1


def _hang(pdb_text):
    import time

    time.sleep(60)


def test_hanging_predictor_is_stopped():
    import pytest

    from engine.data.pocket_prediction import _detect_with_timeout
    from engine.errors import OneProtError

    with pytest.raises(OneProtError, match="no answer within 0.5 s"):
        _detect_with_timeout(_hang, "ATOM", 0.5)
