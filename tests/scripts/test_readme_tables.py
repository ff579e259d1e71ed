"""scripts/readme_tables.py: README.md's generated tables equal what the committed result files say."""

import importlib.util
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("readme_tables", ROOT / "scripts" / "readme_tables.py")
readme_tables = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(readme_tables)


def test_readme_matches_the_committed_result_files(capsys):
    assert readme_tables.main(["--check"]) == 0, capsys.readouterr().err
    assert len(readme_tables.BLOCK.findall((ROOT / "README.md").read_text())) >= 5


def test_check_names_a_block_whose_figures_were_edited(tmp_path, capsys):
    text = (ROOT / "README.md").read_text()
    start = text.index("<!-- readme:retrieval -->")
    row = text.index("| sequence→structure |", start)
    end = text.index("\n", row)
    edited = text[:row] + "| sequence→structure | 0.999 | typed by hand |" + text[end:]
    path = tmp_path / "README.md"
    path.write_text(edited)
    assert readme_tables.main(["--check", "--readme", str(path)]) == 1
    assert "retrieval" in capsys.readouterr().err
    assert readme_tables.main(["--readme", str(path)]) == 0  # regenerates the block
    assert path.read_text() == text
