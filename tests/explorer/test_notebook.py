"""notebooks/teaching.ipynb runs top to bottom (raw files -> store -> tiny model -> retrieval -> UMAP)."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.paths import DEMO_STORE

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not (DEMO_STORE / "manifest.json").exists(), reason="needs the bundled demo store")]
NOTEBOOK = Path(__file__).resolve().parents[2] / "notebooks" / "teaching.ipynb"


def test_teaching_notebook_executes():
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(NOTEBOOK, as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(NOTEBOOK.parent)}}).execute()
    outputs = "\n".join(
        o.get("text", "") + str(o.get("data", {}).get("text/plain", ""))
        for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
    assert "PDB files" in outputs and "finished after 30 steps" in outputs and "query:" in outputs
    assert not [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []) if o.get("output_type") == "error"]
