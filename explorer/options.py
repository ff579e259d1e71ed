"""Command-line options of the served app: `panel serve explorer/app.py --args --data S ...`."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field

from engine.cli import add_embeddings_option


@dataclass
class AppOptions:
    """What the operator chose when starting the server (each defaults to the bundled demo)."""

    data: str = "demo"
    checkpoint: str = "demo"
    embeddings: str = "demo"  # embeddings folder (`oneprot embed`), not a search index
    allow: list[str] = field(default_factory=list)  # extra folders page users may open
    max_upload_mb: float = 5.0
    datashade_above: int = 50_000  # points; beyond this the map is rasterized server-side
    allow_remote: bool = False  # serve pages to clients other than this machine (loopback)
    no_auth: bool = False  # serve remote clients without a password (only when explicitly asked)
    max_decompressed_mb: float = 50.0  # an uploaded .gz may expand to at most this
    runs_dir: str = ""  # where Align live writes runs ("" = the per-user data folder, engine.paths.DATA_DIR/runs)

    @property
    def runs_folder(self) -> str:
        from engine.paths import DATA_DIR

        return self.runs_dir or str(DATA_DIR / "runs")

    @property
    def named_paths(self) -> list[str]:
        return [self.data, self.checkpoint, self.embeddings, *self.allow, self.runs_folder]


def parse_options(argv: list[str] | None = None) -> AppOptions:
    """Parse the arguments Panel passes after `--args` (unknown ones are ignored)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    p = argparse.ArgumentParser(prog="explorer", add_help=False)
    p.add_argument("--data", default="demo", help="store folder or `demo`")
    p.add_argument("--checkpoint", default="demo", help="checkpoint folder or `demo`")
    add_embeddings_option(p, help="embeddings folder or `demo`")
    p.add_argument("--allow", action="append", default=[], help="extra folder page users may open")
    p.add_argument("--max-upload-mb", type=float, default=5.0)
    p.add_argument("--datashade-above", type=int, default=50_000)
    p.add_argument("--allow-remote", action="store_true",
                   help="serve clients other than localhost (they must log in unless --no-auth)")
    p.add_argument("--no-auth", action="store_true", help="serve remote clients without a password (not advised)")
    p.add_argument("--max-decompressed-mb", type=float, default=50.0, help="size an uploaded .gz may expand to")
    p.add_argument("--runs-dir", default="", help="where Align live writes its runs (default: the per-user data folder)")
    ns, _ = p.parse_known_args(argv)
    return AppOptions(ns.data, ns.checkpoint, ns.embeddings, ns.allow, ns.max_upload_mb, ns.datashade_above,
                      ns.allow_remote, ns.no_auth, ns.max_decompressed_mb, ns.runs_dir)
