"""ProteinStore.open: the index (ids, which proteins have a structure) with pyarrow alone, the table on first use."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from engine.data.store import ProteinStore
from engine.errors import OneProtError
from engine.modality import Modality


def test_open_answers_ids_without_pandas_then_reads_the_table(world):
    code = ("import sys; from engine.data.store import ProteinStore; s = ProteinStore.open(sys.argv[1]); "
            "ids, st = s.ids(), s.ids(modality='structure'); "
            "print(len(s), len(ids), len(st), ids[0] in s, 'pandas' in sys.modules); "
            "r = s.record(st[0]); print('pandas' in sys.modules, r.coords is not None)")
    out = subprocess.run([sys.executable, "-c", code, str(world["store"])], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    first, second = out.stdout.split("\n")[:2]
    n, n_ids, n_structure, contained, pandas_early = first.split()
    assert n == n_ids and 0 < int(n_structure) < int(n) and contained == "True"
    assert pandas_early == "False"  # the explorer's first page needs no pandas (~0.3 s of a 2-core cold start)
    assert second == "True True"  # a record reads the whole table, on first use


def test_index_masks_match_the_table(world):
    s = ProteinStore.open(world["store"])
    early = {m: s.modality_mask(m).tolist() for m in (Modality.SEQUENCE, Modality.STRUCTURE)}
    p = s.proteins
    assert early[Modality.STRUCTURE] == p["has_structure"].astype(bool).tolist()
    assert early[Modality.SEQUENCE] == [True] * len(p)
    assert s.ids() == p["id"].tolist()
    assert s.ids(modality="structure") == p.loc[p["has_structure"].astype(bool), "id"].tolist()
    assert s.ids(split="valid", modality="structure") == \
        p.loc[p["has_structure"].astype(bool) & (p["split"] == "valid"), "id"].tolist()


def _copy(world, tmp_path):
    return shutil.copytree(world["store"], tmp_path / "store")


def test_truncated_table_is_refused_at_open(world, tmp_path):
    store = _copy(world, tmp_path)
    f = store / "proteins.parquet"
    f.write_bytes(f.read_bytes()[: f.stat().st_size // 2])
    with pytest.raises(OneProtError, match="corrupted or truncated") as err:
        ProteinStore.open(store)
    assert "proteins.parquet" in str(err.value)


def test_missing_column_and_row_count_are_refused_at_open(world, tmp_path):
    store = _copy(world, tmp_path)
    f = store / "proteins.parquet"
    table = pq.read_table(f)
    pq.write_table(table.drop_columns(["has_structure"]), f)
    with pytest.raises(OneProtError, match=r"columns missing: \['has_structure'\]"):
        ProteinStore.open(store)
    pq.write_table(table.slice(0, table.num_rows - 1), f)
    with pytest.raises(OneProtError, match="truncated store"):
        ProteinStore.open(store)


def test_table_replaced_after_open_is_reported(world, tmp_path):
    store = _copy(world, tmp_path)
    s = ProteinStore.open(store)
    f = store / "proteins.parquet"
    table = pq.read_table(f)
    ids = table.column("id").to_pylist()
    pq.write_table(table.set_column(table.column_names.index("id"), "id", pa.array(ids[::-1])), f)
    with pytest.raises(OneProtError, match="changed on disk"):
        _ = s.proteins
    manifest = json.loads((store / "manifest.json").read_text())
    assert manifest["proteins"] == len(s)
