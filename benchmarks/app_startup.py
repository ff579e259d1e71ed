"""Cold start of the explorer vs an empty Panel app served the same way, and structure-query latency.

    python benchmarks/app_startup.py [--data demo --checkpoint demo --embeddings demo] [--runs 3] [--compare REV]

For each app, with headless Debian chromium already open: launch `panel serve` (fresh process,
localhost), request the page as soon as the server listens, and time from launch to the page's HTML
received, to the Bokeh document rendered ("Bokeh items were rendered successfully") and, for the
explorer, to "Ready." / "Map ready" (map drawn, the store open and the stored-protein list filled: the page is
interactive; the map's point table and the store's full table are read in a thread right after the browser
has drawn the page, and a selection or detail click in that ~0.4 s waits for them) and to "Model: ready" (model and text backbone
loaded in the background: searches, which embed their query live, answer). Then, in this process, the latency of a query by
structure after the model is loaded, against the bare engine path (model.embed + index search) as
baseline. Prints a table and writes benchmarks/results/app_startup.md.
With --compare REV, the explorer of an earlier commit (a temporary git worktree) is served in turns with
both, so a change's effect is read in one run rather than across runs on a host whose speed drifts.
"""

from __future__ import annotations

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import machine
from engine.cli import add_embeddings_option

REPO = Path(__file__).resolve().parent.parent
# the same headless chromium the browser tests drive (tests/browser_driver.py, a test helper this script cannot import)
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]

EMPTY_APP = 'import panel as pn\npn.extension()\npn.pane.Markdown("# Empty baseline").servable(title="Empty baseline")\n'


def serve_script(script: Path, app_args: list[str], log: Path, cwd: Path = REPO) -> tuple[subprocess.Popen, int, float]:
    port = free_port()
    cmd = [sys.executable, "-m", "panel", "serve", str(script), "--port", str(port), "--address", "127.0.0.1",
           "--allow-websocket-origin", f"127.0.0.1:{port}", "--num-procs", "1"]
    if app_args:
        cmd += ["--args", *app_args]
    t0 = time.perf_counter()
    # cwd first on the path (python -m): a worktree of another commit serves its own explorer and engine
    proc = subprocess.Popen(cmd, cwd=cwd, stdout=open(log, "w"), stderr=subprocess.STDOUT)
    return proc, port, t0


def worktree(rev: str, where: Path) -> Path:
    """A detached git worktree of `rev` (removed by the caller): an earlier explorer to serve beside this one."""
    subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", "--force", str(where), rev], check=True,
                   capture_output=True)
    return where


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def stop(proc: subprocess.Popen) -> None:
    """Kill a measured server (nothing of its state is kept, so no graceful shutdown is waited for)."""
    proc.kill()
    proc.wait(15)


def wait_port(port: int, timeout: float) -> None:
    """Until the server accepts TCP connections (no page is requested, so no session is built)."""
    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    raise TimeoutError(f"nothing listens on port {port} after {timeout} s")


def measure(script: Path, app_args: list[str], ready_text: str | None, model_text: str | None, log: Path,
            cwd: Path = REPO) -> dict:
    """Seconds from `panel serve` launch to: HTML received, Bokeh rendered, `ready_text`, `model_text` shown;
    and chromium's main-thread busy time (CDP Performance metrics TaskDuration, `browser_task`) up to the
    page rendered, or up to `ready_text` when one is given.

    The browser is started before the server, as a user's browser is already open; the page is
    requested as soon as the server listens.
    """
    from playwright.sync_api import sync_playwright

    out = {}
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = b.new_page(viewport={"width": 1500, "height": 950})
        cdp = page.context.new_cdp_session(page)
        cdp.send("Performance.enable")
        rendered = {}
        page.on("console", lambda m: rendered.setdefault("t", time.perf_counter())
                if "rendered successfully" in m.text else None)
        proc, port, t0 = serve_script(script, app_args, log, cwd)
        try:
            wait_port(port, 300)
            url = f"http://127.0.0.1:{port}/{script.stem}"
            asked = time.perf_counter()
            page.goto(url, timeout=300_000)
            response_end = page.evaluate("performance.getEntriesByType('navigation')[0].responseEnd")  # ms
            out["http"] = asked - t0 + response_end / 1000
            page.wait_for_function("() => window.Bokeh && Bokeh.documents && Bokeh.documents.length > 0",
                                   timeout=300_000)
            deadline = time.perf_counter() + 60
            while "t" not in rendered and time.perf_counter() < deadline:
                page.wait_for_timeout(20)
            out["rendered"] = rendered.get("t", time.perf_counter()) - t0
            for key, text in (("ready", ready_text), ("model", model_text)):
                if text:
                    page.get_by_text(text, exact=False).first.wait_for(timeout=300_000)
                    out[key] = time.perf_counter() - t0
                if key == "ready":  # the browser's own work up to interactive (the empty app: rendered)
                    metrics = {m["name"]: m["value"] for m in cdp.send("Performance.getMetrics")["metrics"]}
                    out["browser_task"] = metrics["TaskDuration"]
        finally:
            b.close()
            stop(proc)
    return out


def query_latency(data: str, checkpoint: str, embeddings: str, repeats: int = 7) -> dict:
    """Median seconds of an app structure query vs the bare engine path, model already loaded."""
    import numpy as np

    from engine.data.items import item_for
    from explorer.options import AppOptions
    from explorer.state import ExplorerState

    s = ExplorerState(AppOptions(data, checkpoint, embeddings))
    store, res = s.store, s.resources
    ids = store.ids(modality="structure")
    rng = np.random.default_rng(0)
    picks = [ids[i] for i in rng.choice(len(ids), size=repeats + 1, replace=False)]
    t = time.perf_counter()
    _ = res.model
    load = time.perf_counter() - t
    s.query_protein(picks[0], "structure", "sequence", 10)  # warm: index build, first forward pass
    app_times, bare_times = [], []
    for pid in picks[1:]:
        t = time.perf_counter()
        s.query_protein(pid, "structure", "sequence", 10)
        app_times.append(time.perf_counter() - t)
        assert not s.error, s.error
        t = time.perf_counter()
        vec = res.model.embed("structure", [item_for(store, pid, "structure")])
        res.embeddings.index("sequence").search(vec, 10)
        bare_times.append(time.perf_counter() - t)
    return {"model_load": load, "app": statistics.median(app_times), "bare": statistics.median(bare_times),
            "n_sequences": len(res.embeddings.ids("sequence"))}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default="demo")
    ap.add_argument("--checkpoint", default="demo")
    add_embeddings_option(ap)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--out", default=str(REPO / "benchmarks" / "results" / "app_startup.md"))
    ap.add_argument("--compare", metavar="REV", help="also serve this commit's explorer in turns (a temporary worktree)")
    args = ap.parse_args()
    if not os.path.exists(CHROMIUM):
        sys.exit(f"{CHROMIUM} is missing: install Debian chromium (scripts/setup.sh --dev does)")
    app_args = ["--data", args.data, "--checkpoint", args.checkpoint, "--embeddings", args.embeddings]
    rows = []
    load_before = os.getloadavg()[0]
    earlier = []  # the --compare commit's explorer, per run
    with tempfile.TemporaryDirectory(prefix="oneprot-bench-") as tmp:
        empty = Path(tmp) / "empty.py"
        empty.write_text(EMPTY_APP)
        tree = worktree(args.compare, Path(tmp) / "compare") if args.compare else None
        try:
            for run in range(args.runs):
                # interleaved, so all see the same machine load
                base = measure(empty, [], None, None, Path(tmp) / "empty.log")
                # "Map ready; the model is still loading" or "Ready." (model already in): the page is interactive
                ours = measure(REPO / "explorer" / "app.py", app_args, "ready", "Model: ready", Path(tmp) / "app.log")
                if tree is not None:
                    earlier.append(measure(tree / "explorer" / "app.py", app_args, "ready", None,
                                           Path(tmp) / "compare.log", cwd=tree))
                rows.append((base, ours))
                print(f"run {run + 1}: empty {base}  explorer {ours}" + (f"  {args.compare} {earlier[-1]}" if tree else ""),
                      flush=True)
        finally:
            if tree is not None:
                subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)], check=False)
    med = lambda key, i: statistics.median(r[i][key] for r in rows if key in r[i])  # noqa: E731
    lines = ["| measure | empty Panel app (s) | explorer (s) | ratio |", "|---|---|---|---|"]
    for key, label in (("http", "launch -> page HTML received"), ("rendered", "launch -> Bokeh document rendered in chromium")):
        if all(key in r[0] and key in r[1] for r in rows):
            b, o = med(key, 0), med(key, 1)
            lines.append(f"| {label} | {b:.2f} | {o:.2f} | {o / b:.2f}x |")
    if all("ready" in r[1] for r in rows) and all("rendered" in r[0] for r in rows):
        # the floor: the explorer interactive within 1.5x of the empty app's rendered page
        lines.append(f"| launch -> page interactive ('Map ready' / 'Ready.': map drawn, store open); "
                     f"empty app: rendered | {med('rendered', 0):.2f} | {med('ready', 1):.2f} | "
                     f"{med('ready', 1) / med('rendered', 0):.2f}x |")
    if all("browser_task" in r[0] and "browser_task" in r[1] for r in rows):
        b, o = med("browser_task", 0), med("browser_task", 1)
        lines.append(f"| chromium main-thread busy until interactive (CDP TaskDuration; empty app: until rendered) | "
                     f"{b:.2f} | {o:.2f} | {o / b:.2f}x |")
    if earlier:
        e_ready = statistics.median(r["ready"] for r in earlier)
        lines.append(f"| launch -> page interactive, the explorer at {args.compare} (served in turns in this run) | "
                     f"{med('rendered', 0):.2f} | {e_ready:.2f} | {e_ready / med('rendered', 0):.2f}x |")
    if all("model" in r[1] for r in rows):
        lines.append(f"| launch -> 'Model: ready' (searches answer: they embed their query live) | - | {med('model', 1):.2f} | - |")
    if all("ready" in r[1] and "rendered" in r[0] for r in rows):
        # each run's own ratio (the explorer and the empty app measured back to back): how far the host's drift
        # moves the headline
        own = sorted(r[1]["ready"] / r[0]["rendered"] for r in rows)
        spread = f"interactive / empty rendered within each run: median {statistics.median(own):.2f}x, range " \
                 f"{own[0]:.2f}-{own[-1]:.2f}x"
        if earlier:
            theirs = sorted(e["ready"] / r[0]["rendered"] for e, r in zip(earlier, rows))
            gains = sorted(e["ready"] - r[1]["ready"] for e, r in zip(earlier, rows))
            spread += (f"; {args.compare}: median {statistics.median(theirs):.2f}x, range {theirs[0]:.2f}-{theirs[-1]:.2f}x; "
                       f"time saved against it per run: median {statistics.median(gains):.2f} s, range "
                       f"{gains[0]:.2f}-{gains[-1]:.2f} s")
        lines += ["", spread + "."]
    lines += ["", "Per run (s): " + "; ".join(
        f"run {i + 1}: " + ", ".join(f"{k} {v:.2f}" for k, v in r[1].items()) for i, r in enumerate(rows))]
    try:
        q = query_latency(args.data, args.checkpoint, args.embeddings)
    except AssertionError as exc:  # e.g. embeddings made by another checkpoint: report, keep the start-up table
        q = None
        lines += ["", f"Structure query not measured: {exc}"]
    if q is not None:
        lines += ["", "| structure query (model loaded, median of 7) | bare engine (s) | explorer (s) | ratio |", "|---|---|---|---|",
                  f"| embed structure + search {q['n_sequences']:,} sequences, k=10 | {q['bare']:.3f} | {q['app']:.3f} | "
                  f"{q['app'] / q['bare']:.2f}x |",
                  "", f"Model load (once per server): {q['model_load']:.2f} s."]
    header = [f"# Explorer start-up and query latency", "",
              f"Machine: {machine()}; {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; "
              f"load average {load_before:.1f} before the runs, {os.getloadavg()[0]:.1f} after; data `{args.data}`, checkpoint `{args.checkpoint}`, "
              f"embeddings `{args.embeddings}`; {args.runs} interleaved runs, medians. Command: "
              f"`{' '.join(['python benchmarks/app_startup.py', *sys.argv[1:]])}`.", ""]
    text = "\n".join(header + lines) + "\n"
    print(text)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
