"""PDB/mmCIF reader on small real and synthetic fixtures (tests/fixtures/data)."""

from pathlib import Path

import numpy as np
import pytest

from engine.data.header import read_pdb_header
from engine.data.structure import read_structure, residue_letter
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


@pytest.mark.parametrize("name", ["pocket_toy.pdb", "pocket_toy.cif"])
def test_toy_chain_pdb_and_cif_agree(name):
    sf = read_structure(FIX / name, min_length=10)
    assert [r.id for r in sf.records] == ["pocket_toy_A"]
    r = sf.records[0]
    # MSE (index 3) -> M through gemmi's table; the unknown residue XYZ (index 9) -> X
    assert r.sequence == "ACDMEFGHIXKLMNPQRSTVWYACD"
    assert r.coords.shape == (25, 4, 3) and r.coords.dtype == np.float32
    assert np.allclose(r.coords[5], [[18, 0, 0], [19, 0, 0], [20, 0, 0], [20, 1.2, 0]], atol=1e-3)
    assert r.residue_numbers[:3] == ["1", "2", "3"]
    assert r.ec == "2.7.11.1" and r.organism == "Homo sapiens"
    assert r.name.lower() == "toy kinase"
    # chain B is DNA and is reported, not silently dropped
    assert sf.skipped == [("B", "non-protein chain (Dna)")]


def test_missing_atoms_are_nan(tmp_path):
    text = (FIX / "pocket_toy.pdb").read_text().splitlines()
    # drop the O atom of residue 2 and the N atom of residue 7
    kept = [l for l in text if not (l.startswith("ATOM") and ((l[12:16].strip() == "O" and l[22:26].strip() == "2")
                                                             or (l[12:16].strip() == "N" and l[22:26].strip() == "7")))]
    f = tmp_path / "gappy.pdb"
    f.write_text("\n".join(kept) + "\n")
    r = read_structure(f, min_length=10).records[0]
    assert np.isnan(r.coords[1, 3]).all() and np.isfinite(r.coords[1, :3]).all()
    assert np.isnan(r.coords[6, 0]).all()


def test_insertion_codes_kept(tmp_path):
    lines = (FIX / "pocket_toy.pdb").read_text().splitlines()
    out = []
    for l in lines:
        if l.startswith(("ATOM", "HETATM")) and l[21] == "A" and l[22:26].strip() == "5":
            l = l[:22] + "   4" + "A" + l[27:]
        out.append(l)
    f = tmp_path / "icode.pdb"
    f.write_text("\n".join(out) + "\n")
    r = read_structure(f, min_length=10).records[0]
    assert r.residue_numbers[3:6] == ["4", "4A", "6"]


def test_real_old_format_pdb():
    # THESEUS cytochrome c: pre-1996 'IDCODE serial' stamps in columns 73-80, blank chain id
    sf = read_structure(FIX / "d1cih__.pdb.gz")
    assert len(sf.records) == 1
    r = sf.records[0]
    assert r.id == "d1cih__" and len(r.sequence) == 108 and r.sequence.startswith("TEFKAGSAKKGATLFKTRC")
    assert np.isfinite(r.coords).all(axis=(1, 2)).mean() > 0.95


def test_real_ca_only_pdb_with_header():
    sf = read_structure(FIX / "1lzh.pdb.gz")
    assert [r.id for r in sf.records] == ["1lzh_A", "1lzh_B"]
    r = sf.records[0]
    assert r.coords is None and r.pockets == []  # CA-only -> sequence-only, and said so
    assert any("CA-only" in n for n in sf.notes)
    assert r.sequence.startswith("KVFGRCELAAAMKRHGLDNY")
    assert r.ec == "3.2.1.17" and r.organism == "Gallus gallus"
    assert "LYSOZYME" in r.name and "ORTHORHOMBIC" in r.extra["title"]


def test_real_mmcif_gz_with_ligands():
    sf = read_structure(FIX / "1a5z_A.cif.gz")
    r = sf.records[0]
    assert len(r.sequence) == 312 and r.sequence.startswith("MKIGIVGLGRVGSS")
    assert {p.ligand_code for p in r.pockets} == {"NAD", "OXM", "FBP"}


def test_header_continuations():
    h = read_pdb_header([
        "HEADER    OXIDOREDUCTASE                          01-JAN-99   1XYZ",
        "TITLE     A LONG TITLE THAT",
        "TITLE    2 CONTINUES HERE",
        "COMPND    MOL_ID: 1;",
        "COMPND   2 MOLECULE: L-LACTATE DEHYDROGENASE;",
        "COMPND   3 CHAIN: A, B;",
        "COMPND   4 EC: 1.1.1.27;",
        "COMPND   5 MOL_ID: 2;",
        "COMPND   6 MOLECULE: PEPTIDE;",
        "COMPND   7 CHAIN: C;",
        "SOURCE    MOL_ID: 1;",
        "SOURCE   2 ORGANISM_SCIENTIFIC: HOMO SAPIENS;",
        "KEYWDS    NAD, OXIDOREDUCTASE",
    ])
    assert h.pdb_id == "1XYZ" and h.title == "A LONG TITLE THAT CONTINUES HERE"
    assert h.molecule_for("B").ec == "1.1.1.27" and h.molecule_for("B").organism == "Homo sapiens"
    assert h.molecule_for("C").name == "PEPTIDE" and h.molecule_for("C").ec is None
    assert h.keywords == "NAD, OXIDOREDUCTASE"


def test_residue_letters():
    assert residue_letter("MSE") == "M" and residue_letter("ALA") == "A"
    assert residue_letter("UNK") == "X" and residue_letter("QQQ") == "X"


@pytest.mark.parametrize("content, fragment", [
    (b"", "empty"),
    (b"\x00\x01\x02binary\xff\xfe", "binary"),
    (b"HEADER    NOTHING HERE\nEND\n", "no atoms"),
])
def test_unusable_files_raise(tmp_path, content, fragment):
    f = tmp_path / "x.pdb"
    f.write_bytes(content)
    with pytest.raises(OneProtError, match=fragment) as err:
        read_structure(f)
    assert err.value.where == str(f)


def test_truncated_gzip_raises(tmp_path):
    data = (FIX / "d1cih__.pdb.gz").read_bytes()
    f = tmp_path / "cut.pdb.gz"
    f.write_bytes(data[: len(data) // 2])
    with pytest.raises(OneProtError, match="truncated"):
        read_structure(f)
