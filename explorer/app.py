"""The OneProt explorer. Serve with `panel serve explorer/app.py [--args --data S --checkpoint C --embeddings E]`.

Panel binds to localhost unless `--address` is given; keep it that way on shared machines.
"""

from __future__ import annotations

import html
import threading

import panel as pn
import param

from explorer.options import AppOptions, parse_options
from explorer.state import ExplorerState
from explorer.views.detail import DetailView
from explorer.views.evolution import EvolutionView
from explorer.views.export import ExportView
from explorer.views.hits import HitsView
from explorer.views.map import MapView
from explorer.views.query import QueryView
from explorer.views.training import TrainingView

TITLE = "OneProt explorer"
ACCENT = "#2b5d8a"
MODEL_POLL_MS = 500
TABLE_WAIT_S = 10.0  # the map table is built once the page is drawn, or after this long without word from the browser
ERROR_STYLE = {"background": "#f8d7da", "color": "#842029", "border": "1px solid #f5c2c7", "border-radius": "6px",
               "padding": "6px 14px"}  # Bootstrap's danger alert, without the Markdown that pn.pane.Alert renders
READY = "Ready. Pick a protein or upload a structure on the left, or lasso points on the map."
READY_MODEL_LOADING = ("Map ready; the model is still loading: a search started now waits for it "
                       "(the map, its selection, find and the detail pane work at once).")
# the map drawn from its first-page file, the store still opening (a fraction of a second); never says "ready"
OPENING_STORE = "Map drawn; opening the store (a search started now waits for it)…"
_WARMED: set[tuple[str, str, str]] = set()
_WARM_LOCK = threading.Lock()

pn.extension("tabulator", notifications=False, sizing_mode="stretch_width")


def _leave_out_mathjax() -> None:
    """Serve pages without Bokeh's MathJax bundle unless a Bokeh model on the page needs it.

    Panel adds the bundle (1.8 MB; its evaluation and plugin registration took ~0.1-0.2 s of each page's
    start in chromium on 2 cores) to any page holding an HTML pane, in case the pane renders math. Every HTML
    pane here keeps Panel's default disable_math=True and no page uses Markdown or LaTeX, so it is dead
    weight. Panel has no public switch for served pages: its check is narrowed to Bokeh's own (models that
    carry TeX). tests/explorer/test_served.py checks the served page leaves the bundle out.
    """
    import panel.io.resources as resources

    if hasattr(resources, "_panel_use_mathjax") and hasattr(resources, "_use_mathjax"):
        resources._panel_use_mathjax = resources._use_mathjax


_leave_out_mathjax()


class DataView(pn.viewable.Viewer):
    """Store / checkpoint / embeddings paths, checked against the allowed folders."""

    state = param.ClassSelector(class_=ExplorerState)

    def __init__(self, **params):
        super().__init__(**params)
        s = self.state
        self.data = pn.widgets.TextInput(name="Store", value=s.data)
        self.checkpoint = pn.widgets.TextInput(name="Checkpoint", value=s.checkpoint)
        self.embeddings = pn.widgets.TextInput(name="Embeddings", value=s.embeddings)
        self.open = pn.widgets.Button(name="Open", button_type="default")
        self.open.on_click(lambda _: s.open_paths(self.data.value, self.checkpoint.value, self.embeddings.value))
        self.rule = pn.pane.HTML(f"<small>{html.escape(s.roots.describe())}</small>")
        self.stats = pn.pane.HTML("")
        s.param.watch(self._sync, ["data", "checkpoint", "embeddings"])

    def refresh(self) -> None:
        s = self.state
        with s.reporting("data"):
            st = s.store.stats()
            mods = ", ".join(f"{m} {n}" for m, n in st["modalities"].items() if n)
            self.stats.object = (f"<small><b>{st['proteins']:,}</b> proteins · {st['families']} families · "
                                 f"{html.escape(mods)}</small>")

    def _sync(self, *_) -> None:
        s = self.state
        self.data.value, self.checkpoint.value, self.embeddings.value = s.data, s.checkpoint, s.embeddings
        self.refresh()

    def __panel__(self):
        return pn.Column(self.stats, self.data, self.checkpoint, self.embeddings, self.open, self.rule)


LAZY_TABS = ("Align live", "Evolution", "Export")


class ExplorerApp(pn.viewable.Viewer):
    """Composes the views around one ExplorerState; `load()` fills them once the page is up."""

    state = param.ClassSelector(class_=ExplorerState)

    @property
    def training(self) -> TrainingView:
        return self._view("Align live")

    @property
    def evolution(self) -> EvolutionView:
        return self._view("Evolution")

    @property
    def export(self) -> ExportView:
        return self._view("Export")

    def _view(self, name: str) -> pn.viewable.Viewer:
        """The view of a tab other than Explore, built on first use (a third of the page's widgets)."""
        if name not in self._views:
            s = self.state
            if name == "Align live":
                self._views[name] = TrainingView(state=s)
            elif name == "Evolution":
                self._views[name] = EvolutionView(state=s, map_view=self.map)
            else:
                self._views[name] = ExportView(state=s, map_view=self.map)
                self._views[name].refresh()
        return self._views[name]

    def __init__(self, options: AppOptions | None = None, **params):
        params.setdefault("state", ExplorerState(options or AppOptions()))
        super().__init__(**params)
        s = self.state
        self.map = MapView(state=s)
        self.query = QueryView(state=s)
        self.hits = HitsView(state=s)
        self.detail = DetailView(state=s)
        # the other tabs' views are built when first opened (or first asked for), not while the page starts
        self._views: dict[str, pn.viewable.Viewer] = {}
        self._holders = {name: pn.Column(sizing_mode="stretch_width") for name in LAZY_TABS}
        self.data = DataView(state=s)
        self.alert = pn.pane.HTML("", visible=False, sizing_mode="stretch_width", styles=ERROR_STYLE)
        self.status = pn.pane.HTML("", sizing_mode="stretch_width", styles={"color": "#555", "font-size": "13px"})
        # the selection count on every tab (it used to show on Export only)
        # fixed width: the status line beside it takes the rest (half the row each wrapped the status early)
        self.selection = pn.pane.HTML("", width=220, styles={"color": "#2b5d8a", "font-size": "13px"})
        s.param.watch(self._show_selection, "selected_ids")
        self.model_note = pn.pane.HTML("", sizing_mode="stretch_width", styles={"color": "#555"})
        s.param.watch(self._show_error, "error")
        s.param.watch(self._show_status, "status")
        s.param.watch(self._reload_views, ["data", "embeddings", "checkpoint"])
        self._shown_tabs = {"Explore"}  # tabs opened in this session; the others fill when first shown
        self.opened_early = False  # the page was drawn from the first-page file, the store opened after it

    def load(self) -> None:
        """Fill the views from the store, embeddings and map (projection read or computed)."""
        with pn.io.hold():  # one batch of changes, not one message per widget
            self.query.refresh_options()
            self.map.load()
            self._watch_model()
            if not self.state.error:
                self.state.status = READY if self.state.resources.model_ready else READY_MODEL_LOADING

    def load_first_page(self) -> bool:
        """Draw the map from the embeddings' first-page file when one matches this store and map
        (explorer.mapdata.first_page: no store, no pandas), then open the store in a thread: the stored-protein
        list and "Ready." follow it (`_store_opened`). False, with nothing done, when there is no such file."""
        with pn.io.hold():
            if not self.map.draw_first_page():
                return False
            self._watch_model()
            self.state.status = OPENING_STORE
        self.opened_early = True
        self._open_store()
        return True

    def _open_store(self) -> None:
        """In a thread: open the store (its index only, no pandas: engine.data.store) and finish the page
        (`_store_opened`); then, once the browser has drawn the page, build the map's point table, which reads
        the store's full table (pandas)."""
        from panel.io.state import set_curdoc

        doc = pn.state.curdoc
        served = doc is not None and doc.session_context is not None
        drawn = threading.Event()  # set once the browser has drawn this page
        if served:
            pn.state.onload(drawn.set)
        else:
            drawn.set()

        def work() -> None:
            try:
                _prepare_imports()
                _ = self.state.store  # shared by every session: opened once per server
            except Exception:  # noqa: BLE001 - _store_opened opens it again and reports the error in the page
                pass
            if served:
                with set_curdoc(doc):  # back on the session's event loop, with its document lock
                    pn.state.execute(self._store_opened, schedule=True)
            else:
                self._store_opened()
            # then the drawn map's point table (selection, find, highlights), before anyone asks for it, but
            # not while the server still sends the page: built then (pandas, one GIL, 2 cores) it held the
            # page's last frames back by ~0.15 s
            drawn.wait(TABLE_WAIT_S)
            try:
                _ = self.map.table
            except Exception:  # noqa: BLE001 - reported by the view that asks for it
                pass

        thread = threading.Thread(target=work, name="explorer-open-store", daemon=True)
        if served:  # after this page is built and sent: its models and HTML need the same 2 cores
            doc.add_next_tick_callback(thread.start)
        else:  # tests and notebooks: the page is complete when load_first_page() returns
            thread.start()
            thread.join()

    def _store_opened(self) -> None:
        s = self.state
        with pn.io.hold():
            opening = s.status == OPENING_STORE  # not replaced meanwhile by a search's own status
            self.query.refresh_options()  # opens the store here if the thread could not (its error shows)
            if opening and not s.error:
                s.status = READY if s.resources.model_ready else READY_MODEL_LOADING

    def _watch_model(self) -> None:
        """Load the model once the browser has drawn this page, and say when it is ready.

        Starting earlier would compete with building and drawing the page on a small machine. Queries
        that need the model before then load it themselves (and wait for it).
        """
        res = self.state.resources
        if res.model_ready:
            self.model_note.object = _model_note(res)
            return
        self.model_note.object = "<small>Model: loading in the background (every search embeds its query with it, so searches wait for it)…</small>"

        def tick() -> None:
            res.load_model_in_background()
            if res.model_ready or res.model_error:
                self.model_note.object = _model_note(res)
                if self.state.status == READY_MODEL_LOADING:
                    self.state.status = READY
                poller.stop()

        if pn.state.curdoc is None or pn.state.curdoc.session_context is None:  # not served (notebook, tests)
            self.model_note.object = "<small>Model: loads with the first query that needs it.</small>"
            return
        poller = None

        def start() -> None:  # after the browser has drawn the page: loading competes with nothing then
            nonlocal poller
            poller = pn.state.add_periodic_callback(tick, period=MODEL_POLL_MS)

        pn.state.onload(start)

    def _reload_views(self, *_) -> None:
        self._watch_model()
        self.query.refresh_options()
        if "Export" in self._views:
            self.export.refresh()
        if "Evolution" in self._shown_tabs:
            self.evolution.refresh()

    def _show_selection(self, event) -> None:
        n = len(event.new)
        self.selection.object = (f"<span class='selection-count'>{n:,} protein{'s' if n != 1 else ''} selected</span>"
                                 if n else "")

    def _tab_shown(self, name: str) -> None:
        """Fill a tab the first time it is opened (nothing of it is built or computed while the page starts)."""
        if name in self._holders and not self._holders[name].objects:
            self._holders[name].objects = [self._view(name)]
        if name == "Align live":
            self.training.refresh()  # another session may have started (or ended) a run meanwhile
        if name in self._shown_tabs:
            return
        self._shown_tabs.add(name)
        if name == "Evolution":
            self.evolution.refresh()

    def _show_error(self, event) -> None:
        # an HTML pane: escape so file names or pasted text cannot inject markup
        self.alert.object = html.escape(event.new)
        self.alert.visible = bool(event.new)

    def _show_status(self, event) -> None:
        self.status.object = html.escape(event.new)

    def main_area(self) -> pn.viewable.Viewable:
        explore = pn.Row(
            pn.Column(self.map, self.hits, sizing_mode="stretch_width"),
            # fixed width, height to fit (sizing_mode="fixed" wants a height too: Bokeh warned W-1005 per page)
            pn.Column(pn.pane.HTML("<h3>Detail</h3>"), self.detail, width=480, width_policy="fixed", height_policy="fit"),
            sizing_mode="stretch_width",
        )
        pages = [("Explore", explore), *((name, self._holders[name]) for name in LAZY_TABS)]
        tabs = pn.Tabs(*pages, dynamic=True, sizing_mode="stretch_width")
        tabs.param.watch(lambda event: self._tab_shown(pages[event.new][0]), "active")
        return pn.Column(self.alert, pn.Row(self.status, self.selection, sizing_mode="stretch_width"), tabs,
                         sizing_mode="stretch_width")

    def sidebar(self) -> list:
        # the folded Data card gets its fields when first opened: until then they would be built and drawn unseen
        card = pn.Card(title="Data", collapsed=True, sizing_mode="stretch_width")

        def open_card(event) -> None:
            if not event.new and not card.objects:
                self.data.refresh()
                card.objects = [self.data]

        card.param.watch(open_card, "collapsed")
        return [pn.pane.HTML("<h3>Query</h3>"), self.model_note, self.query, card]

    def __panel__(self):
        return pn.Row(pn.Column(*self.sidebar(), width=340), self.main_area())


def create_app(options: AppOptions | None = None) -> pn.viewable.Viewable:
    """Build one session's page (explorer.app.page_layout around an ExplorerApp), filled at once unless UMAP must run.

    URL arguments run a query at once, so a result can be shared as a link:
    `/app?protein=ID&as=structure&target=sequence&k=10`.
    """
    options = options or parse_options()
    remote = _remote_client(options)
    if remote:
        return pn.pane.HTML(f"<h3>{TITLE}</h3><p>This server only serves pages to its own machine; "
                            f"request from {html.escape(remote)} refused. Restart it with "
                            "<code>--args --allow-remote</code> to serve other machines.</p>")
    if _unauthenticated_remote(options):
        return pn.pane.HTML(f"<h3>{TITLE}</h3><p>Remote clients must log in, and this server has no password. "
                            "Serve it with <code>python -m explorer --address ADDRESS</code> (it sets one) or "
                            "<code>panel serve --basic-auth PASSWORD --cookie-secret SECRET</code>; "
                            "<code>--args --no-auth</code> serves without one.</p>")
    app = ExplorerApp(options)
    page = page_layout(app)
    served = pn.state.curdoc is not None and pn.state.curdoc.session_context is not None
    if served and not _session_arg("protein") and not app.state.resources.store_loaded and app.load_first_page():
        # The server's first page, its map from the first-page file the embeddings ship; the store opens in a
        # thread after (pandas and the store cost half a second of a 2-core cold start)
        pass
    elif served and not app.map.cached():
        # UMAP has to run: send the page first, the map follows with a spinner on it
        pn.state.onload(app.load)
    else:
        # The whole page in its first render. Filling it after the render instead costs a patch per
        # view, and the browser re-lays out the page for each: measured 2-3x slower on 2 cores.
        app.load()
    _run_url_query(app)
    return page


HEADER_STYLE = {"background": ACCENT, "color": "white", "font-size": "22px", "padding": "12px 24px",
                "margin": "0", "box-shadow": "0 1px 3px rgba(0,0,0,0.25)"}
SIDEBAR_STYLE = {"border-right": "1px solid #e0e0e0", "padding-right": "10px"}


def page_layout(app: ExplorerApp) -> pn.Column:
    """The page: a title bar over the sidebar (queries, data) and the main area (tabs), as plain Panel layouts.

    Not one of Panel's templates: the Bootstrap template (its stylesheets, script and per-widget design)
    cost ~0.2 s of every page's start in chromium on 2 cores, paired over 10 loads each
    (benchmarks/app_startup.py measures the whole cold start). `.app` lets tests and scripts reach the
    views, `.sidebar` the sidebar's parts.
    """
    sidebar = app.sidebar()
    header = pn.pane.HTML(f"<div class='oneprot-title'>{html.escape(TITLE)}</div>", styles=HEADER_STYLE,
                          sizing_mode="stretch_width", margin=0)
    body = pn.Row(pn.Column(*sidebar, width=350, styles=SIDEBAR_STYLE), app.main_area(), sizing_mode="stretch_width")
    page = pn.Column(header, body, sizing_mode="stretch_width", margin=0)
    page.app, page.sidebar = app, sidebar
    return page


def _session_arg(name: str) -> str | None:
    values = (pn.state.session_args or {}).get(name)
    return values[0].decode(errors="replace") if values else None


def _run_url_query(app: ExplorerApp) -> None:
    protein = _session_arg("protein")
    if not protein:
        return
    s = app.state
    try:
        k = int(_session_arg("k") or 10)
    except ValueError:
        k = 10
    s.query_protein(protein, _session_arg("as") or "structure", _session_arg("target") or "sequence", k)


def _remote_client(options: AppOptions) -> str | None:
    """The client's address when it is not this machine and remote clients were not allowed."""
    return None if options.allow_remote else _client_ip_if_remote()


def _unauthenticated_remote(options: AppOptions) -> bool:
    """A non-loopback client on a server with neither a login (Panel basic auth / OAuth) nor --no-auth."""
    return bool(_client_ip_if_remote()) and not options.no_auth and not pn.state.user


def _client_ip_if_remote() -> str | None:
    import ipaddress

    ctx = pn.state.curdoc.session_context if pn.state.curdoc is not None else None
    request = getattr(ctx, "request", None) if ctx is not None else None
    ip = getattr(request, "remote_ip", None) if request is not None else None
    if not ip:
        return None
    try:
        return None if ipaddress.ip_address(ip.split("%")[0]).is_loopback else ip
    except ValueError:
        return ip


def _model_note(res) -> str:
    if res.model_error:
        return f"<small>Model: could not be loaded: {html.escape(res.model_error)}</small>"
    model = res.model
    digest = (getattr(model, "checkpoint_meta", None) or {}).get("model_hash", "")
    return (f"<small>Model: ready ({html.escape(', '.join(model.modalities))}"
            f"{'; model hash ' + html.escape(str(digest)[:8]) if digest else ''}).</small>")


def _prepare_imports() -> None:
    """Import, before a thread builds a map table, what a session's first hits table imports too: two threads
    importing the same package at once can deadlock in importlib (seen: narwhals.stable, which bokeh imports
    on a session's first table while the warm-up built the map's table)."""
    import narwhals.stable.v1  # noqa: F401


def warm_up(options: AppOptions) -> None:
    """Once per server process: open the data and project the default map in the background."""
    key = (options.data, options.checkpoint, options.embeddings)
    with _WARM_LOCK:
        if key in _WARMED:
            return
        _WARMED.add(key)

    _prepare_imports()
    from explorer.backend import get_resources
    from explorer.mapdata import point_table

    def work() -> None:
        try:
            res = get_resources(*key)
            point_table(res, ["sequence"], 0)
        except Exception as exc:  # the session that needs it will report the error in its page
            print(f"explorer warm-up: {exc}")

    threading.Thread(target=work, name="explorer-warm-up", daemon=True).start()


# `panel serve` runs this file as a module named bokeh_app_<hash>: the test that pn.state.served makes, without
# its inspect.stack(), which reads the source of every frame on the stack (0.15 s of each page's start-up here)
if __name__.startswith("bokeh_app_"):
    _options = parse_options()
    _page = create_app(_options)
    if not getattr(getattr(_page, "app", None), "opened_early", False):
        warm_up(_options)  # a page drawn from its first-page file opens the store itself, after this page is built
    _page.servable(title=TITLE)
