"""Ligand files beside protein files (`<stem>_ligand.sdf|.mol2`): pockets from them, bad files reported."""

from pathlib import Path

import numpy as np
import pytest

from engine.cli import main
from engine.data.build import build_store
from engine.data.ligands import find_ligand_files, read_ligands
from engine.data.store import ProteinStore
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"

# the ATP atoms of pocket_toy.pdb: residues {4, 5, 6} are within 4.5 A (tests/fixtures/data/make_fixtures.py)
SDF = """{name}
  hand

  2  1  0  0  0  0  0  0  0  0999 V2000
{a}
{b}
  1  2  1  0
M  END
$$$$
"""
MOL2 = """@<TRIPOS>MOLECULE
{name}
2 1 0 0 0
SMALL
NO_CHARGES

@<TRIPOS>ATOM
      1 P1   {x1:10.4f}{y1:10.4f}{z1:10.4f} P.3     1  LIG1        0.0000
      2 O1   {x2:10.4f}{y2:10.4f}{z2:10.4f} O.3     1  LIG1        0.0000
@<TRIPOS>BOND
     1     1     2    1
"""


def _sdf(name, shift=0.0):
    line = "{:10.4f}{:10.4f}{:10.4f} {:<3} 0  0  0  0  0  0  0  0  0  0  0  0"
    return SDF.format(name=name, a=line.format(19 + shift, 4, 0, "P"), b=line.format(20 + shift, 4, 0, "O"))


def _protein(path):
    path.write_text("".join(ln for ln in (FIX / "pocket_toy.pdb").read_text().splitlines(True) if "ATP" not in ln))


@pytest.fixture()
def complexes(tmp_path, monkeypatch):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ONEPROT_MMSEQS", "off")  # splits are not under test here
    d = tmp_path / "set"
    d.mkdir()
    for stem in ("sdf1", "mol1", "far1", "trunc1"):
        _protein(d / f"{stem}_protein.pdb")
    (d / "sdf1_ligand.sdf").write_text(_sdf("lig-sdf"))
    (d / "mol1_ligand.mol2").write_text(MOL2.format(name="lig-mol2", x1=19, y1=4, z1=0, x2=20, y2=4, z2=0))
    (d / "far1_ligand.sdf").write_text(_sdf("lig-far", shift=100.0))
    (d / "trunc1_ligand.sdf").write_text(_sdf("lig-trunc")[:120])
    (d / "orphan_ligand.sdf").write_text(_sdf("orphan"))
    return d


def test_readers_parse_sdf_and_mol2(complexes):
    (lig,) = read_ligands(complexes / "sdf1_ligand.sdf")
    assert lig.name == "lig-sdf" and lig.elements == ["P", "O"] and np.allclose(lig.coords, [[19, 4, 0], [20, 4, 0]])
    (lig,) = read_ligands(complexes / "mol1_ligand.mol2")
    assert lig.name == "lig-mol2" and lig.elements == ["P", "O"]
    with pytest.raises(OneProtError, match="truncated") as e:
        read_ligands(complexes / "trunc1_ligand.sdf")
    assert e.value.where.endswith("trunc1_ligand.sdf")


def test_pairing_rule(complexes, tmp_path):
    assert find_ligand_files(complexes / "sdf1_protein.pdb", "sdf1_protein") == [complexes / "sdf1_ligand.sdf"]
    other = tmp_path / "ligs"
    other.mkdir()
    (other / "x_ligand.mol2").write_text("")
    assert find_ligand_files(tmp_path / "x.pdb", "x", other) == [other / "x_ligand.mol2"]
    assert find_ligand_files(tmp_path / "x.pdb", "x") == []


def test_build_gives_ligand_pockets_and_reports_bad_files(complexes, tmp_path):
    path, report = build_store([complexes], tmp_path / "store", cache_dir=tmp_path / "cache")
    st = ProteinStore.open(path)
    for pid, name in (("sdf1_protein_A", "lig-sdf"), ("mol1_protein_A", "lig-mol2")):
        (p,) = st.pockets(pid)
        assert p.residues == [4, 5, 6] and p.source == "ligand-file" and p.ligand_name == name
        assert np.allclose(p.center, [19.5, 4.0, 0.0])
    assert st.pockets("far1_protein_A") == [] and st.pockets("trunc1_protein_A") == []
    skipped = {Path(f).name: why for f, why in report.skipped}
    assert "A away" in skipped["far1_ligand.sdf"] and "mismatched" in skipped["far1_ligand.sdf"]
    assert "truncated" in skipped["trunc1_ligand.sdf"]
    assert "no structure beside it" in skipped["orphan_ligand.sdf"]
    assert {Path(f).name for f in report.ligands} == {"sdf1_ligand.sdf", "mol1_ligand.mol2"}
    # a second build reads the ligand pockets from the parse cache; a changed ligand file is re-read
    _, again = build_store([complexes], tmp_path / "store2", cache_dir=tmp_path / "cache")
    assert again.ligands == report.ligands
    (complexes / "far1_ligand.sdf").write_text(_sdf("lig-moved"))
    path3, third = build_store([complexes], tmp_path / "store3", cache_dir=tmp_path / "cache")
    assert ProteinStore.open(path3).pockets("far1_protein_A")[0].ligand_name == "lig-moved"


def test_cli_ligands_dir(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ONEPROT_MMSEQS", "off")
    (tmp_path / "prot").mkdir()
    (tmp_path / "ligs").mkdir()
    _protein(tmp_path / "prot" / "cx.pdb")
    (tmp_path / "ligs" / "cx_ligand.sdf").write_text(_sdf("from-dir"))
    out = tmp_path / "store"
    assert main(["data", "build", str(tmp_path / "prot"), "--ligands", str(tmp_path / "ligs"), "--out", str(out),
                 "--quiet"]) == 0
    assert "paired 1 ligand files (1 ligand pockets)" in capsys.readouterr().out
    assert ProteinStore.open(out).pockets("cx_A")[0].ligand_name == "from-dir"
    assert main(["data", "build", str(tmp_path / "prot"), "--ligands", str(tmp_path / "nope"), "--out", str(out)]) == 1
