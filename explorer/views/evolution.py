"""Do related proteins point the same way? Same- vs different-family cosines before/after alignment."""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

import numpy as np
import panel as pn
import param

from explorer.state import ExplorerState
from explorer.views import LazyHoloViews, holoviews

if TYPE_CHECKING:  # imported where used: the first page is drawn without pandas (explorer cold start)
    import pandas as pd

PRESS_COMPARE = "<i>Press <b>Compare</b> to draw the histograms before and after alignment.</i>"
_CACHE: dict[tuple, dict] = {}
_CACHE_LOCK = threading.Lock()


def family_comparison(resources, modality: str, seed: int = 0) -> dict:
    """{'after': stored aligned vectors, 'before': same encoders with fresh heads} -> family_similarity dicts."""
    from engine.data.items import items_for
    from engine.evaluate import baselines as B
    from engine.evaluate.evolution import family_similarity

    key = (id(resources), id(resources.embeddings), modality, seed)
    with _CACHE_LOCK:
        if key in _CACHE:
            return _CACHE[key]
    emb, store = resources.embeddings, resources.store
    ids = emb.ids(modality)
    fam = store.proteins.set_index("id")["family"].reindex(ids).tolist()
    after = family_similarity(np.asarray(emb.vectors(modality)), fam, seed)
    labelled = [i for i, f in zip(ids, fam) if isinstance(f, str) and f]
    before = None
    with resources.using_model() as model:  # the shared model: one forward pass at a time
        usable = bool(labelled) and modality in model.modalities
        if usable:
            pooled = B.pooled_features(model, modality, items_for(store, labelled, modality))
            heads = B.random_heads(model, seed)
    if usable:
        before = family_similarity(B.apply_head(heads[modality], pooled),
                                   store.proteins.set_index("id")["family"].reindex(labelled).tolist(), seed)
    out = {"after": after, "before": before, "modality": modality}
    with _CACHE_LOCK:
        _CACHE[key] = out
    return out


def histogram_element(result: dict | None, title: str, empty: str = "not enough family labels"):
    """Same-family vs different-family cosine histograms (densities) on the module's fixed bins (a HoloViews Overlay)."""
    hv = holoviews()
    if result is None:
        return hv.Curve([]).opts(title=f"{title}: {empty}", responsive=True, height=260)
    bins = np.asarray(result["bins"])
    centres = (bins[:-1] + bins[1:]) / 2
    out = []
    for key, label, colour in (("hist_different", "different family", "#9e9e9e"), ("hist_same", "same family", "#d62728")):
        h = np.asarray(result[key], dtype=float)
        h = h / max(h.sum(), 1.0)
        out.append(hv.Area((centres, h), "cosine", "fraction of pairs", label=label).opts(color=colour, alpha=0.45, line_color=colour))
    return hv.Overlay(out).opts(title=f"{title} · ROC-AUC {result['roc_auc']:.3f}", responsive=True, height=260,
                                legend_position="top_left", xlim=(-1, 1))


def family_spread(table: pd.DataFrame) -> pd.DataFrame:
    """Per family on the current map: size and mean distance of its points to their centroid (UMAP units).

    Families of one point are left out: their spread is 0 by construction and would top the table."""
    import pandas as pd

    t = table[table["family"] != "unlabelled"]
    rows = []
    for fam, g in t.groupby("family"):
        if len(g) < 2:
            continue
        c = g[["x", "y"]].mean().to_numpy()
        d = np.linalg.norm(g[["x", "y"]].to_numpy() - c, axis=1)
        rows.append({"family": fam, "points": len(g), "spread": round(float(d.mean()), 3)})
    return pd.DataFrame(rows, columns=["family", "points", "spread"]).sort_values(["spread", "points"], ascending=[True, False])


def gap_note(embeddings, modalities: list[str]) -> str:
    """The modality gap as a teaching point (HTML): how far each modality's centre is from sequence's."""
    import html

    from engine.projection import modality_gap

    gap = modality_gap({m: np.asarray(embeddings.vectors(m)) for m in modalities})
    if not gap:
        return ""
    rows = "".join(f"<tr><td>{html.escape(m)}</td><td>{g['centre_distance']:.2f}</td><td>{g['centre_cosine']:.2f}</td></tr>"
                   for m, g in gap.items())
    return ("<h4>The modality gap</h4><p>Contrastive training pairs each protein's modalities, yet leaves each "
            "modality in its own region of the space: the centre (mean vector) of every modality sits apart from "
            "the sequence centre. A joint map therefore shows one island per modality unless each modality is "
            "centred first (the map's <i>Close the modality gap</i>, on by default). Retrieval is unaffected: it "
            "ranks targets of one modality, all shifted alike.</p>"
            "<table class='modality-gap'><tr><th>modality</th><th>distance of centres to sequence's</th>"
            f"<th>cosine of centres</th></tr>{rows}</table>")


class EvolutionView(pn.viewable.Viewer):
    """Histograms before/after alignment for a modality, and a per-family spread table that selects on the map."""

    state = param.ClassSelector(class_=ExplorerState)
    map_view = param.Parameter()

    def __init__(self, **params):
        super().__init__(**params)
        self.modality = pn.widgets.Select(name="Modality", options=["sequence"], width=180)
        self.compute = pn.widgets.Button(name="Compare before / after alignment", button_type="primary")
        self.compute.on_click(self._compute)
        self.summary = pn.pane.HTML(PRESS_COMPARE, sizing_mode="stretch_width")
        # filled by Compare: HoloViews is imported then, not while the page starts
        self.before = LazyHoloViews()
        self.after = LazyHoloViews()
        import pandas as pd

        self.spread = pn.widgets.Tabulator(pd.DataFrame(columns=["family", "points", "spread"]), show_index=False,
                                           selectable=1, disabled=True, height=260, sizing_mode="stretch_width")
        self.spread.param.watch(self._select_family, "selection")
        self.refresh_spread = pn.widgets.Button(name="Show the family spread on the current map", button_type="primary")
        self.refresh_spread.on_click(self._spread)
        self.gap = pn.pane.HTML("", sizing_mode="stretch_width")

    def refresh(self) -> None:
        """Offer the modalities the embeddings hold (the app calls this when the tab is first shown)."""
        with self.state.reporting("evolution"):
            res = self.state.resources
            self.modality.options = res.modalities()
            self.gap.object = gap_note(res.embeddings, res.modalities())

    def _compute(self, _=None) -> None:
        s = self.state
        self.compute.loading = True
        try:
            with s.reporting("evolution"):
                res = family_comparison(s.resources, self.modality.value)
                self.before.object = histogram_element(res["before"], "before alignment (fresh heads)")
                self.after.object = histogram_element(res["after"], "after alignment (stored embeddings)")
                a, b = res["after"], res["before"]
                if a is not None:
                    self.summary.object = (
                        f"{a['n_proteins']} proteins in {a['n_families']} families, {a['n_pairs']:,} pairs. "
                        f"Mean cosine same/different family: after {a['same']['mean']:.3f} / {a['different']['mean']:.3f}"
                        + (f"; before {b['same']['mean']:.3f} / {b['different']['mean']:.3f}" if b else "") + ".")
        finally:
            self.compute.loading = False

    def _spread(self, _=None) -> None:
        t = self.map_view.table if self.map_view is not None else None
        if t is not None:
            self.spread.value = family_spread(t)

    def _select_family(self, event) -> None:
        if not event.new or self.map_view is None or self.map_view.table is None:
            return
        fam = self.spread.value.iloc[event.new[0]]["family"]
        t = self.map_view.table
        ids = list(dict.fromkeys(t["id"][t["family"] == fam].tolist()))
        self.state.param.update(selected_ids=ids, status=f"family {fam}: {len(ids)} proteins selected on the map")

    def __panel__(self):
        return pn.Column(
            pn.pane.HTML("<h3>Evolutionary relatedness</h3><p>Cosine similarity of every pair of family-labelled "
                         "proteins, split into same-family and different-family pairs. Alignment should push the "
                         "red distribution right of the grey one (ROC-AUC toward 1).</p>", sizing_mode="stretch_width"),
            pn.Row(self.modality, self.compute), self.summary, pn.Row(self.before, self.after, sizing_mode="stretch_width"),
            pn.Row(self.refresh_spread),
            pn.pane.HTML("<p>Tight families first; pick a row to select that family on the map.</p>"),
            self.spread, self.gap, sizing_mode="stretch_width")
