"""Detail pane of the focused protein: 3D view (with the query superposed), labels, text, sequence, pockets."""

from __future__ import annotations

import html

import panel as pn
import param

from engine.modality import ProteinRecord
from explorer.state import ExplorerState
from explorer.views.structure import HIT_COLOUR, QUERY_COLOUR, MolViewer, molecule_dict, query_and_hit

TEXT_CHARS = 1500


def record_html(rec: ProteinRecord, modalities: list[str]) -> str:
    """Labels, text and sequence of a record as HTML; every user-derived string is escaped."""
    e = html.escape
    rows = [("family", rec.family), ("EC", rec.ec), ("organism", rec.organism), ("source", rec.source),
            ("split", rec.extra.get("split")), ("length", f"{len(rec.sequence)} aa"),
            ("modalities", ", ".join(modalities))]
    table = "".join(f"<tr><th>{e(k)}</th><td>{e(str(v)) if v else '—'}</td></tr>" for k, v in rows)
    pocket_res = set()
    pockets = []
    for k, p in enumerate(rec.pockets):
        label = p.ligand_code or p.source or "pocket"
        name = f" ({e(p.ligand_name.lower())})" if p.ligand_name else ""
        pockets.append(f"<li>{e(label)}{name}: {len(p.residues)} residues</li>")
        if k == 0:
            pocket_res = set(p.residues)
    seq = "".join(f"<mark>{e(c)}</mark>" if i in pocket_res else e(c) for i, c in enumerate(rec.sequence))
    text = rec.text.strip()
    if len(text) > TEXT_CHARS:
        text = text[:TEXT_CHARS] + "…"
    return (
        f"<h3 class='detail-title'>{e(rec.id)} <small>{e(rec.name)}</small></h3>"
        f"<table class='detail-labels'>{table}</table>"
        + (f"<p class='detail-text'>{e(text)}</p>" if text else "")
        + (f"<div><b>Pockets</b> (first one marked in the sequence, red in 3D)<ul>{''.join(pockets)}</ul></div>" if pockets else "")
        + f"<div class='detail-seq'>{seq}</div>"
    )


DETAIL_CSS = """
.detail-labels th { text-align: left; padding-right: 10px; color: #555; font-weight: 600; }
.detail-seq { font-family: monospace; font-size: 12px; word-break: break-all; line-height: 1.4;
              max-height: 160px; overflow-y: auto; background: #fafafa; padding: 6px; border-radius: 4px; }
.detail-seq mark { background: #f4b6b6; }
.detail-text { font-size: 13px; max-height: 140px; overflow-y: auto; }
"""


class DetailView(pn.viewable.Viewer):
    """Follows `state.focus_id`; shows query (blue) and hit (orange) fitted together when a query has a structure."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        self.viewer = MolViewer(message="Select a protein on the map or a hit to see its structure.",
                                height=380, sizing_mode="stretch_width")
        self.caption = pn.pane.HTML("", styles={"font-size": "12px", "color": "#444"}, sizing_mode="stretch_width")
        self.superpose = pn.widgets.Checkbox(name="Superpose hit on query (TM-align on CA)", value=True)
        self.info = pn.pane.HTML("", sizing_mode="stretch_width", stylesheets=[DETAIL_CSS])
        self.show_all = pn.widgets.Button(name="Show its points in every modality", button_type="light")
        self.show_all.on_click(self._show_everywhere)
        self.query_with = pn.widgets.Button(name="Query with this protein", button_type="light")
        self.query_with.on_click(self._query_with)
        self._buttons = pn.Row(self.show_all, self.query_with)
        self.state.param.watch(self.update, ["focus_id", "query"])
        self.superpose.param.watch(self.update, "value")
        # the page starts with this line only: the 3D viewer, buttons and labels join it with the first
        # protein shown (fewer models to build and draw at cold start)
        self._holder = pn.Column(pn.pane.HTML(f"<i>{html.escape(self.viewer.message)}</i>"),
                                 sizing_mode="stretch_width")

    def update(self, *_) -> None:
        """Redraw for the current focus and query."""
        s = self.state
        with s.reporting("detail"):
            rec = s.record(s.focus_id)
            if rec is None:
                self.viewer.molecules, self.info.object, self.caption.object = [], "", ""
                return
            present = [m for m in s.resources.modalities() if s.resources.stored_vector(m, rec.id) is not None]
            self.info.object = record_html(rec, present)
            q = s.query
            query_rec = None
            if q is not None and q.structure is not None and q.query_id != rec.id and rec.id in [h.id for h in q.hits]:
                query_rec = ProteinRecord(id=q.query_id or "query", sequence=q.structure.sequence,
                                          coords=q.structure.coords)
                if q.query_id and q.query_id in s.store:
                    query_rec = s.store.record(q.query_id)
            # the superposition switch only where there is something to superpose: a hit with a structure
            # beside a query with one
            self.superpose.visible = query_rec is not None and rec.coords is not None
            if rec.coords is None and query_rec is None:
                # no 3D box at all (it stood 380 px high and empty): the note, the buttons and the labels
                self.viewer.molecules = []
                self.caption.object = f"<i>{html.escape(rec.id)} has no structure in this store.</i>"
                self._show_parts(with_viewer=False)
                return
            self._show_parts(with_viewer=True)
            if query_rec is not None:
                mols, fit = query_and_hit(query_rec, rec if rec.coords is not None else None, self.superpose.value)
                legend = (f"<span style='color:{QUERY_COLOUR}'>■</span> query {html.escape(q.label)} &nbsp; "
                          f"<span style='color:{HIT_COLOUR}'>■</span> hit {html.escape(rec.id)}")
                self.caption.object = legend + (f"<br>{html.escape(fit)}" if fit else "")
            else:
                mols = [molecule_dict(rec, HIT_COLOUR)]
                self.caption.object = f"<span style='color:{HIT_COLOUR}'>■</span> {html.escape(rec.id)}" + (
                    " · pocket residues red, ligand green" if rec.pockets else "")
            self.viewer.molecules = mols

    def _show_parts(self, with_viewer: bool) -> None:
        """The pane's parts for a shown protein, the 3D viewer among them only when there is a structure."""
        parts = [self.caption, self.superpose, self._buttons, self.info]
        parts = [self.viewer, *parts] if with_viewer else parts
        if self._holder.objects != parts:
            self._holder.objects = parts

    def _show_everywhere(self, _=None) -> None:
        s = self.state
        with s.reporting("map"):
            if not s.focus_id:
                return
            mods = [m for m in s.resources.modalities() if s.resources.stored_vector(m, s.focus_id) is not None]
            s.map_modalities = mods

    def _query_with(self, _=None) -> None:
        s = self.state
        if not s.focus_id:
            return
        rec = s.record(s.focus_id)
        use = "structure" if rec is not None and rec.coords is not None else "sequence"
        target = s.query.target_modality if s.query is not None else "sequence"
        s.query_protein(s.focus_id, use, target, 10)

    def __panel__(self):
        return self._holder
