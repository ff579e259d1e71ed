"""Vector search over L2-normalised embeddings with FAISS: exact for small sets, approximate for large.

Scores are inner products of unit vectors, i.e. cosine similarities. The index kind is chosen from
the number of vectors (`choose_kind`):
    n <= EXACT_MAX        "flat"  IndexFlatIP, exact
    n <= HNSW_MAX         "hnsw"  IndexHNSWFlat (inner product), best single-query latency
    larger                "ivf"   IndexIVFFlat, cheap to build on millions of vectors
An approximate index is calibrated after it is built: its search breadth (efSearch / nprobe) is raised
until recall@10 against the exact answer on a sample of the indexed vectors reaches `target_recall`;
the measured recall is kept in `IndexInfo` and saved with the index, so a user sees what they got.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import faiss
import numpy as np

from engine.errors import OneProtError
from engine.files import atomic_file, write_text_atomic

EXACT_MAX = 50_000
HNSW_MAX = 300_000
CALIBRATION_QUERIES = 256


@dataclass
class IndexInfo:
    """What kind of index this is and how good it measured."""

    kind: str  # flat | hnsw | ivf
    n: int
    dim: int
    params: dict = field(default_factory=dict)  # e.g. {"M": 32, "efSearch": 64} or {"nlist": 1024, "nprobe": 16}
    recall_at_10: float = 1.0  # measured against exact search; 1.0 for flat
    build_seconds: float = 0.0


def choose_kind(n: int) -> str:
    """The index kind `build_index(kind="auto")` uses for n vectors."""
    if n <= EXACT_MAX:
        return "flat"
    if n <= HNSW_MAX:
        return "hnsw"
    return "ivf"


def normalise(x: np.ndarray) -> np.ndarray:
    """Rows scaled to unit length, as float32 C-contiguous (what FAISS wants)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.ndim == 1:
        x = x[None, :]
    norms = np.linalg.norm(x, axis=1, keepdims=True)
    return np.ascontiguousarray(x / np.maximum(norms, 1e-12), dtype=np.float32)


class VectorIndex:
    """A FAISS index plus what it measured. Build with `build_index`, reopen with `VectorIndex.load`."""

    def __init__(self, index: faiss.Index, info: IndexInfo):
        self.index = index
        self.info = info
        self._apply_params()

    def __len__(self) -> int:
        return self.info.n

    @property
    def dim(self) -> int:
        return self.info.dim

    def _apply_params(self) -> None:
        if self.info.kind == "hnsw":
            self.index.hnsw.efSearch = int(self.info.params.get("efSearch", 64))
        elif self.info.kind == "ivf":
            self.index.nprobe = int(self.info.params.get("nprobe", 8))

    def search(self, queries: np.ndarray, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Top-k (scores (Q, k), positions (Q, k)); positions are -1 where fewer than k exist."""
        q = normalise(queries)
        if q.shape[1] != self.dim:
            raise OneProtError(f"query has dimension {q.shape[1]}, the index holds {self.dim}-d vectors", "query")
        k = max(1, min(int(k), self.info.n))
        scores, idx = self.index.search(q, k)
        return scores, idx

    # ---- persistence ---------------------------------------------------------------------
    def save(self, path: str | os.PathLike) -> Path:
        """Write `<path>` (FAISS binary) and `<path>.json` (IndexInfo), each atomically."""
        path = Path(path)
        with atomic_file(path) as tmp:
            faiss.write_index(self.index, str(tmp))
        write_text_atomic(path.with_name(path.name + ".json"), json.dumps(asdict(self.info), indent=2))
        return path

    @classmethod
    def load(cls, path: str | os.PathLike) -> "VectorIndex":
        path = Path(path)
        meta = path.with_name(path.name + ".json")
        if not path.is_file() or not meta.is_file():
            raise OneProtError("index file or its .json metadata is missing", str(path))
        try:
            info = IndexInfo(**json.loads(meta.read_text()))
            index = faiss.read_index(str(path))
        except Exception as exc:  # faiss raises RuntimeError on garbage; json/TypeError on bad metadata
            raise OneProtError(f"corrupted index: {exc}", str(path)) from None
        if index.ntotal != info.n or index.d != info.dim:
            raise OneProtError(
                f"index holds {index.ntotal} x {index.d}, its metadata says {info.n} x {info.dim}", str(path)
            )
        return cls(index, info)


def exact_search(vectors: np.ndarray, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Exact top-k inner-product search (the reference every approximate index is measured against)."""
    flat = faiss.IndexFlatIP(vectors.shape[1])
    flat.add(vectors)
    return flat.search(normalise(queries), k)


def recall_at_k(approx: np.ndarray, exact: np.ndarray, k: int = 10) -> float:
    """Mean fraction of the exact top-k positions that the approximate top-k also returns."""
    hits = [len(set(a[:k].tolist()) & set(e[:k].tolist())) for a, e in zip(approx, exact)]
    return float(np.mean(hits) / k)


def build_index(
    vectors: np.ndarray,
    kind: str = "auto",
    target_recall: float = 0.95,
    seed: int = 0,
    hnsw_m: int = 32,
    nlist: int | None = None,
    queries: np.ndarray | None = None,
) -> VectorIndex:
    """Index unit vectors; an approximate kind is calibrated to `target_recall` (recall@10 vs exact).

    `queries`: vectors like the ones the index will be asked about (e.g. other modalities' vectors
    for cross-modal search); without them a sample of the indexed vectors is used.
    """
    x = normalise(vectors)
    n, dim = x.shape
    if n == 0:
        raise OneProtError("nothing to index (0 vectors)", "vectors")
    kind = choose_kind(n) if kind == "auto" else kind
    t0 = time.perf_counter()
    if kind == "flat":
        index = faiss.IndexFlatIP(dim)
        index.add(x)
        return VectorIndex(index, IndexInfo("flat", n, dim, {}, 1.0, time.perf_counter() - t0))
    if kind == "hnsw":
        index = faiss.IndexHNSWFlat(dim, hnsw_m, faiss.METRIC_INNER_PRODUCT)
        index.add(x)
        params = {"M": hnsw_m, "efConstruction": int(index.hnsw.efConstruction)}
        sweep_key, sweep = "efSearch", [16, 32, 64, 128, 256, 512, 1024]
    elif kind == "ivf":
        index = ivf_index(x, inner_product=True, seed=seed, nlist=nlist)
        nlist = int(index.nlist)
        params = {"nlist": nlist}
        sweep_key, sweep = "nprobe", [p for p in (1, 2, 4, 8, 12, 16, 24, 32, 48, 64, 128, 256, 512) if p <= nlist]
    else:
        raise OneProtError(f"unknown index kind {kind!r}; choose one of: auto, flat, hnsw, ivf", "kind")
    info = IndexInfo(kind, n, dim, params, 0.0, 0.0)
    result = VectorIndex(index, info)
    _calibrate(result, x, sweep_key, sweep, target_recall, seed, None if queries is None else normalise(queries))
    info.build_seconds = time.perf_counter() - t0
    return result


def ivf_lists(n: int) -> int:
    """The number of IVF lists for n vectors: ~sqrt(n) as a power of two in [16, 65536], which keeps both
    the k-means training and the per-query scan small."""
    return int(min(65536, max(16, 2 ** round(np.log2(np.sqrt(max(n, 1)))))))


def ivf_index(x: np.ndarray, inner_product: bool, seed: int = 0, nlist: int | None = None) -> faiss.IndexIVFFlat:
    """The one IVF rule: ivf_lists(n) lists, k-means seeded and trained on a sample of 64 points per list,
    every vector of `x` added. Inner product for unit vectors (search), L2 otherwise (the UMAP graph)."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, dim = x.shape
    nlist = nlist or ivf_lists(n)
    if inner_product:
        index = faiss.IndexIVFFlat(faiss.IndexFlatIP(dim), dim, nlist, faiss.METRIC_INNER_PRODUCT)
    else:
        index = faiss.IndexIVFFlat(faiss.IndexFlatL2(dim), dim, nlist)
    sample = x[np.random.default_rng(seed).choice(n, size=min(n, nlist * 64), replace=False)]
    index.cp.seed = seed
    index.train(sample)
    index.add(x)
    return index


def _calibrate(
    index: VectorIndex, x: np.ndarray, key: str, sweep: list[int], target: float, seed: int,
    queries: np.ndarray | None = None,
) -> None:
    """Raise the search breadth until recall@10 on calibration queries reaches `target`.

    Without given queries, indexed vectors are used and the query itself is dropped from both
    answers: otherwise every query trivially finds itself and the measured recall flatters the index.
    """
    rng = np.random.default_rng(seed + 1)
    n = len(x)
    if queries is not None:
        q = queries[rng.choice(len(queries), size=min(len(queries), CALIBRATION_QUERIES), replace=False)]
        k = min(10, n)
        _, exact = exact_search(x, q, k)
        fix = lambda a: a  # noqa: E731
    else:
        qi = rng.choice(n, size=min(n, CALIBRATION_QUERIES), replace=False)
        q = x[qi]
        k = min(11, n)
        _, exact = exact_search(x, q, k)
        exact = _drop_self(exact, qi)
        fix = lambda a: _drop_self(a, qi)  # noqa: E731
    recall = 0.0
    for value in sweep:
        index.info.params[key] = value
        index._apply_params()
        _, approx = index.index.search(q, k)
        recall = recall_at_k(fix(approx), exact, exact.shape[1])
        if recall >= target:
            break
    index.info.recall_at_10 = round(recall, 4)


def _drop_self(idx: np.ndarray, self_pos: np.ndarray) -> np.ndarray:
    out = np.empty((idx.shape[0], idx.shape[1] - 1), dtype=idx.dtype)
    for r, (row, s) in enumerate(zip(idx, self_pos)):
        kept = row[row != s]
        out[r] = kept[: out.shape[1]] if len(kept) >= out.shape[1] else np.pad(kept, (0, out.shape[1] - len(kept)), constant_values=-1)
    return out
