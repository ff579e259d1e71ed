"""Serve the explorer, run a query-by-structure in headless Debian chromium, save a screenshot.

    python scripts/screenshot.py --out docs/screenshot.png [--data S --checkpoint C --embeddings E] [--protein ID]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from engine.cli import add_embeddings_option
from explorer.serving import REPO, free_port, query_and_capture, serve, stop, wait_http


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(REPO / "docs" / "screenshot.png"))
    ap.add_argument("--data", default="demo")
    ap.add_argument("--checkpoint", default="demo")
    add_embeddings_option(ap)
    ap.add_argument("--protein", default=None, help="stored protein to query with (default: the first with a structure)")
    args = ap.parse_args()
    port = free_port()
    proc = serve(port, ["--data", args.data, "--checkpoint", args.checkpoint, "--embeddings", args.embeddings])
    try:
        wait_http(f"http://127.0.0.1:{port}/app", 120)
        print(query_and_capture(f"http://127.0.0.1:{port}/app", Path(args.out), args.protein))
    finally:
        stop(proc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
