"""A real browser (Debian chromium, headless) drives the served app: structure query, hits, 3D view, errors."""

from __future__ import annotations

import os

import numpy as np
import pytest

from browser_driver import CHROMIUM, MOLVIEWER_DRAWN, open_ready_page, served_app

pytestmark = [pytest.mark.slow, pytest.mark.browser,
              pytest.mark.skipif(not os.path.exists(CHROMIUM), reason="needs Debian chromium at /usr/bin/chromium")]
TIMEOUT_MS = 120_000
MAP_SOURCE = "Bokeh.documents[0].get_model_by_name"  # the map's ColumnDataSources carry names


def test_query_by_structure_in_a_browser(world, tmp_path):
    from matplotlib.image import imread
    from playwright.sync_api import sync_playwright

    args = ["--data", str(world["store"]), "--checkpoint", str(world["checkpoint"]), "--embeddings", str(world["embeddings"])]
    shot = tmp_path / "page.png"
    with served_app(args, tmp_path / "server.log", env={"ONEPROT_CACHE": str(tmp_path / "cache")}) as url:
        with sync_playwright() as p:
            browser, page, page_errors = open_ready_page(p, url, {"width": 1500, "height": 950}, TIMEOUT_MS)

            # query by structure with a stored protein: hits table and 3D view appear
            page.get_by_role("button", name="Search with stored protein").click()
            page.get_by_text("hits for", exact=False).first.wait_for(timeout=TIMEOUT_MS)
            page.locator(".tabulator-row").first.wait_for(timeout=TIMEOUT_MS)
            assert page.locator(".tabulator-row").count() == 10
            page.wait_for_function(MOLVIEWER_DRAWN, timeout=TIMEOUT_MS)
            # the map (plain Bokeh) rings the hits and stars the focus: its sources changed in place
            page.wait_for_function(f"() => {MAP_SOURCE}('map-hits').get_length() === 10"
                                   f" && {MAP_SOURCE}('map-focus').get_length() === 1", timeout=TIMEOUT_MS)
            page.wait_for_timeout(1000)
            page.screenshot(path=str(shot))
            # a selection in the browser reaches the server (one point -> detail), and one made on the
            # server (find by name) reaches the browser
            picked = page.evaluate(f"() => {{ const s = {MAP_SOURCE}('map-points'); s.selected.indices = [3];"
                                   " return s.data.id[3]; }")
            page.locator(".detail-title", has_text=picked).first.wait_for(timeout=TIMEOUT_MS)
            find = page.locator("input[placeholder^='e.g. 1ldm_A']").first
            find.fill("glo")
            find.press("Enter")
            page.wait_for_function(f"() => {MAP_SOURCE}('map-points').selected.indices.length === 8", timeout=TIMEOUT_MS)
            # user text is shown escaped: the tag-laden test name appears as text, no script ran
            assert page.get_by_text("<script>alert(1)</script>", exact=False).count() >= 1

            # a bad upload shows an error in the page, and the session keeps answering
            page.locator("input[type=file]").first.set_input_files(
                {"name": "broken.pdb", "mimeType": "chemical/x-pdb", "buffer": b"this is not a PDB file\n"})
            page.wait_for_timeout(1500)  # the file travels over the websocket
            page.get_by_role("button", name="Search with upload").click()
            page.get_by_text("broken.pdb", exact=False).first.wait_for(timeout=TIMEOUT_MS)
            page.locator(".bk-tab", has_text="Sequence").first.click()
            seq = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"
            page.locator("textarea").first.fill(f">again\n{seq}")
            page.get_by_role("button", name="Search with sequence").click()
            page.get_by_text(f"again ({len(seq)} aa)", exact=False).first.wait_for(timeout=TIMEOUT_MS)
            browser.close()
    assert not page_errors, page_errors
    img = imread(shot)
    assert img.shape[0] > 500 and float(np.var(img[..., :3])) > 0.005  # a real page, not a blank one
