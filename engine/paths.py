"""Where bundled assets live and how the name `demo` resolves to them."""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import OneProtError

REPO_ROOT = Path(__file__).resolve().parent.parent
ASSETS = Path(os.environ.get("ONEPROT_ASSETS", REPO_ROOT / "assets"))
DEMO_STORE = ASSETS / "demo"
DEMO_CHECKPOINT = ASSETS / "checkpoints" / "demo"
DEMO_EMBEDDINGS = ASSETS / "embeddings" / "demo"


def _user_dir(kind: str) -> Path:
    import platformdirs

    return Path(getattr(platformdirs, f"user_{kind}_dir")("oneprot"))


# Per-user folders (platformdirs), never the checkout or a package folder: caches (parses, maps) and data
# the explorer makes (live-training runs). ONEPROT_CACHE / ONEPROT_DATA move them.
CACHE_DIR = Path(os.environ.get("ONEPROT_CACHE") or _user_dir("cache"))
DATA_DIR = Path(os.environ.get("ONEPROT_DATA") or _user_dir("data"))


def resolve_store(name_or_path: str | os.PathLike) -> Path:
    """`demo` -> the bundled store; anything else is a path that must exist."""
    return _resolve(name_or_path, DEMO_STORE, "store")


def resolve_checkpoint(name_or_path: str | os.PathLike) -> Path:
    """`demo` -> the bundled checkpoint; anything else is a path that must exist."""
    return _resolve(name_or_path, DEMO_CHECKPOINT, "checkpoint")


def resolve_embeddings(name_or_path: str | os.PathLike) -> Path:
    """`demo` -> the bundled (or cached) demo embeddings folder; anything else is a path."""
    return _resolve(name_or_path, DEMO_EMBEDDINGS, "embeddings")


def _resolve(name_or_path: str | os.PathLike, demo: Path, what: str) -> Path:
    if str(name_or_path) == "demo":
        if not demo.exists():
            raise OneProtError(f"the bundled demo {what} is missing at {demo}; rebuild it (see README)", what)
        return demo
    path = Path(name_or_path).expanduser()
    if not path.exists():
        raise OneProtError(f"no such {what}: {path}", what)
    return path
