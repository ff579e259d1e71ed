"""ExplorerState queries on the tiny world: correct hits, errors in the page, sessions that keep working."""

from __future__ import annotations

import gzip

import numpy as np

from engine.data.items import item_for
from explorer.molecule import backbone_pdb
from explorer.state import ExplorerState


def _pdb_bytes(state: ExplorerState, pid: str) -> bytes:
    rec = state.store.record(pid)
    return backbone_pdb(rec.sequence, rec.coords).encode()


def test_structure_upload_finds_itself(options):
    s = ExplorerState(options)
    result = s.query_structure_upload(_pdb_bytes(s, "kin00_A"), "kin00.pdb", "structure", 5)
    assert s.error == "" and result is not None
    assert result.hits[0].id == "kin00_A" and result.hits[0].score > 0.99
    assert [h.rank for h in result.hits] == [1, 2, 3, 4, 5]
    assert s.focus_id == "kin00_A" and s.query is result
    assert result.structure.coords.shape == (len(result.structure.sequence), 4, 3)
    # gzipped uploads and other read-as modalities work too
    gz = gzip.compress(_pdb_bytes(s, "glo02_A"))
    assert s.query_structure_upload(gz, "glo02.pdb.gz", "sequence", 3, read_as="structure_tokens") is not None
    assert s.error == ""


def test_stored_protein_query_matches_direct_search(options):
    s = ExplorerState(options)
    result = s.query_protein("pro02_A", "structure", "sequence", 8)
    assert s.error == ""
    vec = s.resources.embed("structure", item_for(s.store, "pro02_A", "structure"))
    emb = s.resources.embeddings
    scores = np.asarray(emb.vectors("sequence")) @ vec
    expected = [emb.ids("sequence")[i] for i in np.argsort(-scores)[:8]]
    assert [h.id for h in result.hits] == expected
    # the query's own stored structure vector equals the live one (same checkpoint)
    np.testing.assert_allclose(s.resources.stored_vector("structure", "pro02_A"), vec, atol=1e-4)


def test_bad_uploads_show_errors_and_the_session_keeps_working(options):
    s = ExplorerState(options)
    assert s.query_structure_upload(b"not a structure at all", "x.pdb", "sequence", 5) is None
    assert "x.pdb" in s.error
    assert s.query_structure_upload(b"", "empty.cif", "sequence", 5) is None and "empty" in s.error
    assert s.query_structure_upload(b"ATOM", "notes.txt", "sequence", 5) is None and ".pdb" in s.error
    big = b"REMARK " + b"x" * int(5.2e6)
    assert s.query_structure_upload(big, "big.pdb", "sequence", 5) is None and "MB" in s.error
    s.error = "<script>alert(1)</script>"
    assert "<script>" not in s.error_html and "&lt;script&gt;" in s.error_html
    # still answers
    assert s.query_sequence(">q1 my query\n" + s.store.row("lec03_A")["sequence"], "sequence", 3) is not None
    assert s.error == "" and s.query.hits[0].id == "lec03_A" and "q1 my query" in s.query.label


def test_sequence_and_text_errors(options):
    s = ExplorerState(options)
    assert s.query_sequence("ACGU 123", "sequence", 5) is None and "sequence" in s.error
    assert s.query_text("   ", "sequence", 5) is None and "empty" in s.error
    assert s.query_text("a globin family member", "text", 4) is not None and len(s.query.hits) == 4
    assert s.query_protein("nope", "structure", "sequence", 5) is None and "nope" in s.error
    assert s.query_protein("kin04_A", "structure", "sequence", 5) is None  # k % 5 == 4: no structure
    assert "structure" in s.error


def test_open_paths_refuses_folders_outside_the_roots(options):
    s = ExplorerState(options)
    s.open_paths("/etc", options.checkpoint, options.embeddings)
    assert "outside the folders" in s.error and s.data == options.data
    s.open_paths(options.data, options.checkpoint, options.embeddings)
    assert s.error == "" and "opened" in s.status
