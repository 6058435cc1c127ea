"""The app starts whatever the load and stops promptly: Gradio's own check that it can reach itself (one HTTP request
with a 3 s timeout) failed at load 11 and ended the app with "When localhost is not accessible, a shareable link must
be created"; after SIGTERM the app took 20 to 45 s to exit."""
import signal
import time
from pathlib import Path

import gradio.networking
import pytest
import requests

from tests.faults.test_exposure import serve_app  # noqa: F401 (the fixture)


def test_the_app_starts_and_serves_when_gradio_cannot_reach_it_in_time(serve_app, monkeypatch):  # noqa: F811
    monkeypatch.setattr(gradio.networking, "url_ok", lambda url: False)  # what a 3 s timeout returns
    _, url = serve_app()
    assert requests.get(f"{url}/config", timeout=30).status_code == 200


SLOW_TEARDOWN = '''
import os, threading
if os.environ.pop("TUNELOOP_TEST_SLOW_TEARDOWN", None):  # the app's own process only, not the children it starts
    class _SlowTeardown:
        def __del__(self):  # runs when the interpreter tears down its modules
            threading.Event().wait()
    _keep = _SlowTeardown()
'''


def test_the_app_ends_after_sigterm_without_waiting_for_the_interpreter_teardown(home, tmp_path):
    """The 20-45 s were Python tearing down the interpreter: full garbage collections over the millions of objects
    that torch, transformers and Gradio hold. Here that teardown never ends (an object whose finalizer blocks): the
    app must end all the same, with its exit code, once it has stopped serving and closed its runner."""
    from tests.faults.test_exposure import free_port, start_cli, wait_until_served
    (tmp_path / "sitecustomize.py").write_text(SLOW_TEARDOWN)
    port = free_port()
    process = start_cli(home, "--port", str(port), env={"PYTHONPATH": str(tmp_path),
                                                        "TUNELOOP_TEST_SLOW_TEARDOWN": "1"})
    try:
        assert wait_until_served(process, f"http://127.0.0.1:{port}/config") == 200
        process.send_signal(signal.SIGTERM)
        _, err = process.communicate(timeout=120)  # a guard against hanging for ever, not a measure of speed
    finally:
        process.kill()
    assert process.returncode == 0, err
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/config", timeout=5)


SLOW_RUNNER_START = '''
import os, signal, sys, threading, time
if os.environ.pop("TUNELOOP_TEST_SLOW_RUNNER_START", None):
    flag = os.environ["TUNELOOP_TEST_STARTING_FLAG"]
    install = signal.signal
    def signal_with_a_trace(signum, handler):  # the app's own SIGTERM handler, leaving a file once it has run
        def traced(*args):
            try:
                return handler(*args)
            finally:
                open(flag + ".signalled", "w").close()
        return install(signum, traced if signum == signal.SIGTERM and callable(handler) else handler)
    signal.signal = signal_with_a_trace
    def _slow_down_once_imported():  # the runner's start, after the port already answers, waits for the test
        while "backend.jobs.runner" not in sys.modules or not hasattr(sys.modules["backend.jobs.runner"], "JobRunner"):
            time.sleep(0.001)
        runner = sys.modules["backend.jobs.runner"].JobRunner
        start = runner.start
        def slow_start(self, *args, **kwargs):
            open(flag, "w").close()
            while not os.path.exists(flag + ".go"):
                time.sleep(0.01)
            return start(self, *args, **kwargs)
        runner.start = slow_start
    threading.Thread(target=_slow_down_once_imported, daemon=True).start()
'''


def test_a_sigterm_while_the_app_finishes_starting_stops_it_cleanly(home, tmp_path):
    """The port answers before the app has started its runner; a SIGTERM raised as an exception there broke out of
    the start and the app ended with 'Interrupted.' and exit code 130 (seen in CI on a loaded machine)."""
    from tests.faults.test_exposure import free_port, start_cli, wait_until_served
    (tmp_path / "sitecustomize.py").write_text(SLOW_RUNNER_START)
    flag = tmp_path / "starting"
    port = free_port()
    process = start_cli(home, "--port", str(port), env={"PYTHONPATH": str(tmp_path),
                                                        "TUNELOOP_TEST_SLOW_RUNNER_START": "1",
                                                        "TUNELOOP_TEST_STARTING_FLAG": str(flag)})
    try:
        assert wait_until_served(process, f"http://127.0.0.1:{port}/config") == 200
        wait_for_file(flag, process)  # served, and the runner is starting
        process.send_signal(signal.SIGTERM)
        wait_for_file(tmp_path / "starting.signalled", process)  # the app's handler has run, the runner still waits
        (tmp_path / "starting.go").touch()
        _, err = process.communicate(timeout=120)  # a guard against hanging for ever, not a measure of speed
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert "Interrupted" not in err


def wait_for_file(path: Path, process):
    while not path.exists() and process.poll() is None:
        time.sleep(0.01)


def test_an_open_page_does_not_hold_up_the_stop_and_uploads_are_removed(home):
    """Uvicorn waits for every open connection to end before it shuts the app down, and a page holds its heartbeat
    stream open for as long as it is open: Gradio gave up on the server after 5 s and the app's shutdown, which
    removes this session's uploads, never ran."""
    from tests.faults.test_exposure import free_port, start_cli, stop, wait_until_served
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_cli(home, "--port", str(port))
    try:
        assert wait_until_served(process, f"{url}/config") == 200
        sent = requests.post(f"{url}/gradio_api/upload", files={"files": ("mine.jsonl", b"{}\n")}, timeout=60)
        [upload] = sent.json()
        page = requests.get(f"{url}/gradio_api/heartbeat/page-1", stream=True, timeout=120)  # an open browser tab
        assert page.status_code == 200 and Path(upload).exists()
        err = stop(process)
        page.close()
    finally:
        process.kill()
    assert process.returncode == 0, err
    assert not Path(upload).exists()


def test_the_app_starts_when_its_server_takes_longer_than_gradio_waits(serve_app, monkeypatch):  # noqa: F811
    """Gradio waits 5 s for uvicorn to start, then calls the port taken; on a busy machine the start can take longer."""
    import asyncio

    import uvicorn
    original = uvicorn.Server.startup

    async def slow_startup(self, sockets=None):
        await asyncio.sleep(6)  # a start slower than Gradio's 5 s (the delay is the fault, nothing is measured)
        return await original(self, sockets)

    monkeypatch.setattr(uvicorn.Server, "startup", slow_startup)
    _, url = serve_app()
    assert requests.get(f"{url}/config", timeout=30).status_code == 200
