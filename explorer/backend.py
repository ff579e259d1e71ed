"""The explorer's only doorway into the engine: shared, lazily loaded, thread-safe resources.

Every session of a served app shares one `Resources` per (store, checkpoint, embeddings) triple, so 20
browser tabs cost one store, one model and one set of indexes. Heavy imports (torch, faiss, umap)
happen on first use, not at page load, which keeps cold start short.
"""

from __future__ import annotations

import contextlib
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from engine.errors import OneProtError
from engine.modality import Modality, StructureInput, parse_modality
from engine.query import Hit, search

if TYPE_CHECKING:  # pandas is imported where a table is made: the first page draws without it (cold start)
    import pandas as pd

LABEL_CHOICES = ("family", "ec", "organism", "ligand", "source", "split", "modality")
_RESOURCES: dict[tuple[str, str, str], "Resources"] = {}
_RESOURCES_LOCK = threading.Lock()


@dataclass
class QueryResult:
    """A query and its ranked hits in one target modality."""

    label: str  # what the user asked, for display
    query_modality: str
    target_modality: str
    hits: list[Hit]
    structure: StructureInput | None = None  # the query's own backbone, for the 3D view
    query_id: str | None = None  # set when the query is a protein of the store
    notes: list[str] = field(default_factory=list)  # warnings shown beside the hits (e.g. a very short query)

    @property
    def assessed(self) -> bool:
        """Whether the hits carry significance (the embeddings have a current significance table)."""
        return any(h.evalue is not None for h in self.hits)

    @property
    def n_significant(self) -> int:
        return sum(bool(h.significant) for h in self.hits)

    def table(self, store) -> pd.DataFrame:
        """Hits as a display table (rank, id, E-value, significance, score, name, family, ...)."""
        import pandas as pd

        rows = []
        for h in self.hits:
            r = store.row(h.id) if h.id in store else None
            rows.append({
                "rank": h.rank, "id": h.id,
                "E-value": None if h.evalue is None else float(f"{h.evalue:.2g}"),
                "significant": "" if h.significant is None else ("yes" if h.significant else "no"),
                "P(relative)": h.probability, "score": round(h.score, 4),
                "name": _label(r, "name")[:80], "family": _label(r, "family"), "ec": _label(r, "ec"),
                "organism": _label(r, "organism")[:40],
            })
        return pd.DataFrame(rows, columns=HIT_COLUMNS)


HIT_COLUMNS = ["rank", "id", "E-value", "significant", "P(relative)", "score", "name", "family", "ec", "organism"]


def _label(row, column: str) -> str:
    """A store field as display text: '' for a missing row or value (never the string 'nan')."""
    from engine.data.store import missing_to_none

    value = None if row is None else missing_to_none(row[column])
    return "" if value is None else str(value)


class Resources:
    """Store, embeddings, model and per-modality search indexes behind one lock each."""

    def __init__(self, data: str, checkpoint: str, embeddings: str):
        self.data, self.checkpoint_path, self.embeddings_path = data, checkpoint, embeddings
        self._lock = threading.RLock()
        self._model_load_lock = threading.Lock()
        self._model_lock = threading.Lock()  # one forward pass at a time: torch on 2 cores gains nothing from more
        self._store = None
        self._embeddings = None
        self._model = None
        self._checked = False  # model/embeddings compatibility verified
        self._background: threading.Thread | None = None
        self.model_error: str | None = None  # why the background load failed, for the page

    # ---- loads ---------------------------------------------------------------------------
    @property
    def store(self):
        with self._lock:
            if self._store is None:
                from engine.data.store import ProteinStore

                self._store = ProteinStore.open(self.data)
            return self._store

    @property
    def embeddings(self):
        with self._lock:
            if self._embeddings is None:
                from engine.embed import EmbeddingSet

                self._embeddings = EmbeddingSet.open(_resolve_embeddings(self.embeddings_path))
            return self._embeddings

    @property
    def model(self):
        # A lock of its own: reading the checkpoint takes seconds and must not hold up the store,
        # the embeddings or the map of pages that do not need the model yet.
        if self._model is None:
            with self._model_load_lock:
                if self._model is None:
                    from engine.checkpoint import load_checkpoint

                    model = load_checkpoint(self.checkpoint_path)
                    model.eval()
                    with self._lock:
                        if self._model is None:  # set_model may have swapped one in meanwhile
                            self._model = model
                            self._checked = False
        return self._model

    @property
    def store_loaded(self) -> bool:
        return self._store is not None

    @property
    def model_loaded(self) -> bool:
        return self._model is not None

    @property
    def model_ready(self) -> bool:
        """The model and every part it defers (the text backbone) are in memory."""
        model = self._model
        return model is not None and all(getattr(e, "loaded", True) for e in model.encoders.values())

    def load_model_in_background(self) -> None:
        """Start reading the model (then its text backbone) in a thread, once per Resources."""
        with self._lock:
            if self._background is not None or self.model_ready:
                return

            def work() -> None:
                try:
                    # the text backbone last: structure and sequence queries can run while it is read
                    self.model.ensure_loaded()
                except Exception as exc:  # a query that needs the model reports it again, in its page
                    self.model_error = str(getattr(exc, "message", exc))
                    print(f"explorer: model load failed: {exc}")

            self._background = threading.Thread(target=work, name="explorer-model-load", daemon=True)
            self._background.start()

    def set_model(self, model) -> None:
        """Swap in a freshly trained or loaded model; indexes stay (they hold stored embeddings)."""
        with self._lock:
            model.eval()
            self._model = model
            self._checked = False

    def set_embeddings(self, embeddings) -> None:
        """Swap the embedding set (after re-embedding with a new model); indexes are rebuilt lazily."""
        with self._lock:
            self._embeddings = embeddings
            self._checked = False

    def modalities(self) -> list[str]:
        """Modalities the embedding set holds, sequence first."""
        mods = [str(m) for m in self.embeddings.modalities]
        return sorted(mods, key=lambda m: [x.value for x in Modality].index(m) if m in [x.value for x in Modality] else 99)

    def index_for(self, modality: str):
        """The search index of one modality's stored embeddings (engine.embed: saved, or exact built once)."""
        m = str(parse_modality(modality))
        with self._lock:  # EmbeddingSet caches without a lock; build each index once across sessions
            if m not in self.modalities():
                raise OneProtError(f"the embeddings hold no {m!r} vectors; have: {', '.join(self.modalities())}", "target")
            return self.embeddings.index(m)

    def stored_vector(self, modality: str, protein_id: str) -> np.ndarray | None:
        """The stored embedding of one protein in one modality, or None if it lacks it."""
        m = str(parse_modality(modality))
        with self._lock:
            try:
                return self.embeddings.vector(m, protein_id)
            except OneProtError:
                return None

    def check_compatible(self) -> None:
        """Refuse a model whose embeddings space differs from the stored embeddings (different model)."""
        from engine.embed import model_identity

        model = self.model
        with self._lock:
            if not self._checked:
                self.embeddings.check_model(model_identity(model), model.config.dim, where="checkpoint")
                self._checked = True

    @contextlib.contextmanager
    def using_model(self):
        """The shared model, held exclusively for a batch of forward passes."""
        model = self.model
        with self._model_lock:
            yield model

    # ---- queries -------------------------------------------------------------------------
    def embed(self, modality: str, item) -> np.ndarray:
        """Embed one raw item with the loaded model -> (D,) unit vector."""
        model = self.model
        self.check_compatible()
        with self._model_lock:
            vec = model.embed(str(parse_modality(modality)), [item])
        return np.asarray(vec, dtype=np.float32)[0]

    def relatives_found(self, query_modality: str, target_modality: str) -> float | None:
        """How often this pair's search calls a relative from another cluster significant (engine.significance)."""
        from engine.significance import relatives_found

        return relatives_found(self.embeddings, query_modality, target_modality)

    def search(self, vector: np.ndarray, target: str, k: int, exclude: str | None = None,
               query_modality: str | None = None) -> list[Hit]:
        """Top-k stored proteins of the target modality nearest to `vector` (cosine), with their significance
        when the query's modality is given and the embeddings have a table: engine.query.search."""
        self.index_for(target)  # built once, under the lock, before the engine reads it
        return search(self.embeddings, vector, target, int(k), exclude, labels=False, query_modality=query_modality)


def get_resources(data: str, checkpoint: str, embeddings: str) -> Resources:
    """The shared Resources for this triple of paths (created on first request)."""
    key = (str(data), str(checkpoint), str(embeddings))
    with _RESOURCES_LOCK:
        if key not in _RESOURCES:
            _RESOURCES[key] = Resources(*key)
        return _RESOURCES[key]


def _resolve_embeddings(name: str) -> Path:
    from engine.paths import resolve_embeddings

    return resolve_embeddings(name)


def structure_from_upload(content: bytes, filename: str, max_bytes: int, modality: str = "structure",
                          max_decompressed: int = 50_000_000) -> tuple[object, StructureInput, str]:
    """An uploaded PDB/mmCIF -> (query item for `modality`, its backbone for display, chain id).

    Size-limited twice: the upload itself (max_bytes) and, for .gz, what it expands to (max_decompressed),
    read in chunks so a small gzip bomb stops at the limit instead of filling memory or disk.
    """
    import tempfile

    from engine.data.structure import is_structure_path
    from engine.query import read_structure_query

    name = Path(filename or "upload.pdb").name
    if not content:
        raise OneProtError("the uploaded file is empty", name)
    if len(content) > max_bytes:
        raise OneProtError(f"file is {len(content) / 1e6:.1f} MB, above the {max_bytes / 1e6:g} MB upload limit", name)
    if not is_structure_path(Path(name)):
        raise OneProtError("expected a .pdb, .ent, .cif or .mmcif file (optionally .gz)", name)
    if name.lower().endswith(".gz"):
        content = _gunzip_limited(content, max_decompressed, name)
        name = name[:-3]
    with tempfile.TemporaryDirectory(prefix="oneprot-upload-") as tmp:
        path = Path(tmp) / name
        path.write_bytes(content)
        try:
            chain_id, shown = read_structure_query(path, "structure")
            item = shown if str(modality) == "structure" else read_structure_query(path, modality)[1]
        except OneProtError as exc:  # name the upload, not the temporary path
            raise OneProtError(exc.message, name) from None
    return item, shown, chain_id


def _gunzip_limited(content: bytes, limit: int, name: str) -> bytes:
    """Decompress gzip bytes, refusing (OneProtError) once the output passes `limit` bytes."""
    import gzip
    import io
    import zlib

    out = bytearray()
    try:
        with gzip.GzipFile(fileobj=io.BytesIO(content)) as fh:
            while chunk := fh.read(1 << 20):
                out += chunk
                if len(out) > limit:
                    raise OneProtError(f"decompresses to more than {limit / 1e6:g} MB (the limit for an "
                                       "uploaded .gz); upload a smaller file", name)
    except (OSError, EOFError, zlib.error) as exc:
        raise OneProtError(f"not a readable gzip file: {exc}", name) from None
    return bytes(out)
