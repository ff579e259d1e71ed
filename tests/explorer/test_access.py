"""The allowed-folders rule for paths typed into the page."""

from __future__ import annotations

import os

import pytest

from engine.errors import OneProtError
from explorer.access import AllowedRoots
from explorer.options import parse_options


def test_paths_inside_roots_pass_and_outside_fail(tmp_path):
    data = tmp_path / "mydata"
    data.mkdir()
    roots = AllowedRoots([str(data)], cwd=tmp_path / "work")
    assert roots.check("demo") == "demo"
    assert roots.check(str(data / "store")) == os.path.realpath(data / "store")
    with pytest.raises(OneProtError, match="outside the folders"):
        roots.check("/etc")
    with pytest.raises(OneProtError, match="outside the folders"):
        roots.check(str(data / ".." / ".." / "elsewhere"))
    with pytest.raises(OneProtError, match="empty"):
        roots.check("  ")


def test_symlink_out_of_a_root_is_refused(tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    (root / "escape").symlink_to("/etc")
    roots = AllowedRoots([str(root)], cwd=root)
    with pytest.raises(OneProtError):
        roots.check(str(root / "escape" / "passwd"))


def test_cwd_is_a_root(tmp_path):
    roots = AllowedRoots([], cwd=tmp_path)
    assert roots.check(str(tmp_path / "runs" / "x")).startswith(os.path.realpath(tmp_path))
    assert str(os.path.realpath(tmp_path)) in roots.describe()


def test_options_parse_panel_args():
    o = parse_options(["--data", "S", "--checkpoint", "C", "--index", "E", "--allow", "/x", "--bogus"])
    assert (o.data, o.checkpoint, o.index, o.allow) == ("S", "C", "E", ["/x"])
    assert parse_options([]).data == "demo" and not parse_options([]).allow_remote
