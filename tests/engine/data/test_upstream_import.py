"""Upstream OneProt's h5/CSV layouts (as its loaders read them) import into a store."""

from pathlib import Path

import h5py
import numpy as np
import pytest

from engine.cli import main
from engine.data.store import ProteinStore
from engine.data.structure import read_structure
from engine.data.upstream_import import import_upstream
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def _write_chain(h5, pid, seq, residues):
    """<pid>/structure/0/A/{residues/seq1, polypeptide/{atom_amino_id,type,xyz}} from (name, xyz) per residue."""
    grp = h5.create_group(f"{pid}/structure/0/A")
    grp.create_dataset("residues/seq1", data=seq.encode())
    amino, names, xyz = [], [], []
    for k, atoms in residues:
        for name, pos in atoms:
            amino.append(100 + k)  # upstream's ids need only sort in residue order
            names.append(name.encode())
            xyz.append(pos)
    grp.create_dataset("polypeptide/atom_amino_id", data=np.array(amino))
    grp.create_dataset("polypeptide/type", data=np.array(names))
    grp.create_dataset("polypeptide/xyz", data=np.array(xyz, dtype=np.float32))


@pytest.fixture()
def upstream(tmp_path):
    rec = read_structure(FIX / "pocket_toy.pdb").records[0]
    seq, coords = rec.sequence, rec.coords
    residues = [(k, [(n, coords[k, j]) for j, n in enumerate(("N", "CA", "C", "O")) if np.isfinite(coords[k, j]).all()])
                for k in range(len(seq))]
    d = tmp_path / "up"
    d.mkdir()
    with h5py.File(d / "seqstruc.h5", "w") as h5:
        _write_chain(h5, "AF-P1", seq, residues)
        _write_chain(h5, "AF-P2", seq, residues)
    with h5py.File(d / "pockets_100_residues.h5", "w") as h5:
        _write_chain(h5, "AF-P1", seq[3:8], residues[3:8])
    with h5py.File(tmp_path / "saprot.h5", "w") as h5:
        h5.create_dataset("AF-P1/strucseq", data="".join(a + b for a, b in zip(seq, "d" * (len(seq) - 1) + "#")).encode())
        h5.create_dataset("SEQONLY/strucseq", data="MaKcVp".encode())
    (d / "train_seqstruc.csv").write_text("AF-P1,x\n")
    (d / "test_seqstruc.csv").write_text("AF-P2,x\n")
    (d / "train_text.csv").write_text('AF-P1,"A toy kinase, synthetic."\n')
    (d / "val_saprot.txt").write_text("SEQONLY\nAF-P1\n")  # AF-P1 also in train: reported
    (d / "train_pocket.csv").write_text("AF-P1\n")
    return d, tmp_path / "saprot.h5", seq, coords


def test_import_keeps_upstream_layout_and_splits(upstream, tmp_path):
    d, saprot, seq, coords = upstream
    path, rep = import_upstream(d, tmp_path / "store", saprot_h5=saprot)
    st = ProteinStore.open(path)
    assert set(st.ids()) == {"AF-P1", "AF-P2", "SEQONLY"}
    assert st.row("AF-P1")["split"] == "train" and st.row("AF-P2")["split"] == "test"
    assert st.row("SEQONLY")["split"] == "valid" and st.row("SEQONLY")["sequence"] == "MKV"
    assert any("two splits" in p and "AF-P1" in p for p in rep["problems"])
    assert st.row("AF-P1")["text"] == "A toy kinase, synthetic."
    assert np.allclose(st.coords("AF-P1"), coords, equal_nan=True)
    assert st.row("AF-P1")["structure_tokens"] == "D" * (len(seq) - 1) + "#"
    assert st.row("SEQONLY")["structure_tokens"] == "ACP"
    (p,) = st.pockets("AF-P1")
    assert p.residues == [3, 4, 5, 6, 7] and "p2rank" in p.source
    assert st.pockets("AF-P2") == [] and st.coords("SEQONLY") is None
    assert st.manifest["split_method"]["tool"] == "upstream"


def test_cli_and_bad_inputs(upstream, tmp_path, capsys):
    d, saprot, _, _ = upstream
    assert main(["data", "import-upstream", str(d), "--out", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "no --saprot-h5" in out and "SEQONLY: in a split file but in no HDF5 file" in out
    with pytest.raises(OneProtError, match="no upstream split files"):
        import_upstream(FIX, tmp_path / "x")
    (d / "seqstruc.h5").write_bytes(b"not hdf5")
    assert main(["data", "import-upstream", str(d), "--out", str(tmp_path / "s2")]) == 1
    assert "seqstruc.h5" in capsys.readouterr().err
