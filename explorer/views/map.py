"""The latent-space map: UMAP of one or several modalities, coloured by a label, with selection."""

from __future__ import annotations

import holoviews as hv
import pandas as pd
import panel as pn
import param

from explorer.mapdata import colour_column, find_ids, point_table
from explorer.state import ExplorerState

PALETTE = [  # Tableau 20 reordered so neighbouring categories contrast
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
]
GREY = {"unlabelled": "#d9d9d9", "other": "#9e9e9e"}
WEBGL_ABOVE = 10_000  # points; Datashader takes over from options.datashade_above
MAX_LINKS = 20_000  # points; above this, lines between a protein's modalities would be unreadable anyway


def colour_map(categories: list[str]) -> dict[str, str]:
    """Category -> colour: greys for 'unlabelled'/'other', the palette for the rest (by frequency order)."""
    out, k = {}, 0
    for c in categories:
        if c in GREY:
            out[c] = GREY[c]
        else:
            out[c] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _short(label: str, width: int = 28) -> str:
    return label if len(label) <= width else label[: width - 1] + "…"


def points_element(table: pd.DataFrame, color_by: str) -> hv.Points:
    """A pure function (data, colour) -> scatter, with hover on id, name, label and text."""
    data = table[["x", "y", "id", "name", "modality", "text"]].copy()
    # long family names would squeeze the plot: the legend shows them shortened, hover shows id/name
    data["colour"] = colour_column(table, color_by).map(_short).to_numpy()
    order = data["colour"].value_counts().index.tolist()
    cmap = colour_map(order)
    tooltips = [("id", "@id"), ("name", "@name"), ("modality", "@modality"), (color_by, "@colour"), ("text", "@text")]
    return hv.Points(data, kdims=["x", "y"], vdims=["id", "name", "modality", "text", "colour"]).opts(
        color="colour", cmap=cmap, size=6, alpha=0.8, line_color=None, tools=["hover", "box_select", "lasso_select", "tap"],
        hover_tooltips=tooltips, show_legend=True, legend_position="right", xaxis=None, yaxis=None,
        nonselection_alpha=0.15, selection_line_color="black", responsive=True, height=460,
        active_tools=["wheel_zoom"], title="",
        # canvas draws a few thousand points faster (and without a GPU); WebGL keeps tens of thousands smooth
        backend_opts={"plot.output_backend": "webgl" if len(table) > WEBGL_ABOVE else "canvas"},
    )


def links_element(table: pd.DataFrame) -> hv.Segments:
    """Segments joining the points of one protein across modalities (first modality -> each other)."""
    if table["modality"].nunique() < 2 or len(table) > MAX_LINKS:
        return hv.Segments([], kdims=["x0", "y0", "x1", "y1"])
    first = table.drop_duplicates("id")[["id", "x", "y"]].rename(columns={"x": "x0", "y": "y0"})
    joined = table.merge(first, on="id")
    joined = joined[(joined["x"] != joined["x0"]) | (joined["y"] != joined["y0"])]
    return hv.Segments(joined[["x0", "y0", "x", "y"]].to_numpy(), kdims=["x0", "y0", "x1", "y1"]).opts(
        color="#888888", alpha=0.25, line_width=0.6
    )


class MapView(pn.viewable.Viewer):
    """Scatter of the projected embeddings; box/lasso/tap selects, hits and focus are highlighted."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.modalities = pn.widgets.MultiChoice.from_param(s.param.map_modalities, name="Modalities on the map",
                                                            sizing_mode="stretch_width")
        self.color = pn.widgets.Select.from_param(s.param.color_by, name="Colour by", width=140)
        self.find = pn.widgets.TextInput(name="Find id or name", placeholder="e.g. 1ldm_A or lactate", width=220)
        self.find.param.watch(self._on_find, "value")
        self.info = pn.pane.Markdown("", margin=(0, 10))
        self.plot = pn.pane.HoloViews(None, sizing_mode="stretch_width", height=470, linked_axes=False)
        self._table: pd.DataFrame | None = None
        self._selection: hv.streams.Stream | None = None
        self._highlights = hv.DynamicMap(self._highlight_element, streams=[
            hv.streams.Params(s, ["query", "focus_id", "selected_ids"])])
        s.param.watch(self._refresh, ["map_modalities", "color_by", "embeddings_version", "data", "index"])

    # ---- building --------------------------------------------------------------------------
    def load(self) -> None:
        """Compute (or read from cache) the projection and draw."""
        self._refresh()

    def cached(self) -> bool:
        """True when drawing needs no UMAP run (the map is in memory or in the projection cache)."""
        s = self.state
        try:
            res = s.resources
            return point_table(res, self._shown_modalities(res.modalities()), s.embeddings_version,
                               compute=False) is not None
        except Exception:  # load() reports the problem in the page
            return False

    def _shown_modalities(self, have: list[str]) -> list[str]:
        """The chosen map modalities the embeddings hold, or the first one they hold."""
        return [m for m in self.state.map_modalities if m in have] or have[:1]

    @property
    def table(self) -> pd.DataFrame | None:
        return self._table

    def _refresh(self, *_) -> None:
        s = self.state
        with s.reporting("map"):
            self.plot.loading = True
            try:
                res = s.resources
                # offer only modalities the embeddings hold
                have = res.modalities()
                self.modalities.options = have
                mods = self._shown_modalities(have)
                if mods != list(s.map_modalities):
                    s.map_modalities = mods  # triggers another refresh with the fixed list
                    return
                self._table = point_table(res, mods, s.embeddings_version)
                self.plot.object = self._element(self._table)
                self.info.object = f"{len(self._table):,} points · {self._table['id'].nunique():,} proteins"
            finally:
                self.plot.loading = False

    def _element(self, table: pd.DataFrame):
        s = self.state
        big = len(table) > s.options.datashade_above
        if big:
            import datashader as ds
            from holoviews.operation.datashader import dynspread, rasterize

            pts = points_element(table, s.color_by)
            shaded = dynspread(rasterize(pts, aggregator=ds.count(), precompute=True).opts(
                cmap="viridis", cnorm="eq_hist", responsive=True, height=460, xaxis=None, yaxis=None,
                tools=["box_select"], colorbar=False))
            self._selection = hv.streams.BoundsXY(source=shaded)
            self._selection.add_subscriber(self._on_bounds)
            return shaded * self._highlights
        pts = points_element(table, s.color_by)
        self._selection = hv.streams.Selection1D(source=pts)
        self._selection.add_subscriber(self._on_select)
        links = links_element(table) if s.link_same_protein else hv.Segments([], kdims=["x0", "y0", "x1", "y1"])
        return (links * pts * self._highlights).opts(hv.opts.Overlay(legend_position="right", responsive=True, height=460))

    def _highlight_element(self, query=None, focus_id="", selected_ids=None):
        t = self._table
        empty = hv.Points([], kdims=["x", "y"])
        if t is None:
            return empty * empty
        hit_ids = [h.id for h in query.hits] if query is not None else []
        hits = t[t["id"].isin(hit_ids)] if hit_ids else t.iloc[:0]
        if (hits["modality"] == query.target_modality).any() if hit_ids else False:
            hits = hits[hits["modality"] == query.target_modality]  # ring the hit's own modality when it is on the map
        focus = t[t["id"] == focus_id] if focus_id else t.iloc[:0]
        hit_el = hv.Points(hits[["x", "y", "id"]], kdims=["x", "y"], vdims=["id"]).opts(
            marker="circle", size=14, fill_alpha=0, line_color="black", line_width=2)
        focus_el = hv.Points(focus[["x", "y", "id"]], kdims=["x", "y"], vdims=["id"]).opts(
            marker="star", size=22, color="#e41a1c", line_color="black")
        return hit_el * focus_el

    # ---- events ----------------------------------------------------------------------------
    def _on_select(self, index=None, **_) -> None:
        if self._table is None or index is None:
            return
        ids = list(dict.fromkeys(self._table["id"].iloc[list(index)].tolist()))
        self.state.selected_ids = ids
        if len(ids) == 1:
            self.state.focus_id = ids[0]

    def _on_bounds(self, bounds=None, **_) -> None:
        if self._table is None or bounds is None:
            return
        x0, y0, x1, y1 = bounds
        t = self._table
        inside = (t["x"] >= x0) & (t["x"] <= x1) & (t["y"] >= y0) & (t["y"] <= y1)
        self.state.selected_ids = list(dict.fromkeys(t["id"][inside].tolist()))[:100_000]

    def _on_find(self, event) -> None:
        if self._table is None:
            return
        ids = find_ids(self._table, event.new)
        if not event.new:
            return
        if not ids:
            self.state.status = f"no protein id or name contains {event.new!r}"
            return
        self.state.param.update(selected_ids=ids, focus_id=ids[0], status=f"{len(ids)} matches for {event.new!r}")

    def __panel__(self):
        controls = pn.Row(self.modalities, self.color, self.find, sizing_mode="stretch_width")
        return pn.Column(controls, self.info, self.plot, sizing_mode="stretch_width")
