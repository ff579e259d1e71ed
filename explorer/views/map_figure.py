"""Map data -> a plain Bokeh figure and its sources: points by category, links, hit and focus highlights.

No Panel and no HoloViews here: building this figure costs a few milliseconds, where the same plot
through HoloViews cost about a second of the first session (and its import another second).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from bokeh.models import (BoxSelectTool, BoxZoomTool, ColumnDataSource, HoverTool, LassoSelectTool, Legend,
                          LegendItem, PanTool, ResetTool, SaveTool, Scatter, Segment, TapTool, WheelZoomTool)
from bokeh.plotting import figure
from bokeh.transform import factor_cmap

from explorer.mapdata import pooled_labels

if TYPE_CHECKING:
    import pandas as pd

    from explorer.backend import QueryResult

    Points = pd.DataFrame | dict  # a point table (explorer.mapdata.point_table) or its columns (a first-page file)

PALETTE = [  # Tableau 20 reordered so neighbouring categories contrast
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22",
    "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#9edae5", "#dbdb8d", "#393b79",
]
GREY = {"unlabelled": "#d9d9d9", "other": "#9e9e9e"}
WEBGL_ABOVE = 10_000  # points; Datashader takes over from options.datashade_above
MAX_LINKS = 20_000  # points; above this, lines between a protein's modalities would be unreadable anyway
HEIGHT = 460  # the plot area; a legend of n categories adds legend_height(n) below it
LEGEND_COLUMNS = 3  # below the plot, so the points get the page's width (a legend on the right took a third of it)
LEGEND_ROW_PX = 17
POINT_COLUMNS = ["x", "y", "id", "name", "modality", "text", "colour"]
XY = ["x", "y", "id"]
LINK_COLUMNS = ["x0", "y0", "x1", "y1"]


def colour_map(categories: list[str]) -> dict[str, str]:
    """Category -> colour: greys for 'unlabelled'/'other', the palette for the rest in the given order.

    Give it the store-wide order (explorer.mapdata.store_categories) and a value keeps its colour in
    every view; given a view's own frequency order, colours would shift between views."""
    out, k = {}, 0
    for c in categories:
        if c in GREY:
            out[c] = GREY[c]
        else:
            out[c] = PALETTE[k % len(PALETTE)]
            k += 1
    return out


def _empty(columns: list[str]) -> dict[str, list]:
    return {k: [] for k in columns}


def _short(label: str, width: int = 28) -> str:
    """A legend name of at most `width` characters: a long label's parenthetical goes first
    ("LDH/MDH (lactate/malate dehydrogenase)" -> "LDH/MDH"), then the end is cut."""
    if len(label) <= width:
        return label
    head = label.split(" (", 1)[0]
    return head if head and len(head) <= width else label[: width - 1] + "…"


def _plain(table: Points, names: list[str]) -> dict:
    """The named columns as arrays (x, y) and lists: from a point table, or from a first page's columns as they are."""
    if isinstance(table, dict):
        return {n: table[n] for n in names}
    return {n: table[n].to_numpy(dtype=float) if n in ("x", "y") else table[n].tolist() for n in names}


def legend_height(n_categories: int) -> int:
    """Pixels the legend adds below the plot for `n_categories` entries in LEGEND_COLUMNS columns."""
    rows = -(-n_categories // LEGEND_COLUMNS)
    return rows * LEGEND_ROW_PX + 16


def point_columns(table: Points, color_by: str, categories: list[str] | None = None) -> dict:
    """The columns the scatter and its hover read, coordinates as float arrays (Bokeh sends those as binary,
    not as JSON numbers); `colour` is the shortened label (long names squeeze the plot)."""
    cols = _plain(table, list(dict.fromkeys(["x", "y", "id", "name", "modality", "text", color_by])))
    colour = [_short(c) for c in pooled_labels([str(v) for v in cols[color_by]], categories)]
    # text columns as NumPy unicode arrays: Bokeh sends those as one list, where a Python list costs an
    # encoder call per value (20,000 calls, ~0.15 s of the first page's 2-core start for 3,814 points)
    out = {c: np.asarray(cols[c], dtype=float if c in ("x", "y") else str) for c in POINT_COLUMNS[:-1]}
    out["colour"] = np.asarray(colour, dtype=str)
    return out


def category_order(colours: list[str]) -> list[str]:
    """The colour categories, most frequent first (the legend's order and the palette's)."""
    return [c for c, _ in Counter(colours).most_common()]


def link_data(table: Points) -> dict:
    """Segments joining the points of one protein across modalities (first modality -> each other)."""
    cols = _plain(table, ["x", "y", "id", "modality"])
    if len(set(cols["modality"])) < 2 or len(cols["id"]) > MAX_LINKS:
        return _empty(LINK_COLUMNS)
    first: dict[str, tuple[float, float]] = {}
    segments = []
    for pid, x, y in zip(cols["id"], cols["x"], cols["y"]):
        x0, y0 = first.setdefault(pid, (x, y))
        if (x, y) != (x0, y0):
            segments.append((x0, y0, x, y))
    arr = np.asarray(segments, dtype=float).reshape(-1, 4)
    return {k: arr[:, i] for i, k in enumerate(LINK_COLUMNS)}


def highlight_frames(table: pd.DataFrame | None, query: QueryResult | None = None,
                     focus_id: str = "") -> tuple[dict, dict]:
    """(hits, focus) columns x, y, id: the query's hits (in their target modality when it is on the map)
    and the focused protein's points; empty without a table."""
    hit_ids = [h.id for h in query.hits] if query is not None else []
    if table is None or (not hit_ids and not focus_id):
        return _empty(XY), _empty(XY)
    hits = table[table["id"].isin(hit_ids)] if hit_ids else table.iloc[:0]
    if hit_ids and (hits["modality"] == query.target_modality).any():
        hits = hits[hits["modality"] == query.target_modality]  # ring the hit's own modality
    focus = table[table["id"] == focus_id] if focus_id else table.iloc[:0]
    return _columns(hits), _columns(focus)


def _columns(frame: pd.DataFrame) -> dict[str, list]:
    return {k: frame[k].tolist() for k in XY}


@dataclass
class MapFigure:
    """The figure and the sources a view updates in place (highlights) or listens to (points.selected)."""

    figure: figure
    points: ColumnDataSource
    links: ColumnDataSource
    hits: ColumnDataSource
    focus: ColumnDataSource
    categories: list[str]

    def set_highlights(self, hits: dict, focus: dict, focus_links: dict | None = None) -> None:
        """Replace the hit rings and focus star (their sources' `.data`; the figure stays). Columns as
        `highlight_frames` returns them; `focus_links` (link_data of the focused protein) joins its points."""
        self.hits.data = hits
        self.focus.data = focus
        if focus_links is not None:
            self.links.data = focus_links


def _tools(hover_label: str) -> tuple[list, list, WheelZoomTool, PanTool]:
    """(all tools, the ones that act on points), the wheel zoom (active scroll) and pan (active drag)."""
    wheel, pan = WheelZoomTool(), PanTool()
    # Bokeh escapes @field values in tooltips given as (label, field) pairs: names and texts stay text
    hover = HoverTool(tooltips=[("id", "@id"), ("name", "@name"), ("modality", "@modality"),
                                (hover_label, "@colour"), ("text", "@text")])
    on_points = [hover, BoxSelectTool(), LassoSelectTool(), TapTool()]
    return [*on_points[:1], pan, *on_points[1:], wheel, BoxZoomTool(), ResetTool(), SaveTool()], on_points, wheel, pan


def map_figure(table: Points, color_by: str, links: bool = True, categories: list[str] | None = None) -> MapFigure:
    """Scatter coloured by `color_by` (legend on the right), optional links, empty highlight layers on top.

    `table`: a point table or a first page's columns. `categories` (the store-wide order of the label's
    values) fixes each value's colour across views."""
    frame = point_columns(table, color_by, categories)
    order = category_order(frame["colour"])
    cmap = colour_map([_short(c) for c in categories] + ["other", "unlabelled"]) if categories is not None else colour_map(order)
    tools, on_points, wheel, pan = _tools(color_by)
    fig = figure(sizing_mode="stretch_width", height=HEIGHT + legend_height(len(order)), tools=tools,
                 toolbar_location="right",
                 active_scroll=wheel, active_drag=pan, title="", min_border=10,
                 # UMAP axes mean nothing: no axes, tickers or grids at all (each is a model the page builds)
                 x_axis_type=None, y_axis_type=None,
                 # canvas draws a few thousand points faster (and without a GPU); WebGL keeps tens of thousands smooth
                 output_backend="webgl" if len(frame["x"]) > WEBGL_ABOVE else "canvas")
    link_src = ColumnDataSource(link_data(table) if links else _empty(LINK_COLUMNS), name="map-links")
    # links and highlights as bare glyphs: never selected or muted, they need no copies of their glyph for that
    fig.add_glyph(link_src, Segment(x0="x0", y0="y0", x1="x1", y1="y1", line_color="#888888", line_alpha=0.25,
                                    line_width=0.6))
    # one row per map point in table order (selection indices are table rows); names let browser tests find sources
    points = ColumnDataSource(frame, name="map-points")
    r = fig.scatter("x", "y", source=points, size=6, fill_alpha=0.8, line_color=None,
                    fill_color=factor_cmap("colour", [cmap[c] for c in order], order),
                    selection_line_color="black", nonselection_fill_alpha=0.15, nonselection_line_alpha=0.15)
    for tool in on_points:
        tool.renderers = [r]  # hover, select and tap act on the points only, not on links or highlights
    first = {}
    for i, c in enumerate(frame["colour"]):
        first.setdefault(c, i)
    items = [LegendItem(label=c, renderers=[r], index=first[c]) for c in order]
    fig.add_layout(Legend(items=items, location="top_left", label_text_font_size="11px", spacing=1,
                          ncols=LEGEND_COLUMNS, glyph_height=12, label_height=12, padding=4, margin=4,
                          border_line_color=None), "below")
    fig.x_range.renderers = fig.y_range.renderers = [r]  # highlights never move the view
    hits, focus = ColumnDataSource(_empty(XY), name="map-hits"), ColumnDataSource(_empty(XY), name="map-focus")
    fig.add_glyph(hits, Scatter(x="x", y="y", marker="circle", size=14, fill_alpha=0, line_color="black", line_width=2))
    fig.add_glyph(focus, Scatter(x="x", y="y", marker="star", size=22, fill_color="#e41a1c", line_color="black"))
    return MapFigure(fig, points, link_src, hits, focus, order)
