"""The web app on a free port with a fresh workspace, and headless Debian Chromium driven by Playwright.

A failing test leaves a full-page screenshot in test-artifacts/.
"""
import os
import socket
import time
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts"
VIEWPORT = {"width": 1366, "height": 768}

if not os.path.exists(CHROMIUM):
    pytest.skip(f"Browser tests need Debian's Chromium at {CHROMIUM}: run `make browser` (apt-get install chromium).",
                allow_module_level=True)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"report_{report.when}", report)


@pytest.fixture(autouse=True)
def patient_startup_probe(monkeypatch):
    """Gradio's launch asks the new server for its page once it listens, and gives up on the first answer slower
    than 3 s ("When localhost is not accessible, a shareable link must be created"): on a busy machine the
    server is there but slow. The same question, with the patience of the rest of these tests."""
    import httpx
    from gradio import networking

    def url_ok(url: str) -> bool:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                if httpx.head(url, timeout=30, verify=False).status_code in (200, 401, 301, 302, 303, 307, 308):
                    return True
            except (httpx.ConnectError, httpx.TimeoutException):
                pass
            time.sleep(0.5)
        return False
    monkeypatch.setattr(networking, "url_ok", url_ok)


@pytest.fixture
def app(home, embedded_model):
    """(url, runner) of a running web app whose workspace is this test's temporary home."""
    from backend.jobs.runner import JobRunner
    from ui.app import build_app, launch

    runner = JobRunner(standby=True)  # as build_app makes it: runs train in a worker started ahead
    demo = build_app(runner)
    port = free_port()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}", runner
    demo.close(verbose=False)
    runner.close(stop_current=True)


@pytest.fixture(scope="session")
def browser():
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=CHROMIUM,
                                     args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, request):
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    # The machine may be busy training at the same time: every page of the context (a second tab too) waits as
    # long. (A second tab left at Playwright's 30 s missed its first redraw at load 17.)
    context.set_default_timeout(120_000)
    page = context.new_page()
    yield page
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        for i, open_page in enumerate(context.pages):
            open_page.screenshot(path=str(ARTIFACTS / f"{request.node.name}-{i}.png"), full_page=True)
    context.close()
