"""The latent-space map: UMAP of one or several modalities, coloured by a label, with selection."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import panel as pn
import param

from explorer.mapdata import coverage_counts, find_ids, first_page, point_table
from explorer.state import ExplorerState
from explorer.views import holoviews
from explorer.views.map_figure import HEIGHT, MapFigure, highlight_frames, map_figure

if TYPE_CHECKING:  # imported with the point table: a first page drawn from its file needs no pandas
    import pandas as pd

RASTER_PANE_HEIGHT = HEIGHT + 10
MAX_FIND_SELECTED = 5_000  # a find selects at most this many of its matches (and says so)


DEMO_SELECTION = ("the demo embeds its test split and every protein with a structure, pocket, family or EC label "
                  "(scripts/build_demo_embeddings.sh), so the map stays meaningful and the folder small")


def coverage_note(counts: dict[str, int], embeddings_path: Path, mods: list[str], close_gap: bool) -> str:
    """What the map shows and what it leaves out, and why (HTML); `counts` as explorer.mapdata.coverage_counts."""
    import html

    from engine.paths import DEMO_EMBEDDINGS

    shown, store_n, embedded = counts["proteins"], counts["store"], counts["embedded"]
    out = f"{counts['points']:,} points · {shown:,} proteins"
    if shown < store_n:
        why = DEMO_SELECTION if Path(embeddings_path).resolve() == DEMO_EMBEDDINGS.resolve() else \
            "the embeddings were made for a subset of the store"
        lacking = f"; {embedded - shown:,} of them lack a {' or '.join(mods)} embedding" if embedded > shown else ""
        out += (f" <span class='map-coverage' style='color:#666'>(of the store's {store_n:,}: the embeddings hold "
                f"{embedded:,}, as {html.escape(why)}{html.escape(lacking)})</span>")
    if len(mods) > 1:
        out += (" · modalities centred: the modality gap closed" if close_gap else
                " · each modality on its own island: the contrastive modality gap (see Evolution)")
    return out


class MapView(pn.viewable.Viewer):
    """Scatter of the projected embeddings; box/lasso/tap selects, hits and focus are highlighted.

    Up to `options.datashade_above` points the map is a plain Bokeh figure (explorer.views.map_figure):
    highlights and selection change its sources in place. Above that, HoloViews + Datashader rasterize
    it on the server (imported only then: HoloViews costs about a second of cold start).
    """

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        # description=None: from_param would make the param's doc a tooltip, rendered through Markdown
        self.modalities = pn.widgets.MultiChoice.from_param(s.param.map_modalities, name="Modalities on the map",
                                                            description=None, sizing_mode="stretch_width")
        self.color = pn.widgets.Select.from_param(s.param.color_by, name="Colour by", width=140)
        self.find = pn.widgets.TextInput(name="Find id, name or family", placeholder="e.g. 1ldm_A or lactate", width=220)
        self.find.param.watch(self._on_find, "value")
        self.close_gap = pn.widgets.Checkbox.from_param(s.param.close_gap, name="Close the modality gap (joint maps)")
        self.info = pn.pane.HTML("", margin=(0, 10))
        self.plot: pn.pane.PaneBase = pn.pane.Bokeh(None, sizing_mode="stretch_width", height=HEIGHT)
        self._holder = pn.Column(self.plot, sizing_mode="stretch_width")
        self._table: pd.DataFrame | None = None
        self._drawn: tuple | None = None  # (modalities, version, close_gap) of the map on show: its table loads on use
        self._figure: MapFigure | None = None  # the Bokeh map (None while the map is rasterized)
        self._selection = None  # HoloViews BoundsXY stream of the rasterized map
        self._highlights = None  # HoloViews DynamicMap of hits and focus over the rasterized map
        self._syncing = False  # True while a selection travels between the figure and the state
        s.param.watch(self._refresh, ["map_modalities", "color_by", "embeddings_version", "data", "embeddings", "close_gap"])
        s.param.watch(self._update_highlights, ["query", "focus_id"])
        s.param.watch(self._show_selection, "selected_ids")

    # ---- building --------------------------------------------------------------------------
    def load(self) -> None:
        """Compute (or read from cache) the projection and draw."""
        self._refresh()

    def draw_first_page(self) -> bool:
        """Draw from the embeddings' first-page file when one matches this store and map: neither the store
        nor pandas is read (the point table loads on first use: `table`). False when there is none."""
        s = self.state
        with s.reporting("map"):
            from engine.paths import resolve_store

            res = s.resources
            have = res.modalities()
            mods = self._shown_modalities(have)
            if mods != list(s.map_modalities) or s.embeddings_version or s.link_same_protein:
                return False  # a map the file does not hold
            page = first_page(resolve_store(s.data), res.embeddings.path, mods, s.close_gap)
            if page is None or s.color_by not in page["categories"] or \
                    page["coverage"]["points"] > s.options.datashade_above:
                return False
            self.modalities.options = have
            self._table = None
            self._show_figure(map_figure(page["columns"], s.color_by, links=False,
                                         categories=page["categories"][s.color_by]))
            self._describe(mods, page["coverage"])
            return True
        return False

    def cached(self) -> bool:
        """True when drawing needs no UMAP run (the map is in memory or in the projection cache)."""
        s = self.state
        try:
            res = s.resources
            return point_table(res, self._shown_modalities(res.modalities()), s.embeddings_version,
                               compute=False, close_gap=s.close_gap) is not None
        except Exception:  # load() reports the problem in the page
            return False

    def _shown_modalities(self, have: list[str]) -> list[str]:
        """The chosen map modalities the embeddings hold, or the first one they hold."""
        return [m for m in self.state.map_modalities if m in have] or have[:1]

    @property
    def table(self) -> pd.DataFrame | None:
        """The point table of the map on show (read now if the map was drawn from its first-page file)."""
        if self._table is None and self._drawn is not None:
            mods, version, close_gap = self._drawn
            self._table = point_table(self.state.resources, mods, version, close_gap=close_gap)
        return self._table

    @property
    def figure(self) -> MapFigure | None:
        """The Bokeh map and its sources (None while the map is rasterized or not drawn yet)."""
        return self._figure

    def _refresh(self, *_) -> None:
        s = self.state
        with s.reporting("map"):
            self._holder.loading = True
            try:
                res = s.resources
                # offer only modalities the embeddings hold
                have = res.modalities()
                self.modalities.options = have
                mods = self._shown_modalities(have)
                if mods != list(s.map_modalities):
                    s.map_modalities = mods  # triggers another refresh with the fixed list
                    return
                self._table = point_table(res, mods, s.embeddings_version, close_gap=s.close_gap)
                self._draw(self._table)
                self._describe(mods, coverage_counts(self._table, res))
            finally:
                self._holder.loading = False

    def _draw(self, table: pd.DataFrame) -> None:
        s = self.state
        if len(table) > s.options.datashade_above:
            self._figure = None
            self._show(pn.pane.HoloViews, self._rasterized(table), height=RASTER_PANE_HEIGHT, linked_axes=False)
            return
        self._selection = None
        from explorer.mapdata import store_categories

        fig = map_figure(table, s.color_by, links=s.link_same_protein, categories=store_categories(s.store, s.color_by))
        fig.set_highlights(*highlight_frames(table, s.query, s.focus_id), self._focus_links(table))
        self._show_figure(fig)

    def _show_figure(self, fig: MapFigure) -> None:
        """Show a Bokeh map, its selection following the state's (a point table's or a first page's)."""
        fig.points.selected.on_change("indices", self._on_indices)
        self._figure = fig
        self._show_selection()  # not on a page yet: applied at once
        self._show(pn.pane.Bokeh, fig.figure, height=fig.figure.height)  # the plot and its legend below

    def _describe(self, mods: list[str], counts: dict[str, int]) -> None:
        """Record which map is on show (its point table loads from this key) and say what it covers."""
        s = self.state
        self._drawn = (mods, s.embeddings_version, s.close_gap)
        self.close_gap.visible = len(mods) > 1
        self.info.object = coverage_note(counts, s.resources.embeddings.path, mods, s.close_gap)

    def _show(self, pane_type: type, obj, **params) -> None:
        """Put `obj` in the plot pane, replacing the pane only when the kind of plot changes."""
        if type(self.plot) is pane_type:
            self.plot.param.update(object=obj, **params)  # a new legend may change the height
            return
        self.plot = pane_type(obj, sizing_mode="stretch_width", **params)
        self._holder.objects = [self.plot]

    def _rasterized(self, table: pd.DataFrame):
        """The map as a Datashader raster (re-aggregated on zoom), hits and focus on top, box select -> bounds."""
        hv = holoviews()
        import datashader as ds
        from holoviews.operation.datashader import dynspread, rasterize

        pts = hv.Points(table[["x", "y"]], kdims=["x", "y"])
        shaded = dynspread(rasterize(pts, aggregator=ds.count(), precompute=True).opts(
            cmap="viridis", cnorm="eq_hist", responsive=True, height=HEIGHT, xaxis=None, yaxis=None,
            tools=["box_select"], colorbar=False))
        self._selection = hv.streams.BoundsXY(source=shaded)
        self._selection.add_subscriber(self._on_bounds)
        if self._highlights is None:
            self._highlights = hv.DynamicMap(self._highlight_element,
                                             streams=[hv.streams.Params(self.state, ["query", "focus_id"])])
        return shaded * self._highlights

    def _highlight_element(self, query=None, focus_id="", **_):
        hv = holoviews()
        hits, focus = highlight_frames(self._table, query, focus_id)
        hit_el = hv.Points(hits, kdims=["x", "y"], vdims=["id"]).opts(
            marker="circle", size=14, fill_alpha=0, line_color="black", line_width=2)
        focus_el = hv.Points(focus, kdims=["x", "y"], vdims=["id"]).opts(
            marker="star", size=22, color="#e41a1c", line_color="black")
        return hit_el * focus_el

    # ---- in-place updates --------------------------------------------------------------------
    def _change_figure(self, change) -> None:
        """Run `change` (it edits the figure's Bokeh models) where Bokeh can send the edit to the browser.

        A served session sends model edits only while it holds the document lock, and Panel runs widget
        callbacks without it: there the edit waits for the session's next tick. Elsewhere (tests, a
        figure not on a page yet, a notebook) it runs at once; a notebook is then pushed explicitly.
        """
        doc = self._figure.figure.document if self._figure is not None else None
        if doc is not None and doc.session_context is not None:
            doc.add_next_tick_callback(change)
            return
        change()
        if doc is not None:
            pn.io.push_notebook(self.plot)

    def _update_highlights(self, *_) -> None:
        fig = self._figure
        if fig is None:
            return
        s = self.state
        hits, focus = highlight_frames(self.table, s.query, s.focus_id)
        links = self._focus_links(self.table)
        self._change_figure(lambda: fig.set_highlights(hits, focus, links))

    def _focus_links(self, table: pd.DataFrame | None) -> dict | None:
        """Lines joining the focused protein's points across modalities (when all proteins' lines are off)."""
        from explorer.views.map_figure import link_data

        s = self.state
        if table is None or s.link_same_protein:
            return None
        return link_data(table[table["id"] == s.focus_id] if s.focus_id else table.iloc[:0])

    def _show_selection(self, *_) -> None:
        """Show a selection made elsewhere (find, a family in Evolution) as the figure's selection."""
        fig = self._figure
        if fig is None or self._syncing:
            return
        ids = set(self.state.selected_ids)
        rows = [i for i, pid in enumerate(fig.points.data["id"]) if pid in ids] if ids else []

        def change() -> None:
            self._syncing = True  # the figure's own selection callback must not echo this back
            try:
                fig.points.selected.indices = rows
            finally:
                self._syncing = False

        self._change_figure(change)

    # ---- events ----------------------------------------------------------------------------
    def _on_indices(self, attr: str, old: list[int], new: list[int]) -> None:
        """Bokeh callback of the figure's selection (box, lasso or tap in the browser)."""
        if not self._syncing:
            self._on_select(index=new)

    def _on_select(self, index=None, **_) -> None:
        if self._figure is None or index is None:
            return
        point_ids = self._figure.points.data["id"]  # one per table row, in table order
        ids = list(dict.fromkeys(point_ids[i] for i in index))
        self._syncing = True
        try:
            self.state.selected_ids = ids
            if len(ids) == 1:
                self.state.focus_id = ids[0]
        finally:
            self._syncing = False

    def _on_bounds(self, bounds=None, **_) -> None:
        if self._table is None or bounds is None:
            return
        x0, y0, x1, y1 = bounds
        t = self._table
        inside = (t["x"] >= x0) & (t["x"] <= x1) & (t["y"] >= y0) & (t["y"] <= y1)
        self.state.selected_ids = list(dict.fromkeys(t["id"][inside].tolist()))[:100_000]

    def _on_find(self, event) -> None:
        if not event.new:
            return
        table = None
        with self.state.reporting("find"):  # a map drawn from its first-page file reads its table now
            table = self.table
        if table is None:
            return
        ids = find_ids(table, event.new)
        if not ids:  # the earlier selection goes too: it would otherwise pass for this find's result (and export)
            self.state.param.update(selected_ids=[], status=f"no protein id, name or family contains {event.new!r}; "
                                                           "selection cleared")
            return
        shown = ids[:MAX_FIND_SELECTED]
        more = f" (the first {len(shown):,} selected)" if len(shown) < len(ids) else ""
        self.state.param.update(selected_ids=shown, focus_id=ids[0],
                                status=f"{len(ids):,} matches for {event.new!r}{more}")

    def __panel__(self):
        controls = pn.Row(self.modalities, self.color, self.find, self.close_gap, sizing_mode="stretch_width")
        return pn.Column(controls, self.info, self._holder, sizing_mode="stretch_width")
