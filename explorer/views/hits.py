"""Ranked hits of the current query as a table; picking a row opens that protein in the detail pane."""

from __future__ import annotations

import html

import pandas as pd
import panel as pn
import param

from explorer.state import ExplorerState

EMPTY = pd.DataFrame(columns=["rank", "id", "score", "name", "family", "ec", "organism"])


class HitsView(pn.viewable.Viewer):
    """Tabulator of (rank, id, cosine score, labels); row selection sets the focused protein."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        self.title = pn.pane.HTML("<i>No query yet: run one on the left.</i>", sizing_mode="stretch_width")
        self.table = pn.widgets.Tabulator(
            EMPTY, show_index=False, selectable=1, disabled=True, height=300, sizing_mode="stretch_width",
            layout="fit_data_stretch", pagination=None, name="hits",
            formatters={"score": {"type": "progress", "min": -1, "max": 1, "legend": True}},
            widths={"rank": 70, "id": 110, "score": 90, "name": 220, "family": 200, "ec": 80, "organism": 160},
        )
        self.table.param.watch(self._on_select, "selection")
        self.state.param.watch(self._on_query, "query")

    def _on_query(self, event) -> None:
        q = event.new
        if q is None:
            self.title.object = "<i>No query yet: run one on the left.</i>"
            self.table.value = EMPTY
            return
        self.title.object = (
            f"<b>{len(q.hits)} {html.escape(q.target_modality)} hits</b> for "
            f"<span class='query-label'>{html.escape(q.label)}</span>"
        )
        self.table.value = q.table(self.state.store)
        self.table.selection = [0] if q.hits else []

    def _on_select(self, event) -> None:
        if not event.new:
            return
        row = self.table.value.iloc[event.new[0]]
        self.state.focus_id = str(row["id"])

    def __panel__(self):
        return pn.Column(self.title, self.table, sizing_mode="stretch_width")
