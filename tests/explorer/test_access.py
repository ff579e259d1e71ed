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
    roots = AllowedRoots([str(data)])
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
    roots = AllowedRoots([str(root)])
    with pytest.raises(OneProtError):
        roots.check(str(root / "escape" / "passwd"))


def test_the_working_directory_is_not_a_root(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    roots = AllowedRoots([])
    with pytest.raises(OneProtError, match="outside the folders"):
        roots.check(str(tmp_path / "runs" / "x"))
    assert str(os.path.realpath(tmp_path)) not in roots.describe()


def test_a_checkpoint_naming_a_text_model_outside_the_roots_is_refused(tmp_path):
    import json
    import shutil

    from engine.paths import DEMO_CHECKPOINT
    from explorer.access import check_checkpoint

    allowed = tmp_path / "allowed"
    ckpt = allowed / "ckpt"
    shutil.copytree(DEMO_CHECKPOINT, ckpt)
    roots = AllowedRoots([str(allowed)])
    check_checkpoint(roots, str(ckpt))  # the bundled MiniLM by name: fine
    outside = tmp_path / "elsewhere" / "text-model"
    outside.mkdir(parents=True)
    cfg = json.loads((ckpt / "config.json").read_text())
    cfg["encoders"]["text"]["model"] = str(outside)
    (ckpt / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(OneProtError, match="text model folder its config names"):
        check_checkpoint(roots, str(ckpt))
    inside = allowed / "text-model"
    inside.mkdir()
    cfg["encoders"]["text"]["model"] = str(inside)
    (ckpt / "config.json").write_text(json.dumps(cfg))
    check_checkpoint(roots, str(ckpt))


def test_a_gzip_bomb_upload_stops_at_the_decompressed_limit():
    from pathlib import Path

    from explorer.backend import structure_from_upload

    bomb = (Path(__file__).parents[1] / "fixtures" / "data" / "bad" / "gzip_bomb.pdb.gz").read_bytes()
    assert len(bomb) < 100_000
    with pytest.raises(OneProtError, match="decompresses to more than 50 MB"):
        structure_from_upload(bomb, "gzip_bomb.pdb.gz", max_bytes=5_000_000)
    with pytest.raises(OneProtError, match="not a readable gzip"):
        structure_from_upload(b"\x1f\x8b\x08garbage", "x.pdb.gz", max_bytes=5_000_000)


def test_options_parse_panel_args():
    o = parse_options(["--data", "S", "--checkpoint", "C", "--embeddings", "E", "--allow", "/x", "--bogus"])
    assert (o.data, o.checkpoint, o.embeddings, o.allow) == ("S", "C", "E", ["/x"])
    assert parse_options(["--index", "F"]).embeddings == "F"  # the old flag name still works
    assert parse_options([]).data == "demo" and not parse_options([]).allow_remote
    o = parse_options(["--allow-remote", "--no-auth", "--max-decompressed-mb", "10"])
    assert o.allow_remote and o.no_auth and o.max_decompressed_mb == 10
