"""`python -m explorer.prepare [--embeddings demo] [--modalities sequence,structure]`: precompute maps.

Writes the UMAP of each listed modality (and all of them jointly) into `<embeddings>/projections/`, where
the app looks first, so a bundled embeddings folder opens with its map already drawn (fast cold start),
and the app's default map as a first-page file (explorer.mapdata.first_page): a server's first page is
drawn from it while the store opens.
"""

from __future__ import annotations

import argparse
import sys
import time

from engine.cli import add_embeddings_option


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m explorer.prepare", description=__doc__.splitlines()[0])
    p.add_argument("--data", default="demo")
    add_embeddings_option(p)
    p.add_argument("--modalities", default="", help="comma-separated; default: every modality, one at a time")
    p.add_argument("--joint", action="store_true", help="also project the listed modalities together")
    args = p.parse_args(argv)

    from engine.errors import OneProtError
    from explorer.backend import get_resources
    from explorer.mapdata import point_table, write_first_page
    from explorer.options import AppOptions
    from explorer.state import ExplorerState

    try:
        res = get_resources(args.data, "demo", args.embeddings)
        (res.embeddings.path / "projections").mkdir(exist_ok=True)
        mods = [m for m in args.modalities.split(",") if m] or res.modalities()
        jobs = [[m] for m in mods] + ([mods] if args.joint and len(mods) > 1 else [])
        for job in jobs:
            t = time.perf_counter()
            table = point_table(res, job, write_to=res.embeddings.path)
            print(f"{'+'.join(job)}: {len(table):,} points in {time.perf_counter() - t:.1f} s")
        defaults = ExplorerState.param
        page = write_first_page(res, defaults.map_modalities.default, defaults.close_gap.default,
                                max_points=AppOptions().datashade_above)
        print(f"first page: {page or 'none (the default map is rasterized: too many points)'}")
    except OneProtError as exc:
        print(f"explorer.prepare: error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
