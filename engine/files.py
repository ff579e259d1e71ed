"""Atomic writes: every file or folder the engine writes appears whole or not at all.

One temp-name scheme for all of them: `<stem>.tmp-<tag><suffix>` beside the target (tag: the process
id, or a name every DDP rank agrees on), then `os.replace`. Keeping the suffix lets numpy and pandas
writers that add or check an extension write the temp file as they would the real one.

    with atomic_file(path) as tmp:        # any writer: np.save(tmp, a), df.to_parquet(tmp), h5py.File(tmp, "w")
        ...
    write_text_atomic(path, text)
    with atomic_dir(folder) as tmp:       # a folder of files, swapped in whole (old folder removed)
        ...
"""

from __future__ import annotations

import contextlib
import os
import shutil
from collections.abc import Iterator
from pathlib import Path


def temp_path(path: str | os.PathLike, tag: str | int | None = None) -> Path:
    """The temp name for `path` (same folder, same suffix); `tag` defaults to this process's id."""
    path = Path(path)
    return path.with_name(f"{path.stem}.tmp-{os.getpid() if tag is None else tag}{path.suffix}")


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temp path to write; on success it replaces `path`, on error it is removed."""
    path = Path(path)
    tmp = temp_path(path)
    try:
        yield tmp
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    """Write `text` to `path` atomically: a killed run leaves the previous file, never half of one."""
    with atomic_file(path) as tmp:
        Path(tmp).write_text(text)
    return Path(path)


def fsync_dir(folder: Path) -> None:
    """Flush every file in `folder` to disk (before the folder is swapped into place)."""
    for f in Path(folder).iterdir():
        if f.is_file():
            with open(f, "rb") as fh:
                os.fsync(fh.fileno())


def replace_dir(new: Path, target: Path) -> None:
    """Move a finished folder into place. A crash in between leaves the old folder or none."""
    old = target.with_name(f"{target.name}.old-{os.getpid()}")
    if target.exists():
        os.replace(target, old)
    os.replace(new, target)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


@contextlib.contextmanager
def atomic_dir(folder: str | os.PathLike) -> Iterator[Path]:
    """Yield a fresh temp folder; on success its files are synced and it replaces `folder`, on error it is removed."""
    folder = Path(folder)
    tmp = temp_path(folder)
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    try:
        yield tmp
        fsync_dir(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, folder)
