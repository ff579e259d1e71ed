"""Test helper: start the explorer with `panel serve` on a free localhost port and drive it in headless chromium.

Used by the served-app and browser tests and by tests/screenshot.py (the README screenshot). It lives with the
tests, not in the explorer package: the app never needs it. Pytest puts tests/ on the import path (the
conftest.py folder, prepend import mode), so tests import it as `browser_driver`; `python tests/screenshot.py`
finds it beside itself. Uses the system chromium (/usr/bin/chromium); never downloads a browser.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
# true once a 3Dmol viewer (inside any shadow root) holds a model: the 3D view has drawn
MOLVIEWER_DRAWN = (
    "() => { const walk = (root) => { for (const el of root.querySelectorAll('*')) {"
    " if (el.classList && el.classList.contains('molviewer') && el.dataset.models && el.dataset.models !== '0') return true;"
    " if (el.shadowRoot && walk(el.shadowRoot)) return true; } return false; }; return walk(document); }"
)


def free_port() -> int:
    """A TCP port free on the loopback interface right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def serve(port: int, app_args: list[str], env: dict | None = None, log: Path | None = None,
          server_args: list[str] | None = None) -> subprocess.Popen:
    """`panel serve explorer/app.py` on localhost:port (a child process; caller terminates it).

    Output goes to `log` (a file, never a pipe nobody reads: a full pipe would block the server).
    """
    cmd = [sys.executable, "-m", "panel", "serve", str(REPO / "explorer" / "app.py"), "--port", str(port),
           "--address", "127.0.0.1", "--allow-websocket-origin", f"localhost:{port}",
           "--allow-websocket-origin", f"127.0.0.1:{port}", "--num-procs", "1", *(server_args or [])]
    if app_args:
        cmd += ["--args", *app_args]
    out = open(log, "w") if log is not None else subprocess.DEVNULL
    return subprocess.Popen(cmd, cwd=REPO, env={**os.environ, **(env or {})}, stdout=out, stderr=subprocess.STDOUT)


def wait_http(url: str, timeout: float = 60.0, needle: str = "") -> float:
    """Seconds until `url` answers 200 (with `needle` in the body, if given)."""
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        try:
            with urllib.request.urlopen(url, timeout=60) as r:
                body = r.read().decode(errors="replace")
                if r.status == 200 and needle in body:
                    return time.perf_counter() - t0
        except OSError:
            pass
        time.sleep(0.1)
    raise TimeoutError(f"{url} did not answer in {timeout} s")


def open_ready_page(playwright, url: str, viewport: dict, timeout_ms: int = 90_000):
    """Headless chromium on the served page, waited until it says Ready: (browser, page, page errors list)."""
    browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    page = browser.new_page(viewport=viewport)
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    page.goto(url, timeout=timeout_ms)
    page.get_by_text("Ready.", exact=False).first.wait_for(timeout=timeout_ms)
    return browser, page, errors


def stop(proc: subprocess.Popen) -> None:
    """Terminate a server started by `serve` (by its own pid), killing it if it hangs."""
    proc.terminate()
    try:
        proc.wait(15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(5)


@contextmanager
def served_app(app_args: list[str], log: Path, env: dict | None = None, timeout: float = 180.0,
               server_args: list[str] | None = None):
    """Serve the explorer for the duration of a `with` block; yields the page URL."""
    port = free_port()
    proc = serve(port, app_args, env=env, log=log, server_args=server_args)
    try:
        url = f"http://127.0.0.1:{port}/app"
        wait_http(url, timeout, needle="OneProt explorer")
        yield url
    finally:
        stop(proc)
