"""2-D UMAP maps of embeddings: seeded, cached on disk by content hash, fast on large inputs.

What makes 100k x 512 fit in about a minute on two cores:
  * PCA to 50 dimensions first (randomised SVD) when the input is large and wide;
  * the k-nearest-neighbour graph from FAISS (exact below APPROX_KNN_MIN points, IVF above)
    handed to umap-learn as `precomputed_knn`, instead of its NN-descent;
  * fewer optimisation epochs and negative samples for large n (the layout settles early when
    the graph is good);
  * PCA initialisation instead of spectral for large n (the eigensolver is the slow part).
Several modalities can be projected jointly: their vectors share one space, so one map shows them.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from engine.errors import OneProtError
from engine.files import atomic_file
from engine.paths import CACHE_DIR

PCA_MIN_POINTS = 5_000
PCA_DIMS = 50
APPROX_KNN_MIN = 20_000
LARGE_N = 50_000
CACHE_VERSION = 1


@dataclass
class Projection:
    """2-D coordinates, and for each point which modality and protein id it is."""

    coords: np.ndarray  # (N, 2) float32
    ids: list[str]
    modalities: list[str]
    params: dict = field(default_factory=dict)
    cached: bool = False  # True when read back from the cache rather than computed

    def __len__(self) -> int:
        return len(self.ids)


def project(
    vectors: np.ndarray | dict[str, np.ndarray],
    ids: list[str] | dict[str, list[str]] | None = None,
    seed: int = 0,
    n_neighbors: int = 15,
    min_dist: float = 0.1,
    n_epochs: int | None = None,
    cache_dir: str | os.PathLike | None = CACHE_DIR,
) -> Projection:
    """UMAP one array, or several modalities jointly ({modality: (N_m, D)}), to 2-D.

    `ids` follows the shape of `vectors` (a list, or a dict of lists); positions are used when omitted.
    Results are cached under `cache_dir/projections/` keyed by the vectors, ids and parameters;
    pass `cache_dir=None` to skip the cache.
    """
    x, point_ids, point_mods, params, cache_file = _plan(vectors, ids, seed, n_neighbors, min_dist, n_epochs, cache_dir)
    hit = _read_cache(cache_file, point_ids, point_mods, params)
    if hit is not None:
        return hit
    coords = _umap(x, params)
    if cache_file is not None:
        cache_file.parent.mkdir(parents=True, exist_ok=True)
        with atomic_file(cache_file) as tmp:
            np.savez(tmp, coords=coords)
    return Projection(coords, point_ids, point_mods, params)


def cached_projection(vectors: np.ndarray | dict[str, np.ndarray], ids=None, **options) -> Projection | None:
    """What `project(vectors, ids, **options)` would return if it is cached; None otherwise (no UMAP run)."""
    _, point_ids, point_mods, params, cache_file = _plan(vectors, ids, **options)
    return _read_cache(cache_file, point_ids, point_mods, params)


def _plan(vectors, ids, seed: int = 0, n_neighbors: int = 15, min_dist: float = 0.1, n_epochs: int | None = None,
          cache_dir: str | os.PathLike | None = CACHE_DIR):
    """Stacked input, resolved UMAP parameters and the cache file they map to."""
    x, point_ids, point_mods = _stack(vectors, ids)
    n = len(x)
    if n < 3:
        raise OneProtError(f"need at least 3 points to project, got {n}", "vectors")
    epochs = n_epochs if n_epochs is not None else _default_epochs(n)
    params = {
        "seed": int(seed), "n_neighbors": int(min(n_neighbors, n - 1)), "min_dist": float(min_dist),
        "n_epochs": int(epochs), "pca": int(PCA_DIMS) if _wants_pca(x) else None, "version": CACHE_VERSION,
        # fewer negative samples per edge for large n: the SGD cost scales with it (5 -> 3 measured 2.5x less CPU)
        "negative_sample_rate": 5 if n <= LARGE_N else 3,
    }
    key = _content_hash(x, point_ids, point_mods, params)
    cache_file = Path(cache_dir) / "projections" / f"{key}.npz" if cache_dir is not None else None
    return x, point_ids, point_mods, params, cache_file


def _read_cache(cache_file: Path | None, point_ids: list[str], point_mods: list[str], params: dict) -> Projection | None:
    if cache_file is None or not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as z:
            coords = z["coords"]
    except Exception:  # a damaged cache entry is recomputed, never trusted
        return None
    if coords.shape != (len(point_ids), 2):
        return None
    return Projection(coords, point_ids, point_mods, params, cached=True)


def _default_epochs(n: int) -> int:
    if n <= 10_000:
        return 500
    if n <= LARGE_N:
        return 200
    return 60  # with a good kNN graph the layout of 100k points has settled by then (cluster purity checked in umap_bench)


def _wants_pca(x: np.ndarray) -> bool:
    return len(x) >= PCA_MIN_POINTS and x.shape[1] > PCA_DIMS


def _stack(vectors, ids) -> tuple[np.ndarray, list[str], list[str]]:
    if isinstance(vectors, dict):
        if not vectors:
            raise OneProtError("no modalities given to project", "vectors")
        parts, all_ids, mods = [], [], []
        for m, v in vectors.items():
            v = np.asarray(v, dtype=np.float32)
            mids = list(ids[m]) if isinstance(ids, dict) and m in ids else [str(i) for i in range(len(v))]
            if len(mids) != len(v):
                raise OneProtError(f"{len(v)} vectors but {len(mids)} ids", str(m))
            parts.append(v)
            all_ids += mids
            mods += [str(m)] * len(v)
        dims = {p.shape[1] for p in parts}
        if len(dims) != 1:
            raise OneProtError(f"modalities have different dimensions {sorted(dims)}; they must share one space", "vectors")
        x = np.concatenate(parts)
    else:
        x = np.asarray(vectors, dtype=np.float32)
        if x.ndim != 2:
            raise OneProtError(f"expected a 2-D array, got shape {x.shape}", "vectors")
        all_ids = list(ids) if ids is not None else [str(i) for i in range(len(x))]
        if len(all_ids) != len(x):
            raise OneProtError(f"{len(x)} vectors but {len(all_ids)} ids", "ids")
        mods = [""] * len(x)
    if not np.isfinite(x).all():
        raise OneProtError("vectors contain NaN or infinity", "vectors")
    return np.ascontiguousarray(x), all_ids, mods


def _content_hash(x: np.ndarray, ids: list[str], mods: list[str], params: dict) -> str:
    h = hashlib.sha256()
    h.update(json.dumps(params, sort_keys=True).encode())
    h.update(str(x.shape).encode())
    h.update(x.tobytes())
    h.update("\n".join(ids).encode())
    h.update("\n".join(mods).encode())
    return h.hexdigest()[:32]


def _reduce(x: np.ndarray, seed: int) -> np.ndarray:
    from sklearn.decomposition import PCA

    return PCA(n_components=PCA_DIMS, svd_solver="randomized", random_state=seed).fit_transform(x).astype(np.float32)


def knn_graph(x: np.ndarray, k: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """(indices (N, k), euclidean distances (N, k)) with each point itself in column 0, as UMAP expects."""
    import faiss

    x = np.ascontiguousarray(x, dtype=np.float32)
    n, d = x.shape
    if n < APPROX_KNN_MIN:
        index = faiss.IndexFlatL2(d)
        index.add(x)
    else:
        # engine.index's IVF rule (L2: PCA-reduced points are not unit vectors); k-means is seeded, so
        # graphs repeat. Probing 1/32 of the lists (at least 8): on 100k x 50 clustered points, one
        # thread, recall@15 0.999 in 34 s (the former 1.6 sqrt(n)-list rule: 0.963 in 21 s)
        from engine.index import ivf_index

        index = ivf_index(x, inner_product=False, seed=seed)
        index.nprobe = max(8, index.nlist // 32)
    dist2, idx = index.search(x, k + 1)
    out_i = np.empty((n, k), dtype=np.int64)
    out_d = np.empty((n, k), dtype=np.float32)
    rows = np.arange(n)
    # common case, vectorised: self came back first and nothing is missing
    easy = (idx[:, 0] == rows) & (idx[:, 1:k] >= 0).all(axis=1) & (idx[:, 1:k] != rows[:, None]).all(axis=1)
    out_i[easy] = idx[easy, :k]
    out_d[easy] = np.sqrt(np.maximum(dist2[easy, :k], 0.0))
    out_d[easy, 0] = 0.0
    for r in np.flatnonzero(~easy):
        # put self first and drop it from the rest (duplicates can displace it in the raw answer)
        row, dr = idx[r], dist2[r]
        keep = (row != r) & (row >= 0)
        others, od = row[keep][: k - 1], dr[keep][: k - 1]
        if len(others) < k - 1:  # IVF may return -1 padding when probed lists are small; repeat the last neighbour
            pad = k - 1 - len(others)
            others = np.concatenate([others, np.full(pad, others[-1] if len(others) else r)])
            od = np.concatenate([od, np.full(pad, od[-1] if len(od) else 0.0)])
        out_i[r, 0], out_d[r, 0] = r, 0.0
        out_i[r, 1:], out_d[r, 1:] = others, np.sqrt(np.maximum(od, 0.0))
    return out_i, out_d


def _umap(x: np.ndarray, params: dict) -> np.ndarray:
    import umap

    seed = params["seed"]
    if params["pca"]:
        x = _reduce(x, seed)
    n = len(x)
    kwargs = dict(
        n_neighbors=params["n_neighbors"], min_dist=params["min_dist"], n_epochs=params["n_epochs"],
        random_state=seed, low_memory=True, init="pca" if n > LARGE_N else "spectral", metric="euclidean",
        negative_sample_rate=params["negative_sample_rate"],
    )
    if n >= 4096:  # below this umap-learn computes exact distances itself
        knn_i, knn_d = knn_graph(x, params["n_neighbors"], seed)
        kwargs["precomputed_knn"] = (knn_i, knn_d)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "n_jobs overridden by random_state", "no search index" are expected
        coords = umap.UMAP(**kwargs).fit_transform(x)
    return np.asarray(coords, dtype=np.float32)


def centre_modalities(vectors: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Each modality's vectors minus that modality's mean, re-normalised: closes the modality gap.

    Contrastive training leaves every modality in its own narrow cone (the "modality gap"), so a joint
    UMAP shows one island per modality joined by lines. Centring each modality keeps the directions
    within it (and the cross-modal pairing the training taught) while putting the cones on one centre.
    """
    out = {}
    for m, v in vectors.items():
        x = np.asarray(v, dtype=np.float32)
        x = x - x.mean(axis=0, keepdims=True)
        out[m] = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-8)
    return out


def modality_gap(vectors: dict[str, np.ndarray], anchor: str = "sequence") -> dict[str, dict[str, float]]:
    """Per modality: distance between its mean vector and the anchor's, and the cosine of the two means.

    The teaching number for the gap: 0 would mean the modalities share one centre; unit vectors whose
    means are ~1 apart sit in clearly separate regions of the space, whatever their pairing quality.
    """
    means = {m: np.asarray(v, dtype=np.float64).mean(axis=0) for m, v in vectors.items() if len(v)}
    if anchor not in means:
        return {}
    a = means[anchor]
    out = {}
    for m, c in means.items():
        if m == anchor:
            continue
        cos = float(a @ c / max(np.linalg.norm(a) * np.linalg.norm(c), 1e-12))
        out[m] = {"centre_distance": float(np.linalg.norm(a - c)), "centre_cosine": cos}
    return out
