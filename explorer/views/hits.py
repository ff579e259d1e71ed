"""Ranked hits of the current query as a table; picking a row opens that protein in the detail pane.

Rows are coloured by significance (engine.significance: E-value from an empirical null), not by raw
cosine: green for significant hits, grey for the rest; a query with no significant hit says so.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING

import panel as pn
import param

from engine.significance import power_note
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


NO_HITS = "<i>No hits shown: run a query on the left.</i>"
SELECTED_ROW_CSS = (".tabulator-row.tabulator-selected .tabulator-cell "
                    "{ background-color: #084298 !important; color: #fff !important; }")


def hits_title(q, probability_shown: bool = True, relatives_found: float | None = None) -> str:
    """The HTML line above the table: counts, the no-significant-hit state and any warnings (escaped)."""
    head = (f"<b>{len(q.hits)} {html.escape(q.target_modality)} hits</b> for "
            f"<span class='query-label'>{html.escape(q.label)}</span>")
    if q.assessed:
        if q.n_significant:
            head += f" · <b class='sig-count'>{q.n_significant} significant</b> (E ≤ 0.05)"
        else:
            head += (" · <b class='no-significant' style='color:#842029'>no significant hit</b> "
                     "(no E-value ≤ 0.05: unrelated proteins often score this close to queries like this one, so "
                     "these hits could be chance; relatives may still rank first")
            if relatives_found is not None:
                note = power_note(q.query_modality, q.target_modality, relatives_found)
                head += f"; <span class='relatives-found'>{html.escape(note)}</span>"
            head += ")"
        if not probability_shown:
            head += (" · <span class='no-probability'>no P(relative) here (—): it is given only for modality pairs "
                     "whose calibration held and for family-labelled hits; judge these by E-value</span>")
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
        self.title = pn.pane.HTML(NO_HITS, sizing_mode="stretch_width")
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
                # the selected row in one readable colour pair: its cells' own colours (grey text of a row
                # that is not significant, green of one that is) were unreadable on the selection's dark blue
                stylesheets=[SELECTED_ROW_CSS],
            )
            self._table.style.apply(row_style, axis=1)
            self._table.param.watch(self._on_select, "selection")
            self._holder.append(self._table)
        return self._table

    def _on_query(self, event) -> None:
        q = event.new
        if q is None:
            self.title.object = NO_HITS
            if self._table is not None:
                self._table.value = _empty()
            return
        table = q.table(self.state.store)
        calibrated = table["P(relative)"].notna().any()
        found = self.state.resources.relatives_found(q.query_modality, q.target_modality) if q.assessed else None
        self.title.object = hits_title(q, probability_shown=calibrated, relatives_found=found)
        # a dash where there is no probability (pair not calibrated, hit without a family label), not an
        # empty bar that reads as 0 (hiding the column instead broke Tabulator's frozen columns in chromium)
        table["P(relative)"] = [f"{p:.2f}" if isinstance(p, float) and p == p else "—" for p in table["P(relative)"]]
        self.table.value = table
        self.table.selection = [0] if q.hits else []

    def _on_select(self, event) -> None:
        if not event.new:
            return
        row = self.table.value.iloc[event.new[0]]
        self.state.focus_id = str(row["id"])

    def __panel__(self):
        return self._holder
