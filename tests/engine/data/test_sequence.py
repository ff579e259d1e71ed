"""The sequence cleaning rule: each clause of engine.data.sequence's docstring has a case."""

import pytest

from engine.data.sequence import clean_sequence, is_protein_like
from engine.errors import OneProtError


@pytest.mark.parametrize("raw, expected", [
    ("acdefghik", "ACDEFGHIK"),                 # lowercase
    ("  MKT\nAYI\tAK  ", "MKTAYIAK"),           # whitespace anywhere
    ("MKTAYIAK*", "MKTAYIAK"),                  # trailing stop
    ("MKTAYIAK**", "MKTAYIAK"),
    ("MKUAYOAK", "MKCAYKAK"),                   # U -> C, O -> K
    ("MKBAZJAX", "MKXAXXAX"),                   # B/Z/J -> X, X kept
])
def test_cleaning_rule(raw, expected):
    assert clean_sequence(raw) == expected


@pytest.mark.parametrize("raw, fragment", [
    ("MK*TAY", "'*'"),          # internal stop
    ("MK1TAY", "'1'"),          # digit
    ("MK-TAY", "'-'"),          # gap
    ("", "empty"),
    ("  \n ", "empty"),
    ("***", "empty"),
])
def test_rejections_name_the_record(raw, fragment):
    with pytest.raises(OneProtError) as err:
        clean_sequence(raw, where="file.fasta:rec7")
    assert err.value.where == "file.fasta:rec7"
    assert fragment in err.value.message


def test_max_length_is_configurable():
    assert clean_sequence("A" * 50, max_length=50) == "A" * 50
    with pytest.raises(OneProtError, match="above the limit of 49"):
        clean_sequence("A" * 50, where="x", max_length=49)
    assert len(clean_sequence("A" * 20_000, max_length=None)) == 20_000


def test_protein_like():
    assert is_protein_like("MKTAYIAKQR")
    assert not is_protein_like("ACGTACGTNNACGU")
    assert not is_protein_like("XXXXXXXXMK")
