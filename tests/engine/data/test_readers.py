"""FASTA, UniProt (flat + TSV), Stockholm readers and text composition on small fixtures."""

from pathlib import Path

import pytest

from engine.data.fasta import parse_uniprot_header, read_fasta
from engine.data.stockholm import read_stockholm
from engine.data.text import compose_text
from engine.data.uniprot import read_swissprot, read_uniprot_tsv
from engine.errors import OneProtError

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "data"


def test_fasta_and_uniprot_header():
    entries = list(read_fasta(FIX / "uniprot_small.fasta"))
    assert len(entries) == 3
    e = entries[1]
    h = parse_uniprot_header(e.id, e.description)
    assert h == {"accession": "Q8WWJ3", "entry_name": "Q8WWJ3_HUMAN", "name": "T cell surface glycoprotein CD6 isoform b",
                 "organism": "Homo sapiens", "gene": "CD6"}
    assert e.sequence.isalpha()


def test_plain_fasta_header():
    h = parse_uniprot_header("my_protein", "some description")
    assert h["accession"] is None and h["name"] == "some description"


def test_fasta_errors(tmp_path):
    f = tmp_path / "x.fasta"
    f.write_text("MKTAYIAK\n>a\nMK\n")
    with pytest.raises(OneProtError, match="before any '>' header"):
        list(read_fasta(f))
    f.write_bytes(b">a\n\xff\xfe\x00\x01")
    with pytest.raises(OneProtError, match="binary or truncated"):
        list(read_fasta(f))


def test_swissprot_flat_file():
    a, b = list(read_swissprot(FIX / "swissprot_small.dat"))
    assert (a.entry_name, a.accession, a.name) == ("CRU4_ARATH", "P15455", "12S seed storage protein CRU4")
    assert a.function == "Seed storage protein."
    assert a.organism == "Arabidopsis thaliana" and a.gene == "CRU4"
    assert "GO:0045735 nutrient reservoir activity" in a.go and a.pfam == ["PF00190 Cupin_1"]
    assert "Seed storage protein" in a.keywords
    assert len(a.sequence) == 472
    assert b.function.startswith("This is one of the several different receptors for 5- hydroxytryptamine")
    assert "{ECO" not in b.function


def test_swissprot_truncated(tmp_path):
    f = tmp_path / "t.dat"
    text = (FIX / "swissprot_small.dat").read_text()
    f.write_text(text[: len(text) - 200])
    with pytest.raises(OneProtError, match="truncated"):
        list(read_swissprot(f))


def test_uniprot_tsv():
    a, b = list(read_uniprot_tsv(FIX / "uniprot_small.tsv"))
    assert a.accession == "P69905" and a.entry_name == "HBA_HUMAN" and a.name == "Hemoglobin subunit alpha"
    assert a.organism == "Homo sapiens" and a.gene == "HBA1"
    assert a.function == "Involved in oxygen transport from the lung to the various peripheral tissues."
    assert a.keywords == ["Oxygen transport", "Transport"] and len(a.go) == 2 and a.pfam == ["PF00042"]
    assert b.ec == "1.1.1.27" and b.sequence.startswith("MATLKDQ")


def test_uniprot_tsv_needs_columns(tmp_path):
    f = tmp_path / "x.tsv"
    f.write_text("Foo\tBar\n1\t2\n")
    with pytest.raises(OneProtError, match="'Entry' and 'Sequence'"):
        list(read_uniprot_tsv(f))


def test_stockholm_families():
    fams = read_stockholm(FIX / "small.sto")
    assert [f.label for f in fams] == ["Toy_fam (PF99999)", "Second"]
    assert fams[0].members == {"SEQ1_HUMAN/1-20": "MKTAYIAKQRQISFVKSHFSR", "SEQ2_MOUSE/5-23": "MKTAYLAKQRQLSFVKSHSR"}
    assert fams[0].description == "A toy family"


def test_stockholm_truncated(tmp_path):
    f = tmp_path / "t.sto"
    f.write_text("# STOCKHOLM 1.0\n#=GF ID x\nA/1-3 MKT\n")
    with pytest.raises(OneProtError, match="closing"):
        read_stockholm(f)


def test_compose_text_uses_what_exists():
    assert compose_text() == ""
    t = compose_text(name="L-LACTATE DEHYDROGENASE", organism="Homo sapiens", ec="1.1.1.27",
                     keywords=["NAD", "Oxidoreductase"], title="L-LACTATE DEHYDROGENASE IN COMPLEX WITH NAD")
    assert t.startswith("L-lactate dehydrogenase. Organism: Homo sapiens. EC 1.1.1.27. Keywords: NAD, Oxidoreductase.")
    assert "in complex with nad" in t.lower()
    assert compose_text(name="Kinase", title="kinase") == "Kinase."  # repeated fact left out
