"""A real browser over the bundled demo: significance of hits, stable colours, find by name, honest input, no writes.

Run alone (it serves the demo and loads its model): `pytest tests/explorer/test_browser_demo.py`.
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest

from engine.paths import DEMO_EMBEDDINGS, DEMO_STORE
from browser_driver import CHROMIUM, REPO, open_ready_page, served_app

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at /usr/bin/chromium"),
              pytest.mark.skipif(not (DEMO_EMBEDDINGS / "significance.json").exists(),
                                 reason="the demo embeddings have no significance table (oneprot calibrate)")]
TIMEOUT_MS = 180_000
# colour of each legend value of the map's points: the factor_cmap of the renderer drawing 'map-points'
# the map's points sources ('map-points'; for a moment after a redraw the old figure's is still there: the
# newest one, the one with the most recent id, is the map on screen) and the colour of each legend value
MAP_SOURCES = "[...Bokeh.documents[0].all_models].filter(m => m.name === 'map-points')"
MAP_LENGTH = f"() => {{ const s = {MAP_SOURCES}; return s[s.length - 1].get_length(); }}"
MAP_COLOURS = f"""(n) => {{ const doc = Bokeh.documents[0];
  const srcs = {MAP_SOURCES}.filter(s => s.get_length() === n);
  for (const m of doc.all_models) {{ if (srcs.includes(m.data_source) && m.glyph && m.glyph.fill_color) {{
    const t = m.glyph.fill_color.transform; if (t) {{ const out = {{}};
      t.factors.forEach((f, i) => {{ out[f] = t.palette[i]; }}); return out; }} }} }} return null; }}"""
SET_MAP_MODALITIES = """(mods) => { const doc = Bokeh.documents[0];
  for (const m of doc.all_models) { if (m.type === 'MultiChoice' || (m.constructor && m.constructor.name === 'MultiChoice')) {
    m.value = mods; return true; } } return false; }"""


def _files(root: Path) -> dict[str, float]:
    """Every file under the checkout with its mtime (the test process's own bytecode caches aside)."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in (".git", "__pycache__", ".pytest_cache")]
        for f in filenames:
            p = Path(dirpath) / f
            try:
                out[str(p.relative_to(root))] = p.stat().st_mtime
            except OSError:
                pass
    return out


def _written(before: dict[str, float], after: dict[str, float]) -> list[str]:
    """Files the app created anywhere in the checkout, or changed under assets/ (caches, maps, runs)."""
    return sorted(f for f, t in after.items() if f not in before or (f.startswith("assets/") and t != before[f]))


def test_demo_in_a_browser(tmp_path):
    from playwright.sync_api import sync_playwright

    from engine.data.store import ProteinStore

    ldh = ProteinStore.open(DEMO_STORE).row("1ldm_A")["sequence"]
    too_long = "".join(random.Random(1).choice("ACDEFGHIKLMNPQRSTVWY") for _ in range(10_000))
    env = {"ONEPROT_CACHE": str(tmp_path / "cache"), "ONEPROT_DATA": str(tmp_path / "data"),
           "PYTHONDONTWRITEBYTECODE": "1"}
    before = _files(REPO)
    with served_app([], tmp_path / "server.log", env=env) as url:
        with sync_playwright() as p:
            browser, page, errors = open_ready_page(p, url, {"width": 1500, "height": 950}, TIMEOUT_MS)  # model too

            # find by name: the placeholder's own example matches (structures carry names)
            find = page.locator("input[placeholder^='e.g. 1ldm_A']").first
            find.fill("lactate")
            find.press("Enter")
            page.get_by_text("matches for 'lactate'", exact=False).first.wait_for(timeout=TIMEOUT_MS)
            assert page.evaluate(f"() => {MAP_SOURCES}.some(s => s.selected.indices.length > 0)")

            # one colour per family in two views: the sequence map, then the structure map
            n_seq = page.evaluate(MAP_LENGTH)
            seq_colours = page.evaluate(MAP_COLOURS, n_seq)
            assert page.evaluate(SET_MAP_MODALITIES, ["structure"])
            page.wait_for_function(f"() => ({MAP_LENGTH})() !== {n_seq}", timeout=TIMEOUT_MS)
            struct_colours = page.evaluate(MAP_COLOURS, page.evaluate(MAP_LENGTH))
            assert seq_colours and struct_colours
            shared = set(seq_colours) & set(struct_colours)
            assert any(c.startswith("LDH/MDH") for c in shared), shared
            assert {c: seq_colours[c] for c in shared} == {c: struct_colours[c] for c in shared}

            # a significant query: an LDH sequence finds LDH relatives, green and counted
            page.locator(".bk-tab", has_text="Sequence").first.click()
            box = page.locator("textarea").first
            box.fill(f">ldh\n{ldh}")
            page.get_by_role("button", name="Search with sequence").click()
            page.locator(".sig-count").first.wait_for(timeout=TIMEOUT_MS)
            assert "significant" in page.locator(".sig-count").first.inner_text()

            # a non-significant one: "HELLO" is warned about and gets no significant hit
            box.fill("HELLO")
            page.get_by_role("button", name="Search with sequence").click()
            page.locator(".no-significant").first.wait_for(timeout=TIMEOUT_MS)
            assert "only 5 residues" in page.locator(".query-warning").first.inner_text()
            assert page.locator(".sig-count").count() == 0

            # a 10,000-residue paste reaches the server whole and is refused, naming the limit
            box.fill(too_long)
            page.get_by_role("button", name="Search with sequence").click()
            page.get_by_text("above the limit of 5,000", exact=False).first.wait_for(timeout=TIMEOUT_MS)
            assert "10,000 residues" in page.get_by_text("above the limit of 5,000", exact=False).first.inner_text()
            page.get_by_text("No hits shown", exact=False).first.wait_for(timeout=TIMEOUT_MS)  # HELLO's hits are gone
            assert page.locator(".query-label").count() == 0
            browser.close()
    assert not errors, errors
    assert _written(before, _files(REPO)) == []  # nothing written inside the checkout
