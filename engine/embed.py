"""Embed every protein and modality of a store into an embeddings folder; read such folders back.

Folder layout (the contract in ARCHITECTURE.md):
    manifest.json        model_hash, dim, checkpoint, store, split, counts {modality: n}, written LAST
    <modality>.npy       (N, D) float32, L2-normalised (float16 on disk if manifest storage_dtype says so)
    <modality>.ids.txt   one protein id per line, same order
    labels.parquet       id, name + the store's label columns
    <modality>.faiss     (+ .json) an approximate index, only for large modalities (engine.index)

How it is fast: vectors come from the model's one embedding path (OneProt.embed: length-sorted
token-budget batches, padding-free for the ESM encoders, the next batch collated on the host while
the current one runs, bf16 autocast on a GPU). How it survives being killed: each modality is embedded in fixed
chunks of ids, each chunk saved atomically to chunks/; a rerun with the same plan skips the chunks
already on disk. How it scales out: under torchrun each rank embeds ids[rank::world] into its own
shard folder; `merge_shards` (oneprot embed --merge) joins them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from engine.errors import OneProtError
from engine.files import atomic_file, write_text_atomic
from engine.modality import Modality, parse_modality
from engine.paths import resolve_embeddings

if TYPE_CHECKING:  # engine.index imports faiss (~0.2 s): only searching and index building need it
    import pandas as pd  # imported where a table is read or written: opening vectors (the explorer's map) needs none

    from engine.index import VectorIndex

MANIFEST = "manifest.json"
LABELS = "labels.parquet"
CHUNKS = "chunks"
DEFAULT_CHUNK = 2048
DEFAULT_BATCH_TOKENS = 16_384  # = engine.token_batching's; not imported from there, which loads torch
FORMAT_VERSION = 1


# ---- reading -----------------------------------------------------------------------------------
class EmbeddingSet:
    """Read access to an embeddings folder. `EmbeddingSet.open("demo")` opens the bundled demo set."""

    def __init__(self, path: Path, manifest: dict):
        self.path = path
        self.manifest = manifest
        self._ids: dict[str, list[str]] = {}
        self._pos: dict[str, dict[str, int]] = {}
        self._vectors: dict[str, np.ndarray] = {}
        self._index: dict[str, VectorIndex] = {}
        self._labels: pd.DataFrame | None = None

    @classmethod
    def open(cls, name_or_path: str | os.PathLike) -> "EmbeddingSet":
        path = resolve_embeddings(name_or_path)
        f = path / MANIFEST
        if not f.is_file():
            if any(path.glob("shard-*")):
                raise OneProtError("this folder holds unmerged shards; run `oneprot embed --merge --out` on it", str(path))
            raise OneProtError("not an embeddings folder (manifest.json missing; unfinished run?)", str(path))
        try:
            manifest = json.loads(f.read_text())
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise OneProtError(f"corrupted manifest: {exc}", str(f)) from None
        for key in ("model_hash", "dim", "counts"):
            if key not in manifest:
                raise OneProtError(f"manifest lacks {key!r}", str(f))
        return cls(path, manifest)

    @property
    def modalities(self) -> list[str]:
        return [m for m, n in self.manifest["counts"].items() if n > 0]

    @property
    def model_hash(self) -> str:
        return str(self.manifest["model_hash"])

    @property
    def dim(self) -> int:
        return int(self.manifest["dim"])

    def require(self, modality: str | Modality) -> str:
        """The modality's name if this set has embeddings for it, else a OneProtError listing what it has."""
        m = parse_modality(modality).value
        if m not in self.modalities:
            raise OneProtError(f"no {m} embeddings here; this set has: {', '.join(self.modalities)}", str(self.path))
        return m

    def vectors(self, modality: str | Modality) -> np.ndarray:
        """(N, D) float32 unit vectors (memory-mapped)."""
        m = self.require(modality)
        if m not in self._vectors:
            f = self.path / f"{m}.npy"
            try:
                v = np.load(f, mmap_mode="r", allow_pickle=False)
            except (OSError, ValueError) as exc:
                raise OneProtError(f"cannot read embeddings: {exc}", str(f)) from None
            if v.ndim != 2 or v.shape[1] != self.dim or len(v) != self.manifest["counts"][m]:
                raise OneProtError(f"shape {v.shape} disagrees with the manifest ({self.manifest['counts'][m]} x {self.dim})", str(f))
            if v.dtype != np.float32:  # a float16-stored set (bundled demo): readers always get float32
                v = np.asarray(v, dtype=np.float32)
            self._vectors[m] = v
        return self._vectors[m]

    def ids(self, modality: str | Modality) -> list[str]:
        m = self.require(modality)
        if m not in self._ids:
            f = self.path / f"{m}.ids.txt"
            if not f.is_file():
                raise OneProtError("ids file missing", str(f))
            ids = f.read_text().splitlines()
            if len(ids) != self.manifest["counts"][m]:
                raise OneProtError(f"{len(ids)} ids, the manifest says {self.manifest['counts'][m]}", str(f))
            self._ids[m] = ids
        return self._ids[m]

    def position(self, modality: str | Modality, protein_id: str) -> int:
        """Row of a protein in a modality's arrays, or a OneProtError if it is not embedded there."""
        m = self.require(modality)
        if m not in self._pos:
            self._pos[m] = {pid: i for i, pid in enumerate(self.ids(m))}
        try:
            return self._pos[m][protein_id]
        except KeyError:
            have = [x for x in self.modalities if protein_id in set(self.ids(x))]
            hint = f"; it has: {', '.join(have)}" if have else ""
            raise OneProtError(f"no {m} embedding for protein {protein_id!r}{hint}", "query id") from None

    def vector(self, modality: str | Modality, protein_id: str) -> np.ndarray:
        return np.asarray(self.vectors(modality)[self.position(modality, protein_id)], dtype=np.float32)

    @property
    def labels(self) -> pd.DataFrame:
        """id, name and label columns (family, ec, organism, source, split) of every embedded protein."""
        if self._labels is None:
            import pandas as pd

            f = self.path / LABELS
            try:
                self._labels = pd.read_parquet(f) if f.is_file() else pd.DataFrame({"id": []})
            except Exception as exc:  # pyarrow raises several types on damaged files
                raise OneProtError(f"cannot read labels: {exc}", str(f)) from None
        return self._labels

    def index(self, modality: str | Modality) -> VectorIndex:
        """The search index of a modality: the saved approximate one, else an exact one built now."""
        from engine.index import VectorIndex, build_index

        m = self.require(modality)
        if m not in self._index:
            f = self.path / f"{m}.faiss"
            if f.is_file():
                idx = VectorIndex.load(f)
                if idx.info.n != self.manifest["counts"][m] or idx.dim != self.dim:
                    raise OneProtError("index is stale (size or dim differs from the embeddings); re-run embed", str(f))
            else:
                idx = build_index(np.asarray(self.vectors(m)), kind="flat")
            self._index[m] = idx
        return self._index[m]

    def check_model(self, model_hash: str, dim: int, where: str = "embeddings") -> None:
        """Refuse to mix a model with embeddings another model made (different hash or dimension)."""
        if int(dim) != self.dim:
            raise OneProtError(
                f"the checkpoint embeds into {dim} dimensions but these embeddings are {self.dim}-d; "
                "they come from a different model: re-run `oneprot embed` with this checkpoint", where)
        if str(model_hash) != self.model_hash:
            raise OneProtError(
                f"the checkpoint's model hash is {model_hash} but these embeddings were made by model {self.model_hash}; "
                "scores between the two would be meaningless: re-run `oneprot embed` with this checkpoint", where)


# ---- embedding ---------------------------------------------------------------------------------
def model_identity(model) -> str:
    """The model hash recorded in its checkpoint, or computed from the weights."""
    meta = getattr(model, "checkpoint_meta", None) or {}
    if meta.get("model_hash"):
        return str(meta["model_hash"])
    from engine.checkpoint import model_hash

    return model_hash(model)


def shard_from_env() -> tuple[int, int]:
    """(rank, world size) from torchrun's environment; (0, 1) when not under torchrun."""
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def shard_folder(out: Path, rank: int, world: int) -> Path:
    return out / f"shard-{rank:03d}-of-{world:03d}"


def embed_store(
    model,
    store,
    out: str | os.PathLike,
    split: str | None = None,
    modalities: list[str] | None = None,
    batch_tokens: int = DEFAULT_BATCH_TOKENS,
    chunk_size: int = DEFAULT_CHUNK,
    rank: int = 0,
    world: int = 1,
    checkpoint: str = "",
    on_chunk: Callable[[str, int, int], None] | None = None,
    build_indexes: bool = True,
    storage_dtype: str = "float32",
    ids: list[str] | None = None,
) -> Path:
    """Embed a store (optionally one split / some modalities) into `out`; resumable; returns the folder.

    With world > 1 this rank embeds ids[rank::world] into out/shard-RRR-of-WWW.
    `on_chunk(modality, chunk, n_chunks)` is called after each chunk is safely on disk.
    `storage_dtype="float16"` halves the files (for bundling); readers still get float32.
    `ids` restricts the run to these proteins (store order is kept).
    """
    if storage_dtype not in ("float32", "float16"):
        raise OneProtError(f"storage dtype {storage_dtype!r}; choose float32 or float16", "storage_dtype")
    out = Path(out)
    folder = shard_folder(out, rank, world) if world > 1 else out
    wanted = [parse_modality(m).value for m in (modalities or model.modalities)]
    missing = [m for m in wanted if m not in model.modalities]
    if missing:
        raise OneProtError(f"the checkpoint has no encoder for {missing}; it has: {', '.join(model.modalities)}", "modalities")
    digest = model_identity(model)
    keep = None
    if ids is not None:
        keep = set(ids)
        unknown = [i for i in keep if i not in store]
        if unknown:
            raise OneProtError(f"{len(unknown)} ids are not in the store, e.g. {sorted(unknown)[:3]}", "ids")
    plan_ids = {m: [i for i in store.ids(split=split, modality=m) if keep is None or i in keep][rank::world]
                for m in wanted}
    plan = {
        "model_hash": digest, "split": split, "chunk_size": chunk_size, "rank": rank, "world": world,
        "ids": {m: hashlib.sha256("\n".join(ids).encode()).hexdigest()[:16] for m, ids in plan_ids.items()},
    }
    chunk_dir = folder / CHUNKS
    _prepare_chunks(chunk_dir, plan)

    counts = {}
    for m, ids in plan_ids.items():
        n_chunks = (len(ids) + chunk_size - 1) // chunk_size
        for k in range(n_chunks):
            f = chunk_dir / f"{m}.{k:05d}.npy"
            part = ids[k * chunk_size : (k + 1) * chunk_size]
            if _chunk_ok(f, len(part), model.config.dim):
                continue
            vecs = model.embed(m, _items(store, part, m), batch_tokens)
            _save_npy(f, vecs)
            if on_chunk is not None:
                on_chunk(m, k, n_chunks)
        parts = [np.load(chunk_dir / f"{m}.{k:05d}.npy") for k in range(n_chunks)]
        vectors = np.concatenate(parts) if parts else np.zeros((0, model.config.dim), dtype=np.float32)
        _save_npy(folder / f"{m}.npy", vectors, storage_dtype)
        write_text_atomic(folder / f"{m}.ids.txt", "\n".join(ids) + ("\n" if ids else ""))
        counts[m] = len(ids)

    all_ids = list(dict.fromkeys(i for ids in plan_ids.values() for i in ids))
    _write_labels(folder / LABELS, store, all_ids)
    manifest = {
        "format_version": FORMAT_VERSION, "model_hash": digest, "dim": int(model.config.dim),
        "checkpoint": str(checkpoint), "store": str(getattr(store, "path", "")), "split": split,
        "counts": counts, "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "storage_dtype": storage_dtype, "selected_ids": None if ids is None else len(set(ids)),
        **({"shard": {"rank": rank, "world": world}} if world > 1 else {}),
    }
    if build_indexes and world == 1:
        manifest["indexes"] = _build_indexes(folder, counts)
    write_text_atomic(folder / MANIFEST, json.dumps(manifest, indent=2))  # last: its presence marks a finished folder
    shutil.rmtree(chunk_dir, ignore_errors=True)
    return folder


def merge_shards(out: str | os.PathLike, build_indexes: bool = True) -> Path:
    """Join out/shard-RRR-of-WWW folders into one embeddings folder at `out`."""
    out = Path(out)
    shards = sorted(p for p in out.glob("shard-*-of-*") if p.is_dir())
    if not shards:
        raise OneProtError("no shard-*-of-* folders to merge", str(out))
    worlds = {int(p.name.rsplit("-", 1)[1]) for p in shards}
    if len(worlds) != 1:
        raise OneProtError(f"shards from runs of different sizes {sorted(worlds)}; remove the stale ones", str(out))
    world = worlds.pop()
    sets = []
    for r in range(world):
        p = shard_folder(out, r, world)
        if not (p / MANIFEST).is_file():
            raise OneProtError(f"shard {r} of {world} is missing or unfinished; re-run that rank", str(p))
        sets.append(EmbeddingSet(p, json.loads((p / MANIFEST).read_text())))
    hashes = {s.model_hash for s in sets}
    if len(hashes) != 1:
        raise OneProtError(f"shards come from different models {sorted(hashes)}", str(out))
    counts = {}
    for m in dict.fromkeys(m for s in sets for m in s.manifest["counts"]):
        # rank r holds ids[r::world]: interleaving the shards gives back the single run's order
        id_parts = [s.ids(m) if s.manifest["counts"].get(m, 0) > 0 else [] for s in sets]
        vec_parts = [np.asarray(s.vectors(m)) for s, part in zip(sets, id_parts) if part]
        start = np.cumsum([0] + [len(part) for part in id_parts])
        order = [int(start[r]) + i for i in range(max(map(len, id_parts), default=0))
                 for r in range(world) if i < len(id_parts[r])]
        vecs = np.concatenate(vec_parts)[order] if vec_parts else np.zeros((0, sets[0].dim), np.float32)
        joined = [i for part in id_parts for i in part]
        ids = [joined[k] for k in order]
        _save_npy(out / f"{m}.npy", vecs, sets[0].manifest.get("storage_dtype", "float32"))
        write_text_atomic(out / f"{m}.ids.txt", "\n".join(ids) + ("\n" if ids else ""))
        counts[m] = len(ids)
    import pandas as pd

    labels = pd.concat([s.labels for s in sets], ignore_index=True).drop_duplicates("id")
    _atomic_parquet(labels, out / LABELS)
    first = sets[0].manifest
    manifest = {k: v for k, v in first.items() if k not in ("shard", "counts", "indexes")}
    manifest.update(counts=counts, merged_from=world, created=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
    if build_indexes:
        manifest["indexes"] = _build_indexes(out, counts)
    write_text_atomic(out / MANIFEST, json.dumps(manifest, indent=2))
    return out


# ---- export --------------------------------------------------------------------------------------
def export_h5(eset: EmbeddingSet, path: str | os.PathLike, modality: str = "sequence",
              ids: Iterable[str] | None = None) -> Path:
    """One modality as HDF5 with one dataset per protein id ({id: vector}), the layout ProtSpace reads;
    `ids` keeps only those proteins (None: all)."""
    import h5py

    m = eset.require(modality)
    path = Path(path)
    vecs = eset.vectors(m)
    keep = None if ids is None else set(ids)
    with atomic_file(path) as tmp, h5py.File(tmp, "w") as h:
        for i, pid in enumerate(eset.ids(m)):
            if keep is None or pid in keep:
                h.create_dataset(pid.replace("/", "_"), data=np.asarray(vecs[i], dtype=np.float32))
        h.attrs["modality"] = m
        h.attrs["model_hash"] = eset.model_hash
    return path


def export_parquet(eset: EmbeddingSet, path: str | os.PathLike, modalities: list[str] | None = None,
                   ids: Iterable[str] | None = None) -> Path:
    """Long table: id, modality, embedding (list of float32) + label columns; `ids` keeps only those proteins."""
    import pandas as pd

    frames = []
    keep = None if ids is None else set(ids)
    for m in modalities or eset.modalities:
        m = eset.require(m)
        v = np.asarray(eset.vectors(m), dtype=np.float32)
        frame = pd.DataFrame({"id": eset.ids(m), "modality": m, "embedding": list(v)})
        frames.append(frame if keep is None else frame[frame["id"].isin(keep)])
    table = pd.concat(frames, ignore_index=True)
    if len(eset.labels):
        table = table.merge(eset.labels, on="id", how="left")
    return _atomic_parquet(table, Path(path))


# ---- helpers -------------------------------------------------------------------------------------
def _items(store, ids: list[str], m: str) -> list[Any]:
    from engine.data.items import items_for

    return items_for(store, ids, m)


def _prepare_chunks(chunk_dir: Path, plan: dict) -> None:
    """Keep chunks only if they were made under the same plan (model, split, ids, chunk size)."""
    plan_file = chunk_dir / "plan.json"
    if chunk_dir.exists():
        try:
            same = json.loads(plan_file.read_text()) == plan
        except (OSError, json.JSONDecodeError):
            same = False
        if not same:
            shutil.rmtree(chunk_dir)
    chunk_dir.mkdir(parents=True, exist_ok=True)
    if not plan_file.is_file():
        write_text_atomic(plan_file, json.dumps(plan, indent=2))


def _chunk_ok(f: Path, n: int, dim: int) -> bool:
    if not f.is_file():
        return False
    try:
        v = np.load(f, mmap_mode="r")
        return v.shape == (n, dim)
    except (OSError, ValueError):
        return False


def _save_npy(path: Path, arr: np.ndarray, dtype: str = "float32") -> None:
    with atomic_file(path) as tmp:
        np.save(tmp, np.ascontiguousarray(arr, dtype=dtype))


def _atomic_parquet(df: pd.DataFrame, path: Path) -> Path:
    with atomic_file(path) as tmp:
        df.to_parquet(tmp, index=False)
    return path


def _write_labels(path: Path, store, ids: list[str]) -> None:
    from engine.data.store import LABEL_COLUMNS

    p = store.proteins
    cols = ["id", "name"] + [c for c in LABEL_COLUMNS if c in p.columns]
    table = p.loc[p["id"].isin(set(ids)), cols].reset_index(drop=True)
    _atomic_parquet(table, path)


def _build_indexes(folder: Path, counts: dict[str, int]) -> dict:
    """Save approximate indexes for modalities too large for exact search; small ones stay exact."""
    from engine.index import EXACT_MAX, build_index

    out = {}
    rng = np.random.default_rng(0)
    # calibrate on vectors of every modality: cross-modal queries face a modality gap and are
    # harder for an approximate index than the indexed points themselves
    probes = [np.asarray(v[np.sort(rng.choice(len(v), size=min(len(v), 128), replace=False))])
              for v in (np.load(folder / f"{m}.npy", mmap_mode="r") for m, n in counts.items() if n > 0)]
    for m, n in counts.items():
        if n > EXACT_MAX:
            idx = build_index(np.load(folder / f"{m}.npy", mmap_mode="r").astype(np.float32), queries=np.concatenate(probes).astype(np.float32))
            idx.save(folder / f"{m}.faiss")
            out[m] = {"kind": idx.info.kind, "params": idx.info.params, "recall_at_10": idx.info.recall_at_10}
        else:
            out[m] = {"kind": "flat", "recall_at_10": 1.0}
    return out
