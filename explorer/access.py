"""Which folders a page user may point the explorer at.

The rule: a path typed into the page must resolve (symlinks followed) inside one of
  1. the repository's assets folder (engine.paths.ASSETS: the bundled demo store/checkpoint/embeddings),
  2. a folder named on the server's command line (--data/--checkpoint/--embeddings/--allow).
Not the working directory: a server started in a home folder would otherwise open all of it.
The name `demo` is always allowed. Whoever starts the server decides the roots; a page visitor cannot
widen them, so `../../etc` or an absolute path elsewhere is refused with a clear message. A checkpoint's
config may name a local text-model folder: that folder must be inside the roots too (check_checkpoint).
"""

from __future__ import annotations

import os
from pathlib import Path

from engine.errors import OneProtError
from engine.paths import ASSETS


class AllowedRoots:
    """The set of folders page-supplied paths must stay inside."""

    def __init__(self, extra: list[str | os.PathLike] | None = None):
        roots = [Path(ASSETS)]
        for p in extra or []:
            if p and str(p) != "demo":
                roots.append(Path(p).expanduser())
        # A command-line path may name a file or a not-yet-existing folder: allow its folder.
        self.roots = sorted({_real(r if r.is_dir() or not r.suffix else r.parent) for r in roots}, key=str)

    def check(self, path: str | os.PathLike, field: str = "path") -> str:
        """Return `path` unchanged if allowed (`demo` or inside a root), else raise OneProtError."""
        text = str(path).strip()
        if not text:
            raise OneProtError("empty path", field)
        if text == "demo":
            return text
        if "\x00" in text:
            raise OneProtError("path contains a NUL byte", field)
        real = _real(Path(text).expanduser())
        for root in self.roots:
            if real == root or root in real.parents:
                return str(real)
        allowed = ", ".join(str(r) for r in self.roots)
        raise OneProtError(f"{text!r} is outside the folders this server allows ({allowed})", field)

    def describe(self) -> str:
        """One line for the page: where paths may point."""
        return "Paths must be `demo` or inside: " + ", ".join(str(r) for r in self.roots)


def check_checkpoint(roots: AllowedRoots, checkpoint: str, field: str = "checkpoint") -> None:
    """Refuse a checkpoint whose config names a local model folder (a text encoder's) outside the roots."""
    import json

    from engine.encoders.text import BUNDLED
    from engine.paths import resolve_checkpoint

    config = resolve_checkpoint(checkpoint) / "config.json"
    try:
        encoders = json.loads(config.read_text()).get("encoders", {})
    except (OSError, ValueError) as exc:
        raise OneProtError(f"unreadable checkpoint config: {exc}", str(config)) from None
    for name, enc in encoders.items():
        model = enc.get("model") if isinstance(enc, dict) else None
        if not isinstance(model, str) or model in BUNDLED:
            continue
        if Path(model).expanduser().exists() or model.startswith((".", "/", "~")):
            roots.check(model, f"{field}: the {name} model folder its config names")


def _real(p: Path) -> Path:
    return Path(os.path.realpath(p))
