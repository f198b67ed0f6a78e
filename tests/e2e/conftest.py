"""Browser harness: serve the app on a free port against a fresh small demo store, drive Chromium.

Follows Streamlit's own end-to-end suite: start `streamlit run` headless, poll /_stcore/health,
then wait in Playwright for the app container, for the script to stop running and for no skeleton.
Chromium is Debian's (/usr/bin/chromium), never a browser download.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
ARTIFACTS = ROOT / "tests" / "artifacts"
CHROMIUM = os.environ.get("WORKBENCH_CHROMIUM", "/usr/bin/chromium")


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def demo_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small demo store built fresh for the browser tests."""
    db = tmp_path_factory.mktemp("e2e") / "workbench.duckdb"
    subprocess.run(
        [sys.executable, "-m", "workbench.cli", "demo", "--rows", "20000", "--db", str(db)],
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    return db


@contextmanager
def serve(db: Path) -> Iterator[str]:
    """Run `streamlit run app.py` against ``db`` on a free port; yield its URL once /_stcore/health is ok.

    With `pytest -n 2` two workers pick ports at once: a server that exits because another took its port between
    the pick and the bind ("Port N is not available") is started again on a new one (three tries); any other
    early exit fails at once.
    """
    env = {**os.environ, "WORKBENCH_DB": str(db)}
    for attempt in range(3):
        port = _free_port()
        log_path = db.parent / f"streamlit-{port}.log"
        with open(log_path, "w") as log:
            proc = subprocess.Popen(
                [
                    sys.executable, "-m", "streamlit", "run", "app.py",
                    "--server.headless", "true", "--server.port", str(port),
                    "--server.fileWatcherType", "none", "--browser.gatherUsageStats", "false",
                ],
                cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
            )  # fmt: skip
        try:
            url = f"http://127.0.0.1:{port}"
            deadline = time.monotonic() + 60
            while not _healthy(url):
                if proc.poll() is not None or time.monotonic() > deadline:
                    if attempt < 2 and proc.poll() is not None and "is not available" in log_path.read_text():
                        break
                    raise RuntimeError(f"streamlit did not start: {log_path.read_text()[-2000:]}")
                time.sleep(0.3)
            else:
                yield url
                return
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                proc.kill()


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
            return response.read().decode().strip() == "ok"
    except OSError:
        return False


@pytest.fixture(scope="session")
def app_url(demo_db: Path) -> Iterator[str]:
    """The app served against ``demo_db`` for the whole session."""
    with serve(demo_db) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[object]:
    """Headless Debian Chromium through Playwright (no browser download)."""
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} not found: install Debian's 'chromium' package (make test does it as root)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            headless=True,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-quic",
                  "--no-first-run", "--disable-component-update", "--disable-sync"],
        )  # fmt: skip
        yield browser
        browser.close()


LOCAL_HOSTS = ("127.0.0.1", "localhost", "[::1]")
STREAMLIT_PROBE = re.compile(r"://[^/]+/[^?]+/_stcore/(health|host-config)$")


def watch(page: object) -> dict[str, list[str]]:
    """Record what a page must never do: log a console error, throw, or fetch from outside this machine
    (fonts, CDNs: a machine without internet would show a broken page)."""
    seen: dict[str, list[str]] = {"console errors": [], "page errors": [], "outside requests": [], "failed": []}

    def on_console(message: object) -> None:
        # A failed load is judged by its URL below: on a deep link (/drift) Streamlit's client first probes
        # /drift/_stcore/health and /drift/_stcore/host-config for a base path, and those 404s are its own.
        if message.type == "error" and not message.text.startswith("Failed to load resource"):
            seen["console errors"].append(message.text[:300])

    def on_response(response: object) -> None:
        if response.status >= 400 and not STREAMLIT_PROBE.search(response.url):
            seen["failed"].append(f"{response.status} {response.url[:200]}")

    def on_request(request: object) -> None:
        host = request.url.split("/")[2] if "://" in request.url else ""
        if request.url.startswith(("http://", "https://")) and host.split(":")[0] not in LOCAL_HOSTS:
            seen["outside requests"].append(request.url[:200])

    page.on("console", on_console)
    page.on("pageerror", lambda error: seen["page errors"].append(str(error)[:300]))
    page.on("request", on_request)
    page.on("response", on_response)
    return seen


@pytest.fixture()
def page(browser: object) -> Iterator[object]:
    """A fresh page, 1400×1000, closed after the test; the test fails on a console error, an uncaught page
    error or a request to a host other than this machine."""
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    seen = watch(page)
    yield page
    context.close()
    problems = {kind: found for kind, found in seen.items() if found}
    assert not problems, f"the page misbehaved: {problems}"


def wait_for_app(page: object, timeout_ms: int = 60_000) -> None:
    """Wait until the app rendered: a page title drawn, then the script idle for 1.5 s, no skeletons.

    "Idle for a while" rather than "idle once": the state reads notRunning before the first run starts
    and between a run and the rerun it asks for (the router's first st.navigation, a fragment), so
    on a busy machine a single look can land in such a gap.
    """
    page.wait_for_selector("[data-testid=stAppViewContainer]", timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const state = document.querySelector('[data-test-script-state]');
            const idle = state && state.getAttribute('data-test-script-state') === 'notRunning'
                && document.querySelector('[data-testid=stMain] h1')
                && !document.querySelector('[data-testid=stSkeleton]');
            if (!idle) { window.__workbenchIdleSince = null; return false; }
            window.__workbenchIdleSince = window.__workbenchIdleSince || Date.now();
            return Date.now() - window.__workbenchIdleSince >= 1500;
        }""",
        timeout=timeout_ms,
        polling=100,
    )
    page.wait_for_timeout(500)  # let Plotly finish drawing before a screenshot


def wait_for_charts(page: object, at_least: int, timeout_ms: int = 30_000) -> int:
    """Wait until ``at_least`` Plotly charts are drawn and return how many there are.

    Streamlit loads its Plotly component lazily, per browser context: on a busy machine the script can be idle
    and its text drawn while a chart's bundle is still arriving (the element appears only once it has).
    """
    page.wait_for_function(
        "n => document.querySelectorAll('[data-testid=stPlotlyChart]').length >= n",
        arg=at_least,
        timeout=timeout_ms,
        polling=100,
    )
    return page.locator("[data-testid=stPlotlyChart]").count()


def screenshot(page: object, name: str) -> Path:
    """Save the whole page (the app scrolls inside its main container) to tests/artifacts/NAME.png."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    viewport = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...[...document.querySelectorAll('[data-testid=stMain], [data-testid=stSidebarContent]')]"
        ".map(e => e.scrollHeight), 0)"
    )
    page.set_viewport_size(
        {"width": viewport["width"], "height": max(viewport["height"], min(int(height) + 40, 12000))}
    )
    page.wait_for_timeout(700)  # let Plotly re-layout to the new size
    page.screenshot(path=str(path), full_page=True)
    page.set_viewport_size(viewport)
    return path
