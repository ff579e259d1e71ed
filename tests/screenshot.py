"""Serve the explorer, run a query-by-structure in headless Debian chromium, save a screenshot and its caption.

    python tests/screenshot.py [--out docs/screenshot.png] [--protein 1bmd_A] [--readme README.md]
                                 [--data S --checkpoint C --embeddings E]

The caption is written from what the page shows (hit count, how many are significant, the map's coverage),
so the README's words match the picture; with --readme it replaces the text between the
`<!-- screenshot-caption -->` markers there.
"""

from __future__ import annotations

import argparse
import re
import sys
from pathlib import Path

from browser_driver import MOLVIEWER_DRAWN, REPO, open_ready_page, served_app  # beside this file, in tests/

from engine.cli import add_embeddings_option
from engine.files import write_text_atomic

MARK = re.compile(r"(<!-- screenshot-caption -->)(.*?)(<!-- /screenshot-caption -->)", re.S)


def capture(url: str, out: Path, protein: str, target: str, timeout_ms: int = 240_000) -> dict:
    """Query with a stored protein's structure against `target`; screenshot; read the page's own numbers."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser, page, errors = open_ready_page(p, url, {"width": 1600, "height": 1000}, timeout_ms)
        page.locator("select").first.select_option(target)  # "Search in modality"
        page.wait_for_timeout(500)
        box = page.locator("input[placeholder^='type an id']").first
        box.fill(protein)
        box.press("Enter")
        page.get_by_text(f"hits for {protein}", exact=False).first.wait_for(timeout=timeout_ms)
        page.locator(".tabulator-row").first.wait_for(timeout=timeout_ms)
        page.wait_for_function(MOLVIEWER_DRAWN, timeout=timeout_ms)
        page.wait_for_timeout(1500)  # let WebGL and the map finish drawing
        out.parent.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(out), full_page=False)
        title = page.get_by_text(f"hits for {protein}", exact=False).first.inner_text()
        coverage = page.get_by_text("points ·", exact=False).first.inner_text()
        rows = page.locator(".tabulator-row").count()
        fit = page.get_by_text("hit fitted on the query", exact=False)
        fitted = fit.first.inner_text() if fit.count() else ""
        browser.close()
    return {"rows": rows, "errors": errors, "title": " ".join(title.split()), "coverage": " ".join(coverage.split()),
            "fit": " ".join(fitted.split())}


def caption(shot: dict, protein: str, target: str) -> str:
    """One README paragraph built from the page's own text."""
    m = re.search(r"(\d+) significant", shot["title"])
    sig = f"{m.group(1)} of them significant (E ≤ 0.05, green rows)" if m else (
        "none significant" if "no significant hit" in shot["title"] else "significance not shown")
    pts = re.match(r"([\d,]+) points · ([\d,]+) proteins", shot["coverage"])
    cover = f"the map shows {pts.group(2)} proteins' sequence embeddings" if pts else "the map"
    tm = re.search(r"TM-score ([\d.]+)", shot.get("fit", ""))
    how = f" by TM-align (TM-score {tm.group(1)})" if tm else ""
    # the first hit of a stored protein's own modality is itself (excluded): the 3D view shows the best other
    return (f"*The explorer after a query by structure: stored chain {protein} searched against {target}s, "
            f"{shot['rows']} hits, {sig}; hits ringed on the UMAP map ({cover}, coloured by family), the first hit "
            f"superposed on the query in 3D{how} with its pocket in red. Made by `python tests/screenshot.py`.*")


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    ap.add_argument("--data", default="demo")
    ap.add_argument("--checkpoint", default="demo")
    add_embeddings_option(ap)
    ap.add_argument("--protein", default="1bmd_A", help="stored protein to query with, by its structure")
    ap.add_argument("--target", default="structure", help="modality searched (structure hits superpose in 3D)")
    ap.add_argument("--readme", help="replace the caption between the screenshot-caption markers of this file")
    ap.add_argument("--log", default="/tmp/oneprot-screenshot-server.log")
    args = ap.parse_args(argv)
    app_args = ["--data", args.data, "--checkpoint", args.checkpoint, "--embeddings", args.embeddings]
    with served_app(app_args, Path(args.log)) as url:
        shot = capture(url, Path(args.out), args.protein, args.target)
    text = caption(shot, args.protein, args.target)
    print(text)
    if shot["errors"]:
        print(f"page errors: {shot['errors']}", file=sys.stderr)
        return 1
    if args.readme:
        readme = Path(args.readme)
        body = readme.read_text()
        if not MARK.search(body):
            print(f"no <!-- screenshot-caption --> markers in {readme}", file=sys.stderr)
            return 1
        write_text_atomic(readme, MARK.sub(lambda m: f"{m.group(1)}\n{text}\n{m.group(3)}", body, count=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
