"""The one Parameterized app state that every view reads and writes (one instance per session)."""

from __future__ import annotations

import html
import traceback
from contextlib import contextmanager

import param

from engine.errors import OneProtError
from engine.modality import Modality, ProteinRecord, StructureInput
from explorer.access import AllowedRoots, check_checkpoint
from explorer.backend import LABEL_CHOICES, QueryResult, Resources, get_resources, structure_from_upload
from explorer.options import AppOptions


class ExplorerState(param.Parameterized):
    """What the user is looking at: data paths, map settings, selection, focus, query and its hits."""

    data = param.String(default="demo", doc="store folder or `demo`")
    checkpoint = param.String(default="demo", doc="checkpoint folder or `demo`")
    embeddings = param.String(default="demo", doc="embeddings folder or `demo`")

    map_modalities = param.ListSelector(default=["sequence"], objects=[m.value for m in Modality],
                                        doc="modalities projected together on the map")
    color_by = param.Selector(default="family", objects=list(LABEL_CHOICES))
    link_same_protein = param.Boolean(default=False, doc="draw a line between the points of every protein "
                                      "(off: only the focused protein's points are joined, a readable highlight)")
    close_gap = param.Boolean(default=True, doc="centre each modality before a joint projection (modality gap)")

    selected_ids = param.List(default=[], doc="proteins picked on the map (box/lasso/tap)")
    focus_id = param.String(default="", doc="protein shown in the detail pane")
    query = param.ClassSelector(class_=QueryResult, default=None, allow_None=True)
    embeddings_version = param.Integer(default=0, doc="bumped when embeddings change (re-projects the map)")

    status = param.String(default="")
    error = param.String(default="")
    busy = param.Boolean(default=False)

    def __init__(self, options: AppOptions | None = None, **params):
        options = options or AppOptions()
        self.options = options
        self.roots = AllowedRoots(options.named_paths)
        params.setdefault("data", options.data)
        params.setdefault("checkpoint", options.checkpoint)
        params.setdefault("embeddings", options.embeddings)
        super().__init__(**params)

    # ---- resources -----------------------------------------------------------------------
    @property
    def resources(self) -> Resources:
        return get_resources(self.data, self.checkpoint, self.embeddings)

    @property
    def store(self):
        return self.resources.store

    def open_paths(self, data: str, checkpoint: str, embeddings: str) -> None:
        """Switch to other data typed in the page; each path must pass the allowed-folders rule."""
        with self.reporting("open"):
            d = self.roots.check(data, "data")
            c = self.roots.check(checkpoint, "checkpoint")
            check_checkpoint(self.roots, c)
            e = self.roots.check(embeddings, "embeddings")
            res = get_resources(d, c, e)
            _ = res.store, res.embeddings  # fail here, in the page, not later in a view
            self.param.update(data=d, checkpoint=c, embeddings=e, selected_ids=[], focus_id="", query=None,
                              embeddings_version=self.embeddings_version + 1)
            self.status = f"opened {len(res.store)} proteins"

    def record(self, protein_id: str) -> ProteinRecord | None:
        """The store record of a protein, or None if the id is unknown."""
        store = self.store
        return store.record(protein_id) if protein_id and protein_id in store else None

    # ---- queries -------------------------------------------------------------------------
    def query_structure_upload(self, content: bytes, filename: str, target: str, k: int,
                               read_as: str = "structure") -> QueryResult | None:
        """Embed an uploaded PDB/mmCIF (as structure, pocket or 3Di tokens) and search the target modality."""
        with self.querying("structure query"):
            max_bytes = int(self.options.max_upload_mb * 1e6)
            item, shown, chain_id = structure_from_upload(content, filename, max_bytes, read_as,
                                                          max_decompressed=int(self.options.max_decompressed_mb * 1e6))
            hits = self.resources.search(self.resources.embed(read_as, item), target, k, query_modality=read_as)
            label = f"{chain_id} as {read_as} ({len(shown.sequence)} res)"
            return self._set_query(QueryResult(label, read_as, target, hits, structure=shown,
                                               notes=_short_note(read_as, len(shown.sequence))))
        return None

    def query_protein(self, protein_id: str, modality: str, target: str, k: int) -> QueryResult | None:
        """Use a store protein's own input of `modality` as the query (embedded live by the model)."""
        with self.querying("query"):
            from engine.data.items import item_for

            store = self.store
            if protein_id not in store:
                raise OneProtError(f"no protein {protein_id!r} in the store", "protein")
            item = item_for(store, protein_id, modality)
            vec = self.resources.embed(modality, item)
            hits = self.resources.search(vec, target, k, exclude=protein_id if modality == target else None,
                                         query_modality=modality)
            coords = store.coords(protein_id)
            structure = StructureInput(store.row(protein_id)["sequence"], coords) if coords is not None else None
            result = QueryResult(f"{protein_id} as {modality}", modality, target, hits, structure=structure,
                                 query_id=protein_id)
            return self._set_query(result)
        return None

    def query_sequence(self, text: str, target: str, k: int) -> QueryResult | None:
        """Embed pasted raw/FASTA sequence with the sequence encoder and search the target modality."""
        with self.querying("sequence query"):
            from engine.query import parse_sequence

            seq = parse_sequence(text)
            first = (text or "").strip().splitlines()[0]
            label = first[1:].strip()[:60] if first.startswith(">") else "pasted sequence"
            hits = self.resources.search(self.resources.embed("sequence", seq), target, k, query_modality="sequence")
            return self._set_query(QueryResult(f"{label} ({len(seq)} aa)", "sequence", target, hits,
                                               notes=_short_note("sequence", len(seq))))
        return None

    def query_text(self, text: str, target: str, k: int) -> QueryResult | None:
        """Embed free text with the text encoder and search the target modality."""
        with self.querying("text query"):
            from engine.query import parse_text

            text = parse_text(text)
            hits = self.resources.search(self.resources.embed("text", text), target, k, query_modality="text")
            return self._set_query(QueryResult(f"“{text[:60]}”", "text", target, hits))
        return None

    def _set_query(self, result: QueryResult) -> QueryResult:
        self.query = result
        sig = ""
        if result.assessed:
            sig = f", {result.n_significant} significant" if result.n_significant else ", no significant hit"
        self.status = f"{len(result.hits)} {result.target_modality} hits{sig} for {result.label}"
        if result.hits:
            self.focus_id = result.hits[0].id
        return result

    @contextmanager
    def querying(self, what: str):
        """`reporting` for a new query: the old hits go at once, so a rejected input never stands above them."""
        with self.reporting(what):
            self.query = None
            yield

    # ---- errors --------------------------------------------------------------------------
    def reporting(self, what: str) -> "_Reporting":
        """Context manager: a OneProtError (or any bug) becomes a message in the page, never a dead session."""
        return _Reporting(self, what)

    @property
    def error_html(self) -> str:
        return f"<b>Error:</b> {html.escape(self.error)}" if self.error else ""


def _short_note(modality: str, length: int) -> list[str]:
    from engine.significance import short_query_warning

    w = short_query_warning(modality, length)
    return [w] if w else []


class _Reporting:
    def __init__(self, state: ExplorerState, what: str):
        self.state, self.what = state, what

    def __enter__(self):
        # the status says what runs now, so an older line ("Ready.", a previous result) never stands beside it
        self.before, self.was_busy = self.state.status, self.state.busy
        self.state.param.update(error="", busy=True, status=f"{self.what}: running…")
        return self

    def __exit__(self, exc_type, exc, tb):
        self.state.busy = self.was_busy  # a block run inside another (a view refreshed by a query) leaves it busy
        if exc is None:
            if self.state.status == f"{self.what}: running…":
                # nothing newer to say: the line it found comes back (a search's summary, or the enclosing
                # block's "running…"), never this block's own "running…"
                self.state.status = self.before
            return False
        self.state.status = ""  # the error says what happened; an older status line would contradict it
        if isinstance(exc, OneProtError):
            text = str(exc)
            # "training: training: ..." or "sequence query: query sequence: ..." when the error's own field
            # already names the same thing
            where = set((exc.where or "").lower().split())
            self.state.error = text if where and where <= set(self.what.split()) else f"{self.what}: {text}"
        elif isinstance(exc, Exception):
            # An unexpected bug: say so in the page and keep the session alive; log the traceback.
            traceback.print_exception(exc_type, exc, tb)
            self.state.error = f"{self.what} failed unexpectedly: {exc.__class__.__name__}: {exc}"
        else:
            return False
        return True  # swallow: the page shows the message
