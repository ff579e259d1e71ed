"""Ranked hits of the current query as a table; picking a row opens that protein in the detail pane.

Rows are coloured by significance (engine.significance: E-value from an empirical null), not by raw
cosine: green for significant hits, grey for the rest; a query with no significant hit says so.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import panel as pn
import param

from explorer.backend import HIT_COLUMNS
from explorer.state import ExplorerState

if TYPE_CHECKING:  # imported where used: the first page is drawn without pandas (explorer cold start)
    import pandas as pd

SIGNIFICANT_STYLE = "background-color: #d1e7dd"  # Bootstrap's success tint
NOT_SIGNIFICANT_STYLE = "color: #6c757d"


def _empty() -> pd.DataFrame:
    import pandas as pd

    return pd.DataFrame(columns=HIT_COLUMNS)


def row_style(row: pd.Series) -> list[str]:
    """CSS per cell of one hit row: significant rows green, the others greyed."""
    style = {"yes": SIGNIFICANT_STYLE, "no": NOT_SIGNIFICANT_STYLE}.get(row.get("significant", ""), "")
    return [style] * len(row)


def hits_title(q) -> str:
    """The HTML line above the table: counts, the no-significant-hit state and any warnings (escaped)."""
    head = (f"<b>{len(q.hits)} {html.escape(q.target_modality)} hits</b> for "
            f"<span class='query-label'>{html.escape(q.label)}</span>")
    if q.assessed:
        if q.n_significant:
            head += f" · <b class='sig-count'>{q.n_significant} significant</b> (E ≤ 0.05)"
        else:
            head += (" · <b class='no-significant' style='color:#842029'>no significant hit</b> "
                     "(no E-value ≤ 0.05: the closest proteins are no closer than chance)")
    else:
        head += " · <i>significance unavailable for these embeddings (run <code>oneprot calibrate</code>)</i>"
    for note in q.notes:
        head += f"<div class='query-warning' style='color:#664d03'>⚠ {html.escape(note)}</div>"
    return head


class HitsView(pn.viewable.Viewer):
    """Tabulator of (rank, id, E-value, significance, cosine, labels); row selection sets the focused protein."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        self.title = pn.pane.HTML("<i>No query yet: run one on the left.</i>", sizing_mode="stretch_width")
        # the table is built with the first query: the first page carries none of its models (its scripts
        # still load with the page: pn.extension("tabulator") in app.py; Panel 1.9 does not fetch them later)
        self._table: pn.widgets.Tabulator | None = None
        self._holder = pn.Column(self.title, sizing_mode="stretch_width")
        self.state.param.watch(self._on_query, "query")

    @property
    def table(self) -> pn.widgets.Tabulator:
        """The hits table (built, and put under the title, on first use)."""
        if self._table is None:
            self._table = pn.widgets.Tabulator(
                _empty(), show_index=False, selectable=1, disabled=True, height=300, sizing_mode="stretch_width",
                layout="fit_data", pagination=None, name="hits", frozen_columns=["rank", "id"],
                # the compact Bootstrap look the page's design gives a table present at first render; one added
                # later in a served session does not get it from the design
                theme="bootstrap5", theme_classes=["table-sm"],
                # neutral bars: green belongs to significant rows only (the row colour), not to every number
                formatters={"P(relative)": {"type": "progress", "min": 0, "max": 1, "legend": True,
                                            "color": "#9fb3c8"}},
            )
            self._table.style.apply(row_style, axis=1)
            self._table.param.watch(self._on_select, "selection")
            self._holder.append(self._table)
        return self._table

    def _on_query(self, event) -> None:
        q = event.new
        if q is None:
            self.title.object = "<i>No query yet: run one on the left.</i>"
            if self._table is not None:
                self._table.value = _empty()
            return
        self.title.object = hits_title(q)
        self.table.value = q.table(self.state.store)
        self.table.selection = [0] if q.hits else []

    def _on_select(self, event) -> None:
        if not event.new:
            return
        row = self.table.value.iloc[event.new[0]]
        self.state.focus_id = str(row["id"])

    def __panel__(self):
        return self._holder
