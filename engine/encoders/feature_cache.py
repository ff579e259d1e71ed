"""Features of a frozen sequence anchor, computed once per training run and read back at every step.

The same folder layout serves a frozen structure/pocket encoder (ProteinMPNN, build_item_feature_cache),
keyed by a hash of each item instead of its sequence.

A frozen anchor (engine/encoders/unirep.py) maps a sequence to the same states at every step, and its
recurrence is the slow part of a CPU training step, so the trainer computes the features of every sequence
it will use (train pairs plus the valid sample it evaluates on) once, in large length-sorted batches, and
the encoder's forward reads them back. With mean pooling (no parameters) one pooled vector per sequence is
kept (float32); with a trained pooling the per-residue states are kept (float16, memory-mapped): 2 * H bytes per
residue, e.g. ~1.9 GB for the demo's 17,129 train sequences cut to 256 residues (3.67M) with the 256 model.

Folder (RUN/anchor_cache, or a subfolder per plan of TrainConfig.anchor_cache_dir, shared by runs):
    plan.json       what the chunks are made from: encoder config (with the weight file's sha256), kind,
                    and a digest of the ordered sequences; a different plan discards the old chunks
    chunk_<i>.npy   one length-sorted batch: pooled (n, H) float32, or states (residues, H) float16
    keys.txt        the sequences (item keys) in chunk order
    manifest.json   written last: the cache is complete
Each chunk is written atomically (temp + rename), so a killed build resumes with the chunks it finished.
In a shared folder, a new plan of pooled features copies the vectors that finished sibling plans of the same
encoder already hold and computes only the rest (a re-split store changes the set of train sequences, not
their features).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict
from pathlib import Path

import numpy as np
import torch

from engine.embed import _chunk_ok, _prepare_chunks, _save_npy
from engine.errors import OneProtError
from engine.files import write_text_atomic

MANIFEST = "manifest.json"
KEYS_FILE = "keys.txt"  # the plan's sequences (or item keys) in chunk order, one per line


class FeatureCache:
    """Read access to a finished cache: `seq in cache`, `pooled(seqs)`, `states(seqs)`."""

    def __init__(self, folder: Path, kind: str, rows: dict[str, tuple[int, int, int]], chunks: list[np.ndarray]):
        self.folder, self.kind, self.rows, self.chunks = folder, kind, rows, chunks

    def __contains__(self, sequence: str) -> bool:
        return sequence in self.rows

    def __len__(self) -> int:
        return len(self.rows)

    def pooled(self, sequences: list[str] | tuple[str, ...]) -> torch.Tensor:
        """(B, H) float32 pooled features (a 'pooled' cache)."""
        return torch.from_numpy(np.stack([self.chunks[c][o] for c, o, _ in (self.rows[s] for s in sequences)]))

    def states(self, sequences: list[str] | tuple[str, ...]) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L, H) float32 per-residue states, zero-padded, and the (B, L) residue mask (a 'states' cache)."""
        spans = [self.rows[s] for s in sequences]
        width = max((n for _, _, n in spans), default=0)
        dim = self.chunks[0].shape[1]
        out = np.zeros((len(spans), width, dim), dtype=np.float32)
        for i, (c, o, n) in enumerate(spans):
            out[i, :n] = self.chunks[c][o:o + n]
        lengths = torch.tensor([n for _, _, n in spans])
        return torch.from_numpy(out), torch.arange(width)[None, :] < lengths[:, None]


def cache_kind(encoder) -> str:
    """'pooled' when the encoder's pooling has no parameters (mean, max, mean_max), else 'states' (attention is trained)."""
    return "pooled" if not any(True for _ in encoder.pool.parameters()) else "states"


def _plan_batches(lengths: list[int], batch_residues: int, max_batch: int) -> list[list[int]]:
    """Positions (already sorted longest first) cut into batches of at most max_batch items and about
    batch_residues padded residues (the first item of a batch is its longest)."""
    batches, start = [], 0
    while start < len(lengths):
        n = max(1, min(max_batch, batch_residues // max(lengths[start], 1)))
        batches.append(list(range(start, min(start + n, len(lengths)))))
        start += n
    return batches


def build_feature_cache(encoder, sequences: list[str], folder: str | Path, progress: bool = False,
                        batch_residues: int | None = None, max_batch: int = 1024, keyed: bool = False) -> FeatureCache:
    """Compute (or finish computing) the frozen `encoder`'s features of `sequences` into `folder`; open it.

    keyed: `folder` is shared by runs (alignment seeds, recipe variants): each plan gets its own subfolder named
    by the plan's hash, so runs with the same anchor and sequences compute the features once.
    `encoder` needs `collate`, `residue_states(tokens, lengths)`, `pool`, `output_dim` and a JSON-able `config`
    with `max_length`. `batch_residues` (padded residues per batch) defaults to 2^25 / output_dim, at most
    131,072: a batch's states then take at most 128 MiB per copy (the 1900 model gets ~17,600 residues).
    """
    if batch_residues is None:
        batch_residues = min(131_072, max(4096, 2 ** 25 // getattr(encoder, "state_dim", encoder.output_dim)))
    folder = Path(folder)
    kind = cache_kind(encoder)
    cut = sorted({s.strip().upper()[: encoder.config.max_length] for s in sequences}, key=lambda s: (-len(s), s))
    digest = hashlib.sha256("\n".join(cut).encode()).hexdigest()
    batches = _plan_batches([len(s) for s in cut], batch_residues, max_batch)
    plan = {"kind": kind, "encoder": asdict(encoder.config), "sequences": len(cut), "digest": digest,
            "batches": [len(b) for b in batches]}
    if keyed:
        folder = folder / hashlib.sha256(json.dumps(plan, sort_keys=True).encode()).hexdigest()[:16]

    # pooled vectors of these sequences that finished sibling caches (other plans of the same anchor) already hold
    known = _pooled_from_siblings(folder, plan, set(cut)) if keyed and kind == "pooled" else {}

    def encode(positions: list[int]) -> torch.Tensor:
        b = encoder.collate([cut[j] for j in positions])
        states, mask = encoder.residue_states(b["tokens"].to(device), b["lengths"].to(device))
        return encoder.pool(states, mask) if kind == "pooled" else states[mask]  # row-major: residues in order

    def compute(positions: list[int]) -> torch.Tensor:
        todo = [j for j in positions if cut[j] not in known]
        if len(todo) == len(positions):
            return encode(positions)
        out = torch.empty(len(positions), encoder.output_dim)
        fresh = dict(zip(todo, encode(todo).float().cpu())) if todo else {}
        for r, j in enumerate(positions):
            out[r] = fresh[j] if j in fresh else known[cut[j]]
        return out

    device = next(encoder.parameters()).device
    sizes = [1 if kind == "pooled" else len(s) for s in cut]
    _fill_chunks(folder, plan, batches, sizes, compute, encoder.output_dim, progress, keys=cut)
    return _open_chunks(folder, cut, sizes, plan)


def _pooled_from_siblings(folder: Path, plan: dict, wanted: set[str]) -> dict[str, torch.Tensor]:
    """Pooled vectors of `wanted` sequences held by finished caches beside `folder` made by the same encoder.

    A shared anchor_cache_dir holds one subfolder per plan (set of sequences); a new plan (a re-split store,
    another subset) then computes only the sequences none of them holds. Caches written before KEYS_FILE
    existed cannot say which row is which sequence and are skipped."""
    found: dict[str, torch.Tensor] = {}
    for other in sorted(folder.parent.iterdir()) if folder.parent.is_dir() else []:
        if other == folder or not (other / MANIFEST).is_file() or not (other / KEYS_FILE).is_file():
            continue
        theirs = _read_json(other / MANIFEST)
        if not theirs or theirs.get("kind") != "pooled" or theirs.get("encoder") != plan["encoder"]:
            continue
        try:
            keys = (other / KEYS_FILE).read_text().split("\n")
            cache = _open_chunks(other, keys, [1] * len(keys), theirs)
        except (OSError, OneProtError):
            continue  # unreadable or inconsistent: compute instead
        for seq in wanted.intersection(cache.rows).difference(found):
            c, o, _ = cache.rows[seq]
            found[seq] = torch.tensor(cache.chunks[c][o], dtype=torch.float32)  # a copy: the rows are read-only
    return found


def build_item_feature_cache(encoder, items: list, folder: str | Path, progress: bool = False,
                             batch_residues: int = 2048, max_batch: int = 64) -> FeatureCache:
    """The same cache for a frozen structure-side encoder (engine/encoders/proteinmpnn.py), keyed by item hash.

    `encoder` needs `cache_entries(items)` -> (key, residues encoded, residues pooled) per item, `collate`,
    `residue_states(batch)` -> (states, pooled-residue mask), `pool`, `output_dim` and a JSON-able `config`.
    The folder is one run's own (the features take seconds to minutes, not hours)."""
    folder = Path(folder)
    kind = cache_kind(encoder)
    first: dict[str, tuple[int, int, int]] = {}
    for i, (key, encoded, pooled) in enumerate(encoder.cache_entries(items)):
        first.setdefault(key, (i, encoded, pooled))
    keys = sorted(first, key=lambda k: (-first[k][1], k))
    batches = _plan_batches([first[k][1] for k in keys], batch_residues, max_batch)
    plan = {"kind": kind, "encoder": asdict(encoder.config), "items": len(keys),
            "digest": hashlib.sha256("\n".join(keys).encode()).hexdigest(), "batches": [len(b) for b in batches]}
    device = next(encoder.parameters()).device

    def compute(positions: list[int]) -> np.ndarray:
        from engine.model import move_batch

        batch = move_batch(encoder.collate([items[first[keys[j]][0]] for j in positions]), device)
        states, mask = encoder.residue_states(batch)
        return encoder.pool(states, mask) if kind == "pooled" else states[mask]

    sizes = [1 if kind == "pooled" else first[k][2] for k in keys]
    _fill_chunks(folder, plan, batches, sizes, compute, encoder.output_dim, progress, keys=keys)
    return _open_chunks(folder, keys, sizes, plan)


def _fill_chunks(folder: Path, plan: dict, batches: list[list[int]], sizes: list[int], compute, dim: int,
                 progress: bool, keys: list[str]) -> None:
    """Compute every chunk of `plan` not already on disk (compute(positions) -> rows), then keys.txt and the manifest."""
    from tqdm.auto import tqdm

    manifest = folder / MANIFEST
    done = _read_json(manifest) if manifest.is_file() else None
    if done == plan:
        return
    if manifest.is_file():
        manifest.unlink()
    _prepare_chunks(folder, plan)  # keeps finished chunks only if they were made under this plan
    dtype = "float32" if plan["kind"] == "pooled" else "float16"
    for i, batch in enumerate(tqdm(batches, desc="feature cache", disable=not progress, dynamic_ncols=True)):
        f = folder / f"chunk_{i:05d}.npy"
        if _chunk_ok(f, sum(sizes[j] for j in batch), dim):
            continue
        with torch.no_grad():
            _save_npy(f, compute(batch).float().cpu().numpy(), dtype)
    write_text_atomic(folder / KEYS_FILE, "\n".join(keys))  # before the manifest: a finished cache says which row is which
    write_text_atomic(manifest, json.dumps(plan, indent=2))


def open_feature_cache(folder: Path, cut: list[str], plan: dict) -> FeatureCache:
    """Memory-map a finished cache whose plan is `plan` (sequences `cut`, sorted longest first)."""
    return _open_chunks(folder, cut, [1 if plan["kind"] == "pooled" else len(s) for s in cut], plan)


def _open_chunks(folder: Path, keys: list[str], sizes: list[int], plan: dict) -> FeatureCache:
    """Memory-map a finished cache: keys in chunk order, `sizes` rows each."""
    chunks, rows = [], {}
    pos = 0
    for i, n in enumerate(plan["batches"]):
        f = folder / f"chunk_{i:05d}.npy"
        try:
            arr = np.load(f, mmap_mode="r", allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise OneProtError(f"unreadable feature cache chunk ({exc}); delete the folder to rebuild it", str(f)) from None
        offset = 0
        for key, size in zip(keys[pos:pos + n], sizes[pos:pos + n]):
            rows[key] = (i, offset, size)
            offset += size
        if arr.shape[0] != offset:
            raise OneProtError(f"feature cache chunk holds {arr.shape[0]} rows, its plan says {offset}; "
                               "delete the folder to rebuild it", str(f))
        # pooled vectors are small: read them into memory; per-residue states stay memory-mapped
        chunks.append(np.asarray(arr) if plan["kind"] == "pooled" else arr)
        pos += n
    return FeatureCache(folder, plan["kind"], rows, chunks)


def _read_json(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def cached_output(encoder, keys, device):
    """The frozen encoder's EncoderOutput read from its attached feature cache, or None when any key is missing."""
    from engine.encoders.base import EncoderOutput

    cache = getattr(encoder, "feature_cache", None)
    if cache is None or keys is None or not all(k in cache for k in keys):
        return None
    if cache.kind == "pooled":
        return EncoderOutput(pooled=cache.pooled(keys).to(device))
    states, mask = cache.states(keys)
    states, mask = states.to(device), mask.to(device)
    return EncoderOutput(pooled=encoder.pool(states, mask), states=states, mask=mask)
