"""Downloads: the selected proteins (CSV, FASTA), their embeddings (Parquet, HDF5), the map as PNG."""

from __future__ import annotations

import io
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import panel as pn
import param

from explorer.state import ExplorerState

if TYPE_CHECKING:  # imported where used: the first page is drawn without pandas (explorer cold start)
    import pandas as pd


def selection_table(state: ExplorerState) -> pd.DataFrame:
    """id, name and labels of the selected proteins (all proteins when nothing is selected)."""
    p = state.store.proteins
    cols = ["id", "name", "family", "ec", "organism", "source", "split", "length"]
    if state.selected_ids:
        p = p[p["id"].isin(set(state.selected_ids))]
    return p[cols].reset_index(drop=True)


def selection_csv(state: ExplorerState) -> io.BytesIO:
    return io.BytesIO(selection_table(state).to_csv(index=False).encode())


def selection_fasta(state: ExplorerState) -> io.BytesIO:
    """FASTA with `>id name` headers, 60 residues a line."""
    p = state.store.proteins
    if state.selected_ids:
        p = p[p["id"].isin(set(state.selected_ids))]
    out = []
    for pid, name, seq in zip(p["id"], p["name"].fillna(""), p["sequence"]):
        header = f"{pid} {' '.join(str(name).split())}".strip()  # one line, whatever the name held
        out.append(f">{header}\n" + "\n".join(seq[i:i + 60] for i in range(0, len(seq), 60)))
    return io.BytesIO(("\n".join(out) + "\n").encode())


def embeddings_parquet(state: ExplorerState, modalities: list[str]) -> io.BytesIO:
    """Long table id, modality, embedding + labels (engine.embed.export_parquet), cut to the selection."""
    from engine.embed import export_parquet

    return _exported(lambda path: export_parquet(state.resources.embeddings, path, modalities or None,
                                                 state.selected_ids or None), "embeddings.parquet")


def embeddings_h5(state: ExplorerState, modality: str) -> io.BytesIO:
    """One modality as HDF5, one dataset per protein id (engine.embed.export_h5), cut to the selection."""
    from engine.embed import export_h5

    return _exported(lambda path: export_h5(state.resources.embeddings, path, modality, state.selected_ids or None),
                     "embeddings.h5")


def _exported(write, name: str) -> io.BytesIO:
    """The bytes of a file the engine's exporter writes (into a temporary folder, removed after)."""
    with tempfile.TemporaryDirectory(prefix="oneprot-export-") as tmp:
        return io.BytesIO(Path(write(Path(tmp) / name)).read_bytes())


def map_png(table: pd.DataFrame, color_by: str, selected: list[str] | None = None, title: str = "",
            categories: list[str] | None = None) -> io.BytesIO:
    """The current map drawn with matplotlib, same colours as the page; selection outlined."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    import numpy as np

    from explorer.mapdata import pooled_labels
    from explorer.views.map_figure import category_order, colour_map

    colours = np.asarray(pooled_labels(table[color_by].astype(str).tolist(), categories))
    order = category_order(colours.tolist())
    cmap = colour_map(list(categories) + ["other", "unlabelled"]) if categories is not None else colour_map(order)
    fig, ax = plt.subplots(figsize=(9, 7), dpi=120)
    size = 6 if len(table) > 20_000 else 14
    for cat in reversed(order):  # frequent categories drawn first, rare ones on top
        m = colours == cat
        ax.scatter(table["x"][m], table["y"][m], s=size, c=cmap[cat], label=f"{cat} ({m.sum()})", linewidths=0)
    if selected:
        m = table["id"].isin(set(selected)).to_numpy()
        ax.scatter(table["x"][m], table["y"][m], s=size * 3, facecolors="none", edgecolors="black", linewidths=0.8)
    ax.set_xticks([]), ax.set_yticks([])
    ax.set_title(title or f"UMAP coloured by {color_by}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8, frameon=False, markerscale=1.5)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png")
    plt.close(fig)
    buf.seek(0)
    return buf


class ExportView(pn.viewable.Viewer):
    """Download buttons; each builds its file only when clicked."""

    state = param.ClassSelector(class_=ExplorerState)
    map_view = param.Parameter(doc="the MapView whose current table the PNG draws")

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.summary = pn.pane.HTML("", sizing_mode="stretch_width")
        self.modality = pn.widgets.Select(name="Embedding modality (HDF5)", options=["sequence"], width=200)
        self.csv = pn.widgets.FileDownload(callback=lambda: selection_csv(s), filename="selection.csv",
                                           label="Selection as CSV", button_type="primary")
        self.fasta = pn.widgets.FileDownload(callback=lambda: selection_fasta(s), filename="selection.fasta",
                                             label="Selection as FASTA", button_type="primary")
        self.parquet = pn.widgets.FileDownload(callback=lambda: embeddings_parquet(s, list(s.map_modalities)),
                                               filename="embeddings.parquet", label="Embeddings (Parquet, map modalities)")
        self.h5 = pn.widgets.FileDownload(callback=lambda: embeddings_h5(s, self.modality.value),
                                          filename="embeddings.h5", label="Embeddings (HDF5)")
        self.png = pn.widgets.FileDownload(callback=self._png, filename="map.png", label="Map as PNG")
        s.param.watch(self._update_summary, ["selected_ids", "data", "embeddings"])

    def refresh(self) -> None:
        with self.state.reporting("export"):
            self.modality.options = self.state.resources.modalities()
            self._update_summary()

    def _png(self) -> io.BytesIO:
        t = self.map_view.table if self.map_view is not None else None
        if t is None:
            return io.BytesIO(b"")
        s = self.state
        from explorer.mapdata import store_categories

        return map_png(t, s.color_by, s.selected_ids, f"{', '.join(s.map_modalities)} embeddings, coloured by {s.color_by}",
                       categories=store_categories(s.store, s.color_by))

    def _update_summary(self, *_) -> None:
        n = len(self.state.selected_ids)
        self.summary.object = (f"<b>{n} proteins selected</b> (box/lasso on the map, or find by name)." if n
                               else "Nothing selected: downloads cover <b>all</b> proteins.")

    def __panel__(self):
        return pn.Column(
            pn.pane.HTML("<h3>Export</h3>"), self.summary, pn.Row(self.csv, self.fasta),
            pn.Row(self.parquet), pn.Row(self.modality, self.h5), pn.Row(self.png),
            pn.pane.HTML("The map's own toolbar also saves the current view as PNG (disk icon).",
                         styles={"color": "#666", "font-size": "12px"}),
            sizing_mode="stretch_width")
