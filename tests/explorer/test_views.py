"""Unit tests of the view classes on the tiny world (UMAP replaced by PCA here; see conftest)."""

from __future__ import annotations

import io
from pathlib import Path

import h5py
import numpy as np
import pandas as pd
import panel as pn

from explorer.app import ExplorerApp, create_app
from explorer.mapdata import find_ids, label_table
from explorer.state import ExplorerState
from explorer.views.detail import DetailView, record_html
from explorer.views.evolution import family_spread
from explorer.views.export import embeddings_h5, embeddings_parquet, map_png, selection_csv, selection_fasta
from explorer.views.hits import HitsView
from explorer.views.map import MapView
from explorer.views.map_figure import GREY, HEIGHT, LEGEND_COLUMNS, legend_height, link_data, map_figure


def _loaded_app(options) -> ExplorerApp:
    app = ExplorerApp(options)
    app.load()
    assert app.state.error == "", app.state.error
    return app


def test_map_projects_colours_and_selects(options, fast_projection):
    app = _loaded_app(options)
    m, s = app.map, app.state
    t = m.table
    assert len(t) == 32 and set(t["modality"]) == {"sequence"} and {"x", "y", "family", "ligand"} <= set(t.columns)
    assert set(t["ligand"]) == {"NAD", "HEM", "none"}
    # box/lasso selection -> selected ids; one point -> focus
    m._on_select(index=[0, 1, 2])
    assert s.selected_ids == t["id"].iloc[:3].tolist()
    m._on_select(index=[5])
    assert s.focus_id == t["id"].iloc[5]
    # two modalities jointly: points of one protein are linked
    s.map_modalities = ["sequence", "structure"]
    t2 = m.table
    assert set(t2["modality"]) == {"sequence", "structure"} and len(t2) == 32 + len(s.store.ids(modality="structure"))
    n_structures = len(s.store.ids(modality="structure"))
    assert len(link_data(t2)["x0"]) == n_structures
    # by default only the focused protein's points are joined (a readable highlight, not a tangle)
    assert len(m.figure.links.data["x0"]) == 1 and not s.link_same_protein
    s.link_same_protein = True
    m._refresh()
    assert len(m.figure.links.data["x0"]) == n_structures  # all proteins' links when asked
    for color_by in ("family", "ec", "organism", "ligand", "source", "split", "modality"):
        src = map_figure(t2, color_by).points
        assert len(src.data["x"]) == len(t2) and len(set(src.data["colour"])) >= 1
    s.link_same_protein = False
    assert len(map_figure(t2, "family", links=s.link_same_protein).links.data["x0"]) == 0


def _points_renderer(fig):
    return next(r for r in fig.figure.renderers if r.data_source is fig.points)


def test_map_figure_legend_follows_colour_by(options, fast_projection):
    app = _loaded_app(options)
    m, s = app.map, app.state
    families = {"kinase", "globin", "protease", "lectin"}
    for color_by, expected in (("family", families), ("ligand", {"NAD", "HEM", "none"})):
        s.color_by = color_by
        fig = m.figure
        labels = [item.label.value for item in fig.figure.legend[0].items]
        assert set(labels) == expected == set(fig.categories) == set(fig.points.data["colour"])
        counts = pd.Series(fig.points.data["colour"]).value_counts()
        assert [counts[c] for c in labels] == sorted(counts.tolist(), reverse=True)  # most frequent first
        mapper = _points_renderer(fig).glyph.fill_color.transform
        assert list(mapper.factors) == labels and len(set(mapper.palette)) == len(labels)
        # the legend sits below the plot in columns (the points keep the width); the figure grows to hold it
        assert fig.figure.legend[0] in fig.figure.below and fig.figure.legend[0].ncols == LEGEND_COLUMNS
        assert fig.figure.height == HEIGHT + legend_height(len(labels)) and m.plot.height == fig.figure.height
    assert legend_height(20) > legend_height(3) > 0
    from bokeh.models import HoverTool

    hover = fig.figure.select_one({"type": HoverTool})
    assert ("ligand", "@colour") in hover.tooltips and ("text", "@text") in hover.tooltips
    unlabelled = map_figure(m.table.assign(family="unlabelled"), "family")
    assert unlabelled.categories == ["unlabelled"]
    assert _points_renderer(unlabelled).glyph.fill_color.transform.palette == [GREY["unlabelled"]]


def test_map_highlights_and_selection_update_in_place(options, fast_projection):
    app = _loaded_app(options)
    m, s = app.map, app.state
    fig = m.figure
    assert fig.hits.data["id"] == [] and fig.focus.data["id"] == []
    s.query_protein("glo00_A", "structure", "sequence", 5)
    hit_ids = [h.id for h in s.query.hits]
    assert m.figure is fig  # the figure stays; only the highlight sources change
    assert sorted(fig.hits.data["id"]) == sorted(hit_ids) and fig.focus.data["id"] == [hit_ids[0]]
    row = m.table[m.table["id"] == hit_ids[0]].iloc[0]
    assert (fig.focus.data["x"][0], fig.focus.data["y"][0]) == (row["x"], row["y"])
    s.focus_id = "kin03_A"
    assert fig.focus.data["id"] == ["kin03_A"]
    s.query = None
    assert fig.hits.data["id"] == []
    # selecting in the figure (what a box, lasso or tap in the browser does) -> selected ids, one point -> focus
    fig.points.selected.indices = [0, 1, 2]
    assert s.selected_ids == m.table["id"].iloc[:3].tolist()
    fig.points.selected.indices = [7]
    assert s.selected_ids == [m.table["id"].iloc[7]] and s.focus_id == m.table["id"].iloc[7]
    # a selection made elsewhere (find by name) shows as the figure's selection
    m.find.value = "globin"
    rows = sorted(fig.points.selected.indices)
    assert rows and set(m.table["id"].iloc[rows]) == set(s.selected_ids) and s.focus_id == s.selected_ids[0]
    # two modalities: hits are ringed in their own (target) modality
    s.map_modalities = ["sequence", "structure"]
    s.query_protein("glo00_A", "structure", "structure", 3)
    assert m.figure is not fig and set(m.figure.hits.data["id"]) == {h.id for h in s.query.hits}
    t = m.table
    own = t[t["id"].isin(m.figure.hits.data["id"]) & (t["modality"] == "structure")]
    assert set(zip(m.figure.hits.data["x"], m.figure.hits.data["y"])) == set(zip(own["x"], own["y"]))


def test_legend_names_drop_a_long_labels_parenthetical_before_cutting_it():
    from explorer.views.map_figure import _short

    assert _short("LDH/MDH (lactate/malate dehydrogenase)") == "LDH/MDH"
    assert _short("Pkinase (PF00069)") == "Pkinase (PF00069)"  # short enough: kept whole
    assert _short("Brassica oleracea var. oleracea") == "Brassica oleracea var. oler…"


def test_find_and_hover_text_are_bounded(options, fast_projection):
    app = _loaded_app(options)
    t = app.map.table
    assert find_ids(t, "KIN03_a")[0] == "kin03_A"
    assert set(find_ids(t, "globin")) >= {"glo00_A", "glo02_A"}
    assert find_ids(t, "") == []
    labels = label_table(app.state.store)
    assert labels["text"].str.len().max() <= 160


def test_hits_table_keeps_every_column_reachable_and_says_when_nothing_is_significant(options, fast_projection):
    from explorer.backend import HIT_COLUMNS, Hit, QueryResult
    from explorer.views.hits import hits_title, row_style

    app = _loaded_app(options)
    t = app.hits.table
    # columns keep their natural width and the table scrolls sideways (ec and organism were cut off before)
    assert t.layout == "fit_data" and t.frozen_columns == ["rank", "id"]
    assert t.theme_classes == ["table-sm"]  # compact rows also when the table joins a served page after its first render
    q = QueryResult("HELLO (5 aa)", "sequence", "sequence",
                    [Hit(1, "kin00_A", 0.7, "sequence", evalue=3.2, significant=False),
                     Hit(2, "kin01_A", 0.6, "sequence", evalue=4.0, significant=False)], notes=["only 5 residues"])
    app.state.query = q
    assert list(t.value.columns) == HIT_COLUMNS and list(t.value["significant"]) == ["no", "no"]
    title = hits_title(q)
    assert "no significant hit" in title and "only 5 residues" in title and "relatives-found" not in title
    # with the pair's power measured, the no-hit state says how little it means for this pair
    powered = hits_title(q, relatives_found=0.03)
    assert "relatives-found" in powered and "3% of held-out queries" in powered and "sequence → sequence" in powered
    q.hits[0].evalue, q.hits[0].significant = 0.001, True
    assert "1 significant" in hits_title(q)
    assert "#d1e7dd" in row_style(pd.Series({"significant": "yes"}))[0]


def test_hits_table_and_detail_follow_the_query(options, fast_projection):
    app = _loaded_app(options)
    s = app.state
    hits = app.hits
    s.query_protein("glo00_A", "structure", "structure", 5)
    table = hits.table.value
    assert list(table["rank"]) == [1, 2, 3, 4, 5] and "glo00_A" not in set(table["id"])  # itself excluded
    assert "glo00_A" in hits.title.object and "5 structure hits" in hits.title.object
    hits.table.selection = [2]
    assert s.focus_id == table["id"].iloc[2]
    mols = app.detail.viewer.molecules
    assert len(mols) == 2 and mols[0]["pdb"].startswith("ATOM") and "RMSD" in app.detail.caption.object
    assert app.detail.superpose.visible
    # a protein with a pocket shows its ligand atoms and pocket residues; with no query, nothing to superpose
    s.query = None
    s.focus_id = "glo00_A"
    (mol,) = app.detail.viewer.molecules
    assert "HETATM" in mol["pdb"] and mol["pocket"] == list(range(11, 19))
    assert not app.detail.superpose.visible
    # a protein without a structure: no empty 3D box, the note says why; the next structure brings the viewer back
    s.focus_id = "glo04_A"
    assert app.detail.viewer not in app.detail._holder.objects and "no structure" in app.detail.caption.object
    assert "glo04_A" in app.detail.info.object
    s.focus_id = "glo00_A"
    assert app.detail._holder.objects[0] is app.detail.viewer and app.detail.viewer.molecules


def test_record_html_escapes_everything(options):
    s = ExplorerState(options)
    html_text = record_html(s.store.record("kin01_A"), ["sequence"])
    assert "<script>" not in html_text and "&lt;script&gt;" in html_text and "&lt;b&gt;" in html_text
    assert "<mark>" in record_html(s.store.record("kin00_A"), ["sequence"])


def test_exports(options, fast_projection):
    app = _loaded_app(options)
    s = app.state
    s.selected_ids = ["kin00_A", "glo01_A"]
    csv = pd.read_csv(selection_csv(s))
    assert list(csv["id"]) == ["kin00_A", "glo01_A"]
    fasta = selection_fasta(s).getvalue().decode()
    headers = [line for line in fasta.splitlines() if line.startswith(">")]
    assert [h.split()[0] for h in headers] == [">kin00_A", ">glo01_A"]
    assert "\n" + s.store.row("kin00_A")["sequence"][:60] + "\n" in fasta
    pq = pd.read_parquet(embeddings_parquet(s, ["sequence", "structure"]))
    assert set(pq["id"]) == {"kin00_A", "glo01_A"} and set(pq["modality"]) == {"sequence", "structure"}
    with h5py.File(io.BytesIO(embeddings_h5(s, "sequence").getvalue()), "r") as h:
        assert sorted(h.keys()) == ["glo01_A", "kin00_A"]
        np.testing.assert_allclose(h["kin00_A"][()], s.resources.stored_vector("sequence", "kin00_A"))
    png = map_png(app.map.table, "family", s.selected_ids).getvalue()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 5000
    s.selected_ids = []
    assert len(pd.read_csv(selection_csv(s))) == 32


def test_evolution_spread_selects_a_family(options, fast_projection):
    app = _loaded_app(options)
    spread = family_spread(app.map.table)
    assert set(spread["family"]) == {"kinase", "globin", "protease", "lectin"} and (spread["points"] == 8).all()
    lone = app.map.table.iloc[[0]].assign(family="a family of one")
    assert "a family of one" not in set(family_spread(pd.concat([app.map.table, lone]))["family"])
    ev = app.evolution
    assert ev.modality.options == ["sequence"]  # nothing of the Evolution tab is computed at page load
    tabs = app.main_area()[-1]
    tabs.active = 2  # Explore, Align live, Evolution, Export
    assert "structure" in ev.modality.options
    ev._spread()
    ev.spread.selection = [0]
    fam = ev.spread.value.iloc[0]["family"]
    assert len(app.state.selected_ids) == 8 and all(i[:3] == fam[:3] for i in app.state.selected_ids)
    ev.modality.value = "structure"
    ev._compute()
    assert app.state.error == "" and "ROC-AUC" in ev.before.object.opts.get().kwargs["title"]


def test_create_app_builds_the_page(options, fast_projection):
    page = create_app(options)
    assert isinstance(page, pn.Column) and page.app.map.table is not None and "OneProt explorer" in page[0].object
    assert isinstance(page.app.hits, HitsView) and isinstance(page.app.map, MapView) and isinstance(page.app.detail, DetailView)


def test_first_page_defers_the_hits_table_3d_viewer_and_data_fields(options, fast_projection):
    """Parts nobody sees before a first query, protein or opened card join the page then, not at cold start."""
    from bokeh.document import Document

    page = create_app(options)
    doc = Document()
    page.server_doc(doc)

    def kinds() -> set[str]:
        return {type(m).__name__ for m in doc.models}

    def titles() -> set[str]:
        return {getattr(m, "title", None) for m in doc.models}

    assert "DataTabulator" not in kinds() and "ReactiveESM" not in kinds() and "Store" not in titles()
    app = page.app
    with pn.io.hold(doc):  # outside a served session: apply the changes to the document at once
        app.state.query_protein("glo00_A", "structure", "sequence", 5)
    assert "DataTabulator" in kinds() and "ReactiveESM" in kinds()  # the hits table, then the first hit in 3D
    assert app.detail.viewer.molecules and list(app.hits.table.value["rank"]) == [1, 2, 3, 4, 5]
    (card,) = [o for o in page.sidebar if isinstance(o, pn.Card)]
    card.collapsed = False
    assert "Store" in titles()


def test_first_page_draws_the_map_before_the_store_opens(options, fast_projection, tmp_path):
    """explorer.prepare writes the default map's first-page file; a page drawn from it is the page the point
    table draws, made without opening the store; the store opens after and fills the rest."""
    import gzip
    import shutil

    from explorer.app import OPENING_STORE, READY, READY_MODEL_LOADING
    from explorer.mapdata import FIRST_PAGE, first_page
    from explorer.options import AppOptions
    from explorer.prepare import main as prepare

    emb = tmp_path / "embeddings"  # a copy: the world's embeddings ship no maps, and other tests rely on that
    shutil.copytree(options.embeddings, emb)
    assert prepare(["--data", options.data, "--embeddings", str(emb)]) == 0
    opts = AppOptions(options.data, options.checkpoint, str(emb))

    app = ExplorerApp(opts)
    assert app.map.draw_first_page() and not app.state.resources.store_loaded
    early = {k: list(v) for k, v in app.map.figure.points.data.items()}
    legend = [item.label.value for item in app.map.figure.figure.legend[0].items]
    assert len(early["id"]) == 32 and app.map.info.object.startswith("32 points · 32 proteins")  # counts from the file
    app._open_store()  # not served: runs at once
    assert app.state.resources.store_loaded and app.query.pick.options and app.map.table is not None
    app.map.load()  # the same map, drawn from the point table
    assert {k: list(v) for k, v in app.map.figure.points.data.items()} == early
    assert [item.label.value for item in app.map.figure.figure.legend[0].items] == legend

    second = ExplorerApp(opts)  # the whole first-page load: map, then the store, then the status
    assert second.load_first_page() and second.opened_early
    assert second.state.status in (READY, READY_MODEL_LOADING) != OPENING_STORE and not second.state.error
    second.state.color_by = "ligand"  # any other map is drawn from the point table
    assert set(second.map.figure.points.data["colour"]) == {"NAD", "HEM", "none"}

    store, f = Path(options.data), emb / "projections" / FIRST_PAGE
    assert first_page(store, emb, ["sequence"], True) is not None
    from explorer.mapdata import write_first_page

    res = second.state.resources
    assert write_first_page(res, ["sequence"], True, max_points=31) is None and not f.exists()  # rasterized map
    assert write_first_page(res, ["sequence"], True, max_points=32) == f and first_page(store, emb, ["sequence"], True)
    assert first_page(store, emb, ["sequence", "structure"], True) is None  # another map
    manifest = emb / "manifest.json"
    manifest.write_text(manifest.read_text() + " ")  # other embeddings: the file is stale
    assert first_page(store, emb, ["sequence"], True) is None
    for damaged in (b"{not json", b"[1, 2]", b'{"format": 1, "columns": 3}'):
        f.write_bytes(gzip.compress(damaged))
        assert first_page(store, emb, ["sequence"], True) is None  # ignored: the store path draws
    assert not ExplorerApp(AppOptions(options.data, options.checkpoint, str(emb))).map.draw_first_page()


def test_the_explorer_imports_without_pandas():
    """The first page is drawn without pandas (half a second of a 2-core cold start with pyarrow)."""
    import subprocess
    import sys

    code = "import sys, explorer.app; sys.exit('pandas' in sys.modules or 'pyarrow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], cwd=Path(__file__).resolve().parents[2]).returncode == 0


def test_large_maps_are_rasterized_and_box_selection_still_works(options, fast_projection):
    options.datashade_above = 10  # pretend 32 points is "large"
    app = _loaded_app(options)
    m = app.map
    assert m._selection.__class__.__name__ == "BoundsXY"
    t = m.table
    x0, x1 = float(t["x"].min()) - 1, float(t["x"].median())
    m._on_bounds(bounds=(x0, float(t["y"].min()) - 1, x1, float(t["y"].max()) + 1))
    expected = set(t["id"][t["x"] <= x1])
    assert set(app.state.selected_ids) == expected and expected


def test_remote_clients_are_refused_unless_allowed(options, monkeypatch):
    from types import SimpleNamespace

    import explorer.app as A

    fake_doc = SimpleNamespace(session_context=SimpleNamespace(request=SimpleNamespace(remote_ip="203.0.113.7")))
    monkeypatch.setattr(type(pn.state), "curdoc", property(lambda self: fake_doc))
    assert A._remote_client(options) == "203.0.113.7"
    fake_doc.session_context.request.remote_ip = "127.0.0.1"
    assert A._remote_client(options) is None
    options.allow_remote = True
    fake_doc.session_context.request.remote_ip = "203.0.113.7"
    assert A._remote_client(options) is None


def test_map_knows_when_drawing_needs_no_umap_run(options, fast_projection, monkeypatch, tmp_path):
    import explorer.mapdata

    monkeypatch.setattr(explorer.mapdata, "_TABLES", {})  # forget maps drawn by earlier tests
    monkeypatch.setattr(explorer.mapdata, "projection_cache", lambda path: tmp_path)  # an empty disk cache
    app = ExplorerApp(options)
    assert not app.map.cached()  # nothing in memory and no projection cache for the tiny world
    app.load()
    assert app.map.cached() and app.map.table is not None
    assert app.map.figure.figure.output_backend == "canvas"
    import explorer.views.map_figure as F

    monkeypatch.setattr(F, "WEBGL_ABOVE", 10)  # pretend 32 points are many
    assert map_figure(app.map.table, "family").figure.output_backend == "webgl"


def test_first_page_imports_no_holoviews_matplotlib_or_markdown(world, tmp_path):
    """The first page (map, query, hits, detail) is plain Bokeh/Panel: the heavy plotting stacks load on demand."""
    import os
    import subprocess
    import sys

    conftest = Path(__file__).resolve().parents[1] / "conftest.py"  # the world's PCA stand-in for UMAP
    code = ("import importlib.util as U, sys; "
            f"spec = U.spec_from_file_location('world', {str(conftest)!r}); w = U.module_from_spec(spec); "
            "spec.loader.exec_module(w); import engine.projection as P; P.project = w.pca_project; "
            "import explorer.app as A; from bokeh.document import Document; from explorer.options import AppOptions; "
            "page = A.create_app(AppOptions(*sys.argv[1:4])); page.server_doc(Document()); "
            "assert page.app.state.error == '', page.app.state.error; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'holoviews', 'matplotlib', 'markdown_it'}))")
    args = [str(world["store"]), str(world["checkpoint"]), str(world["embeddings"])]
    env = {**os.environ, "ONEPROT_CACHE": str(tmp_path / "cache")}
    out = subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, timeout=300, env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    assert out.stdout.strip().splitlines()[-1] == "[]"


def test_remote_clients_must_log_in_unless_no_auth(options, monkeypatch):
    from types import SimpleNamespace

    import explorer.app as A

    fake_doc = SimpleNamespace(session_context=SimpleNamespace(request=SimpleNamespace(remote_ip="203.0.113.7")))
    monkeypatch.setattr(type(pn.state), "curdoc", property(lambda self: fake_doc))
    user = {"name": None}
    monkeypatch.setattr(type(pn.state), "user", property(lambda self: user["name"]))
    options.allow_remote = True
    assert A._unauthenticated_remote(options)
    user["name"] = "alice"  # logged in through Panel's basic auth
    assert not A._unauthenticated_remote(options)
    user["name"] = None
    options.no_auth = True
    assert not A._unauthenticated_remote(options)
    fake_doc.session_context.request.remote_ip = "127.0.0.1"
    options.no_auth = False
    assert not A._unauthenticated_remote(options)


def test_launcher_sets_a_password_beyond_loopback(monkeypatch, capsys):
    import explorer.__main__ as M
    import explorer.app as A

    seen = {}
    monkeypatch.setattr(pn, "serve", lambda *a, **kw: seen.update(kw))
    monkeypatch.setattr(A, "warm_up", lambda options: None)
    monkeypatch.delenv("ONEPROT_EXPLORER_PASSWORD", raising=False)
    assert M.main(["--address", "127.0.0.1"]) == 0 and "basic_auth" not in seen
    seen.clear()
    assert M.main(["--address", "0.0.0.0"]) == 0
    assert seen["basic_auth"] and seen["cookie_secret"] and seen["basic_auth"] in capsys.readouterr().out
    seen.clear()
    assert M.main(["--address", "0.0.0.0", "--password", "s3cret"]) == 0 and seen["basic_auth"] == "s3cret"
    seen.clear()
    assert M.main(["--address", "0.0.0.0", "--no-auth"]) == 0 and "basic_auth" not in seen


def test_status_errors_selection_and_picks_tell_the_truth(options, fast_projection):
    from types import SimpleNamespace

    from engine.errors import OneProtError
    from explorer.app import READY, READY_MODEL_LOADING

    app = ExplorerApp(options)
    app.load()
    s = app.state
    # not "Ready." while the model is still loading (queries would wait for it)
    assert s.status == (READY if s.resources.model_ready else READY_MODEL_LOADING)
    # an error clears the older status line, and its prefix is not repeated ("training: training: ...")
    s.status = "10 sequence hits for something earlier"
    with s.reporting("training"):
        raise OneProtError("another session is training on this server", "training")
    assert s.error == "training: another session is training on this server" and s.status == ""
    # the selection count shows on every tab (the line above the tabs)
    s.selected_ids = ["kin00_A", "kin01_A"]
    assert "2 proteins selected" in app.selection.object
    s.selected_ids = []
    assert app.selection.object == ""
    # a pick runs on the id of its own event, even if the box already holds another value
    app.query.pick.value = "kin01_A"
    app.query._on_pick(SimpleNamespace(new="kin02_A", old="kin01_A"))
    assert s.query is not None and s.query.query_id == "kin02_A" and s.error == ""
    # the search's summary stays: views refreshed by the query (detail, map) run their own blocks inside it
    assert "hits" in s.status and "kin02_A" in s.status, s.status
    assert "running" not in s.status and not s.busy
    # a block with nothing to say gives back the line it found; "query sequence" is not prefixed "sequence query"
    summary = s.status
    with s.reporting("detail"):
        pass
    assert s.status == summary
    # a query from elsewhere (a URL, "Query with this protein") shows in the form, without running again
    shown = s.query_protein("kin03_A", "sequence", "structure", 5)
    q = app.query
    assert (q.pick.value, q.pick.value_input, q.pick_as.value, q.target.value) == ("kin03_A", "kin03_A", "sequence", "structure")
    assert s.query is shown and shown.query_modality == "sequence"  # filling the form ran no second search
    q.target.value = "sequence"
    s.query_sequence("MKV" * 2000, "sequence", 5)  # 6,000 residues: refused, with the limit named
    assert s.error == "query sequence: sequence has 6,000 residues, above the limit of 5,000", s.error
    assert s.query is None  # the earlier hits went: they would pass for this input's
    # find by name: every match is counted; a find with none clears the earlier selection
    app.map.find.value = "kin"
    assert len(s.selected_ids) == 8 and s.status == "8 matches for 'kin'"
    app.map.find.value = "xyzzy"
    assert s.selected_ids == [] and "selection cleared" in s.status


def test_colours_are_one_per_label_value_across_views_and_joint_maps_close_the_gap(options, fast_projection):
    from bokeh.transform import factor_cmap  # noqa: F401  (the figure's colour mapper)

    from explorer.mapdata import store_categories

    app = _loaded_app(options)
    m, s = app.map, app.state

    def colours(fig):
        mapper = _points_renderer(fig).glyph.fill_color["transform"]
        return dict(zip(mapper.factors, mapper.palette))

    seq = colours(m.figure)
    s.map_modalities = ["structure"]
    struct = colours(m.figure)
    shared = set(seq) & set(struct)
    assert shared and all(seq[c] == struct[c] for c in shared)
    cats = store_categories(s.store, "family")
    assert all(c in cats or c in ("other", "unlabelled") for c in seq)
    # a joint map centres each modality by default, and says so
    s.map_modalities = ["sequence", "structure"]
    assert "modality gap closed" in m.info.object and m.close_gap.visible
    centred = m.table[["x", "y"]].to_numpy().copy()
    s.close_gap = False
    assert "own island" in m.info.object and not (m.table[["x", "y"]].to_numpy() == centred).all()


def test_evolution_shows_the_modality_gap(options, fast_projection):
    from engine.projection import centre_modalities, modality_gap

    app = _loaded_app(options)
    app._tab_shown("Evolution")
    assert "modality gap" in app.evolution.gap.object and "structure" in app.evolution.gap.object
    emb = app.state.resources.embeddings
    vec = {m: np.asarray(emb.vectors(m)) for m in ("sequence", "structure")}
    before = modality_gap(vec)["structure"]["centre_distance"]
    after = modality_gap(centre_modalities(vec))["structure"]["centre_distance"]
    assert before > 0.05 and after < 0.5 * before, (before, after)


def test_a_hit_is_fitted_on_its_query_by_structure_not_by_sequence(monkeypatch):
    from engine.modality import ProteinRecord
    from explorer.views import structure

    steps = np.random.default_rng(3).standard_normal((80, 3))
    ca = np.cumsum(3.8 * steps / np.linalg.norm(steps, axis=1, keepdims=True), axis=0)
    coords = np.repeat(ca[:, None, :], 4, axis=1).astype(np.float32)
    rot = np.array([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0], [0.0, 0.0, 1.0]])
    query = ProteinRecord(id="q", sequence="A" * 80, coords=coords)
    # the same fold under another sequence (nothing to align letter by letter), turned and moved away
    hit = ProteinRecord(id="h", sequence="W" * 80, coords=(coords @ rot.T + 20.0).astype(np.float32))
    mols, caption = structure.query_and_hit(query, hit)
    assert "TM-align: TM-score 1.00" in caption and "over 80 aligned residues" in caption
    assert len(mols) == 2 and mols[1]["pdb"].splitlines()[1][30:54] == mols[0]["pdb"].splitlines()[1][30:54]
    monkeypatch.setattr(structure, "MAX_TM_ALIGN_PRODUCT", 79 * 80)  # too long for an interactive TM-align
    assert "Kabsch on sequence-aligned CA" in structure.query_and_hit(query, hit)[1]
