"""engine.query: every kind of query parses, and every bad one fails with a clear error."""

import numpy as np
import pytest

from engine.errors import OneProtError
from engine.modality import StructureInput
from engine.query import MAX_QUERY_RESIDUES, parse_query, parse_sequence, parse_text

THREE = {"A": "ALA", "G": "GLY", "K": "LYS", "L": "LEU", "E": "GLU", "V": "VAL"}


def write_pdb(path, chains=("A",), length=30, ligand=True):
    """A hand-made helix-ish backbone per chain, plus an optional ligand touching chain A."""
    lines, serial = [], 1
    seq = ("AGKLEV" * 10)[:length]
    for c, chain in enumerate(chains):
        for i, aa in enumerate(seq):
            t = i * 100 / 180 * np.pi
            ca = np.array([2.3 * np.cos(t) + 30 * c, 2.3 * np.sin(t), 1.5 * i])
            for name, off in (("N", (-1.0, 0.5, -0.5)), ("CA", (0, 0, 0)), ("C", (1.0, 0.5, 0.5)), ("O", (1.5, 1.4, 0.6))):
                x, y, z = ca + np.array(off)
                lines.append(f"ATOM  {serial:5d}  {name:<3s} {THREE[aa]} {chain}{i + 1:4d}    {x:8.3f}{y:8.3f}{z:8.3f}  1.00  0.00           {name[0]}")
                serial += 1
        lines.append("TER")
    if ligand:
        for k in range(6):
            lines.append(f"HETATM{serial:5d}  C{k}  NAD A 900    {0.5:8.3f}{0.5:8.3f}{3.0 + 1.5 * k:8.3f}  1.00  0.00           C")
            serial += 1
    lines.append("END")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_sequence_queries_are_cleaned_and_bad_ones_refused():
    assert parse_query(sequence="mkv lag\nvvk*").item == "MKVLAGVVK"
    assert parse_sequence(">sp|P1|X some protein\nMKVL\nAGE") == "MKVLAGE"
    with pytest.raises(OneProtError, match="empty"):
        parse_query(sequence="   ")
    with pytest.raises(OneProtError, match="invalid character"):
        parse_query(sequence="MKV-LAG")
    with pytest.raises(OneProtError, match="above the limit"):
        parse_query(sequence="A" * (MAX_QUERY_RESIDUES + 1))
    with pytest.raises(OneProtError, match="nucleotide"):
        parse_query(sequence="ACGTACGTTGCA")
    with pytest.raises(OneProtError, match="several FASTA records"):
        parse_sequence(">a\nMKV\n>b\nLLA")


def test_text_queries():
    assert parse_query(text="  ATP   binding\nkinase ").item == "ATP binding kinase"
    with pytest.raises(OneProtError, match="empty text"):
        parse_query(text=" \n ")
    with pytest.raises(OneProtError, match="above the limit"):
        parse_text("x" * 30, max_length=10)


def test_exactly_one_source():
    with pytest.raises(OneProtError, match="exactly one"):
        parse_query()
    with pytest.raises(OneProtError, match="exactly one"):
        parse_query(sequence="MKV", text="kinase")


def test_modality_missing_from_checkpoint_is_refused():
    with pytest.raises(OneProtError, match="no text encoder.*sequence, structure"):
        parse_query(text="kinase", available=["sequence", "structure"])


def test_fasta_file(tmp_path):
    f = tmp_path / "q.fasta"
    f.write_text(">first desc\nMKVL\nAGE\n>second\nLLL\n")
    q = parse_query(fasta=f)
    assert (q.modality, q.item, q.label) == ("sequence", "MKVLAGE", "first")
    (tmp_path / "empty.fasta").write_text("")
    with pytest.raises(OneProtError, match="no FASTA record"):
        parse_query(fasta=tmp_path / "empty.fasta")
    with pytest.raises(OneProtError, match="no such file"):
        parse_query(fasta=tmp_path / "missing.fasta")


def test_structure_file_chain_pocket_and_tokens(tmp_path):
    f = write_pdb(tmp_path / "two.pdb", chains=("A", "B"))
    q = parse_query(structure=f)
    assert q.modality == "structure" and isinstance(q.item, StructureInput)
    assert q.item.coords.shape == (30, 4, 3) and q.label.endswith("A")
    assert parse_query(structure=f, chain="B").label.endswith("B")
    with pytest.raises(OneProtError, match="no protein chain 'Z'"):
        parse_query(structure=f, chain="Z")
    pocket = parse_query(structure=f, as_modality="pocket")
    assert pocket.modality == "pocket" and len(pocket.item.sequence) == 30 and 3 <= len(pocket.item.focus) < 30
    tokens = parse_query(structure=f, as_modality="structure_tokens")
    assert isinstance(tokens.item, str) and len(tokens.item) == 30
    with pytest.raises(OneProtError, match="no structure encoder"):
        parse_query(structure=f, available=["sequence", "text"])
    with pytest.raises(OneProtError, match="no ligand pocket"):
        parse_query(structure=write_pdb(tmp_path / "apo.pdb", ligand=False), as_modality="pocket")
    (tmp_path / "empty.pdb").write_text("")
    with pytest.raises(OneProtError, match="empty"):
        parse_query(structure=tmp_path / "empty.pdb")


def test_id_query():
    q = parse_query(protein_id=" P12345 ", as_modality="text")
    assert q.protein_id == "P12345" and q.modality == "text" and q.item is None
    with pytest.raises(OneProtError, match="empty protein id"):
        parse_query(protein_id="  ")
