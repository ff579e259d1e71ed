"""pLDDT of predicted models: read from B-factors or ModelCIF, stored per residue, masked in 3Di, a filter."""

from pathlib import Path

import gemmi
import numpy as np
import pytest

from engine.cli import main
from engine.data.build import build_store
from engine.data.plddt import mask_3di
from engine.data.store import ProteinStore
from engine.data.structure import read_structure
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def _model_pdb(path: Path, value, title="ALPHAFOLD MONOMER V2.0 PREDICTION FOR TOY KINASE"):
    """pocket_toy.pdb as a predicted model: protein atoms only, B-factor = value(residue number)."""
    out = []
    for ln in (FIX / "pocket_toy.pdb").read_text().splitlines():
        if ln.startswith("TITLE"):
            ln = f"TITLE     {title}" if title else ln
        if ln.startswith(("ATOM", "HETATM")):
            if ln[17:20] in ("ATP", "HOH", "SO4", " ZN", "ZN "):
                continue
            ln = f"{ln[:60]}{value(int(ln[22:26])):6.2f}{ln[66:]}"
        out.append(ln)
    path.write_text("\n".join(out) + "\n")
    return path


def _ramp(n):
    return 40.0 + 2.0 * n  # residue 1 -> 42 ... residue 25 -> 90


def test_bfactor_plddt_of_a_model(tmp_path):
    r = read_structure(_model_pdb(tmp_path / "AF-TOY-F1-model_v4.pdb", _ramp)).records[0]
    conf = np.asarray(r.extra["plddt"])
    nums = [int(x) for x in r.residue_numbers]
    assert np.allclose(conf, [_ramp(n) for n in nums])
    # an experimental file's B-factors are not confidence; "bfactor" mode reads them anyway
    plain = _model_pdb(tmp_path / "xtal.pdb", _ramp, title="")
    assert read_structure(plain).records[0].extra["plddt"] is None
    assert np.allclose(read_structure(plain, plddt="bfactor").records[0].extra["plddt"], conf)
    assert read_structure(tmp_path / "AF-TOY-F1-model_v4.pdb", plddt="off").records[0].extra["plddt"] is None


def test_fraction_scale_and_out_of_range(tmp_path):
    r = read_structure(_model_pdb(tmp_path / "esm.pdb", lambda n: _ramp(n) / 100, title="ESMFOLD MODEL")).records[0]
    assert np.allclose(r.extra["plddt"][0], _ramp(int(r.residue_numbers[0])), atol=0.01)
    with pytest.raises(OneProtError, match="out of range") as e:
        read_structure(_model_pdb(tmp_path / "bad.pdb", lambda n: 150.0))
    assert "bad.pdb" in e.value.where


def test_modelcif_metric_table(tmp_path):
    st = gemmi.read_structure(str(_model_pdb(tmp_path / "m.pdb", lambda n: 0.0, title="")))
    st.setup_entities()
    for ch in st[0]:
        for i, res in enumerate(ch.get_polymer()):
            res.label_seq = i + 1  # as ModelCIF files number their residues
    doc = st.make_mmcif_document()
    block = doc[0]
    rows = [(res.subchain, str(res.label_seq)) for ch in st[0] for res in ch.get_polymer()
            if res.label_seq is not None]
    loop = block.init_loop("_ma_qa_metric_local.", ["label_asym_id", "label_seq_id", "metric_value"])
    for sub, seq in rows:
        loop.add_row([sub, seq, f"{30 + int(seq):.2f}"])
    doc.write_file(str(tmp_path / "m.cif"))
    r = read_structure(tmp_path / "m.cif").records[0]
    conf = np.asarray(r.extra["plddt"])
    assert np.isfinite(conf).all() and conf[0] == pytest.approx(31.0) and conf[-1] == pytest.approx(30 + len(conf))


def test_mask_3di():
    assert mask_3di("ACDEF", [90, 50, np.nan, 70, 69.9]) == "A#DE#"
    assert mask_3di("ACDEF", None) == "ACDEF"
    with pytest.raises(OneProtError):
        mask_3di("ACD", [1, 2])


def test_build_stores_masks_and_filters(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ONEPROT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("ONEPROT_MMSEQS", "off")
    d = tmp_path / "models"
    d.mkdir()
    _model_pdb(d / "good.pdb", _ramp)
    _model_pdb(d / "poor.pdb", lambda n: 30.0)
    _model_pdb(d / "broken.pdb", lambda n: 250.0)
    (d / "xtal.pdb").write_bytes((FIX / "pocket_toy.pdb").read_bytes())
    path, report = build_store([d], tmp_path / "store", cache_dir=tmp_path / "cache", plddt_mask=70)
    skipped = {Path(f).name: why for f, why in report.skipped}
    assert "out of range" in skipped["broken.pdb"]
    st = ProteinStore.open(path)
    conf = st.plddt("good_A")
    assert conf is not None and len(conf) == len(st.row("good_A")["sequence"])
    tokens = st.row("good_A")["structure_tokens"]
    assert [c == "#" for c in tokens] == list(conf < 70)
    assert st.plddt("xtal_A") is None and "#" not in st.row("xtal_A")["structure_tokens"]
    assert set(st.ids(min_plddt=50)) == {"good_A", "xtal_A"}  # no pLDDT: kept
    assert set(st.ids()) == {"good_A", "poor_A", "xtal_A"}
    # the build-time filter leaves poor models out and says why
    assert main(["data", "build", str(d), "--out", str(tmp_path / "s2"), "--min-plddt", "50", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "mean pLDDT 30.0 < --min-plddt 50" in out
    assert set(ProteinStore.open(tmp_path / "s2").ids()) == {"good_A", "xtal_A"}
