"""Query panel: by structure (upload or pick a stored protein), by sequence (raw/FASTA) or by text."""

from __future__ import annotations

import panel as pn
import param

from engine.modality import Modality
from engine.query import MAX_QUERY_RESIDUES, MAX_QUERY_TEXT
from explorer.state import ExplorerState

STRUCTURE_READ_AS = ["structure", "pocket", "structure_tokens"]
PICK_AS = [m.value for m in Modality]
MAX_PICK_OPTIONS = 20_000  # an autocomplete ships its options to the browser; beyond this, type the id
# The browser must pass over-long input through, so the server refuses it naming the limit; Panel's
# default (5,000 characters) cut a 10,000-residue paste silently to 5,000.
SEQUENCE_BOX_CHARS = 4 * MAX_QUERY_RESIDUES + 10_000
TEXT_BOX_CHARS = 2 * MAX_QUERY_TEXT


class QueryView(pn.viewable.Viewer):
    """Widgets that build a query and hand it to the state; errors appear in the page."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        mods = [m.value for m in Modality]
        self.target = pn.widgets.Select(name="Search in modality", options=mods, value="sequence", width=170)
        self.k = pn.widgets.IntInput(name="Hits (k)", value=10, start=1, end=200, width=90)

        mb = s.options.max_upload_mb
        # The size limit is enforced on the server (explorer.backend.structure_from_upload) with a message
        # in the page; Bokeh's websocket caps any message at 20 MB before that.
        self.upload = pn.widgets.FileInput(accept=".pdb,.ent,.cif,.mmcif,.gz", multiple=False, sizing_mode="stretch_width")
        self.read_as = pn.widgets.Select(name="Read upload as", options=STRUCTURE_READ_AS, value="structure", width=150)
        self.upload_button = pn.widgets.Button(name="Search with upload", button_type="primary")
        self.upload_button.on_click(self._run_upload)

        self.pick = pn.widgets.AutocompleteInput(name="Or pick a stored protein", placeholder="type an id, e.g. 1ldm",
                                                 min_characters=1, case_sensitive=False, search_strategy="includes",
                                                 restrict=False, sizing_mode="stretch_width")
        self.pick_as = pn.widgets.Select(name="Use its", options=PICK_AS, value="structure", width=150)
        self.pick_button = pn.widgets.Button(name="Search with stored protein", button_type="primary")
        self.pick_button.on_click(self._run_pick)
        self._filling = False  # True while refresh_options sets a default pick (that must not run a query)
        self.pick.param.watch(self._on_pick, "value")
        s.param.watch(self._show_query, "query")

        self.sequence = pn.widgets.TextAreaInput(name=f"Sequence (raw or FASTA, up to {MAX_QUERY_RESIDUES:,} residues)",
                                                 height=110, sizing_mode="stretch_width", max_length=SEQUENCE_BOX_CHARS,
                                                 placeholder=">my protein\nMKTAYIAKQRQISFVKSHFSRQ...")
        self.sequence_button = pn.widgets.Button(name="Search with sequence", button_type="primary")
        self.sequence_button.on_click(self._run_sequence)

        self.text = pn.widgets.TextAreaInput(name="Description", height=90, sizing_mode="stretch_width",
                                             max_length=TEXT_BOX_CHARS,
                                             placeholder="e.g. L-lactate dehydrogenase, NAD binding")
        self.text_button = pn.widgets.Button(name="Search with text", button_type="primary")
        self.text_button.on_click(self._run_text)
        self.limit_note = pn.pane.HTML(f"PDB/mmCIF up to {mb:g} MB; first protein chain is used.",
                                       styles={"font-size": "12px", "color": "#666"})

    def refresh_options(self) -> None:
        """Fill the pick list and target choices from the loaded store/embeddings."""
        s = self.state
        with s.reporting("query setup"):
            res = s.resources
            ids = res.store.ids()
            # the pick list offers proteins with a structure (the usual query); any id can still be typed
            with_structure = res.store.ids(modality="structure")
            offer = with_structure or ids
            self.pick.options = offer if len(offer) <= MAX_PICK_OPTIONS else offer[:MAX_PICK_OPTIONS]
            have = res.modalities()
            self.target.options = have
            if self.target.value not in have:
                self.target.value = have[0]
            if self.pick.value == "" and ids:
                self._filling = True
                try:
                    self.pick.value = with_structure[0] if with_structure else ids[0]
                finally:
                    self._filling = False

    # ---- actions ---------------------------------------------------------------------------
    def _busy(self, button: pn.widgets.Button, fn, *args) -> None:
        """Show that the search runs (and whether it waits for the model) before running it.

        Served, the work runs on the next tick, so the browser receives this status first: set and run in
        one callback, the page kept saying "Ready." until the results came (6 s while the model loaded).
        """
        button.loading = True
        wait = "" if self.state.resources.model_ready else " (waiting for the model to finish loading)"
        self.state.param.update(error="", status=f"searching{wait}…")

        def work() -> None:
            try:
                fn(*args)
            finally:
                button.loading = False

        doc = pn.state.curdoc
        if doc is not None and doc.session_context is not None:
            pn.state.execute(work, schedule=True)
        else:  # not served (tests, notebooks): nothing to flush first
            work()

    def _show_query(self, event) -> None:
        """The form follows the query shown, wherever it came from (a URL, "Query with this protein"): a box
        still holding the first stored id beside another protein's hits would search that id on the next click."""
        q = event.new
        if q is None:
            return
        self._filling = True
        try:
            if q.query_id:
                self.pick.param.update(value=q.query_id, value_input=q.query_id)
                if q.query_modality in self.pick_as.options:
                    self.pick_as.value = q.query_modality
            if q.target_modality in self.target.options:
                self.target.value = q.target_modality
        finally:
            self._filling = False

    def _on_pick(self, event) -> None:
        # Picking (or typing + Enter) a stored protein searches at once, with the id of this event: reading
        # the widget again could see an older value (three quick searches once ran on the previous id).
        if not self._filling and event.new and event.new != event.old:
            self._run_pick(protein_id=event.new)

    def _run_upload(self, _=None) -> None:
        if self.upload.value is None:
            self.state.error = "structure query: choose a PDB or mmCIF file first"
            return
        self._busy(self.upload_button, self.state.query_structure_upload, self.upload.value, self.upload.filename,
                   self.target.value, self.k.value, self.read_as.value)

    def _run_pick(self, _=None, protein_id: str | None = None) -> None:
        # the button: what is typed in the box now (value_input), else the last picked value
        pid = (protein_id or self.pick.value_input or self.pick.value or "").strip()
        if not pid:
            self.state.error = "query: type or pick a protein id"
            return
        self._busy(self.pick_button, self.state.query_protein, pid, self.pick_as.value, self.target.value, self.k.value)

    def _run_sequence(self, _=None) -> None:
        self._busy(self.sequence_button, self.state.query_sequence, self.sequence.value_input or self.sequence.value,
                   self.target.value, self.k.value)

    def _run_text(self, _=None) -> None:
        self._busy(self.text_button, self.state.query_text, self.text.value_input or self.text.value,
                   self.target.value, self.k.value)

    def __panel__(self):
        structure = pn.Column(
            self.pick, self.pick_as, self.pick_button, pn.layout.Divider(),
            self.upload, self.limit_note, self.read_as, self.upload_button, sizing_mode="stretch_width")
        tabs = pn.Tabs(("Structure", structure), ("Sequence", pn.Column(self.sequence, self.sequence_button)),
                       ("Text", pn.Column(self.text, self.text_button)), sizing_mode="stretch_width",
                       dynamic=True)  # a tab's widgets are built when it is first shown, not with the page
        return pn.Column(pn.Row(self.target, self.k), tabs, sizing_mode="stretch_width")
