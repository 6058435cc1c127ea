"""The web app's safe defaults, checked on a served app: where uploads go, what is served, the size limit,
the tabs, the live timer, and the command line that starts it."""
import os
import socket
import urllib.error
import urllib.request

import gradio as gr
import pytest

from backend.cli import build_parser, main
from backend.errors import ConfigError
from backend.jobs.runner import JobRunner
from ui.app import build_app, is_local, launch, parse_auth


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def served(home, monkeypatch):
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "3")
    runner = JobRunner()
    demo = build_app(runner)
    port = free_port()
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}"
    demo.close(verbose=False)
    runner.close()


def status_of(url: str) -> int:
    try:
        return urllib.request.urlopen(url, timeout=10).status
    except urllib.error.HTTPError as exc:
        return exc.code


def test_app_listens_locally_with_workspace_uploads_and_a_size_limit(served, home):
    demo, url = served
    assert demo.server_name == "127.0.0.1"
    assert os.environ["GRADIO_TEMP_DIR"] == str(home / "uploads")
    assert demo.allowed_paths == [str(home / "exports")]
    assert demo.max_file_size == 3 * 1024 * 1024
    assert status_of(url) == 200


def test_files_outside_the_workspace_are_not_served(served, home, tmp_path):
    _, url = served
    secret = tmp_path / "secret.txt"
    secret.write_text("private")
    assert status_of(f"{url}/gradio_api/file={secret}") in (403, 404)
    assert status_of(f"{url}/gradio_api/file=/etc/passwd") in (403, 404)
    assert status_of(f"{url}/gradio_api/file={os.path.abspath('app.py')}") in (403, 404)  # not even the app's own
    (home / "exports" / "card.txt").write_text("shareable")
    assert status_of(f"{url}/gradio_api/file={home / 'exports' / 'card.txt'}") == 200


def test_tabs_in_order_and_a_timer_reads_the_database(home):
    from backend.config import build_config
    from ui import live_tab
    from ui.common import Context

    runner = JobRunner()
    demo = build_app(runner)
    runner.close()
    tabs = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab) and block.page == ""]
    assert tabs == ["1. Data", "2. Train", "3. Progress", "4. Runs", "5. Export", "6. Chat", "7. Label", "8. Team"]
    labellers = [block.label for block in demo.blocks.values() if isinstance(block, gr.Tab) and block.page == "label"]
    assert labellers == ["Label", "Chat"]  # a labeller's page
    # Timers: Progress (live_tab.tick, checked below on the database), the line above the tabs that names a run
    # training (ui/banner.py), and any that run only while the page waits for something. Each has one handler.
    timers = [block for block in demo.blocks.values() if isinstance(block, gr.Timer)]
    for timer in timers:
        ticking = [fn for fn in demo.fns.values() if any(t[0] == timer._id and t[1] == "tick" for t in fn.targets)]
        assert len(ticking) == 1
    assert any(timer.active and timer.value <= 3 for timer in timers)  # Progress follows a run within seconds
    assert not any(type(block).__name__ == "Interface" for block in demo.blocks.values())  # no flagging

    ctx = Context(runner)
    idle = live_tab.tick(ctx, {"run": None, "log_y": False, "seen": None})
    assert "No run yet" in idle[1]
    run_id = runner.store.create(build_config({"dataset": "chats", "name": "first try"}))
    runner.store.set_status(run_id, "running")
    runner.store.add_metrics(run_id, 1, {"train_loss": 2.0, "total_steps": 4})
    shown = live_tab.tick(ctx, {"run": None, "log_y": False, "seen": idle[-1]})  # picks up the run training
    assert "<b>first try</b> is training" in shown[1] and "Step 1 of 4" in shown[2]
    unchanged = live_tab.tick(ctx, {"run": run_id, "log_y": False, "seen": shown[-1]})
    assert unchanged == gr.skip()  # nothing new in the database: nothing redrawn
    runner.store.add_metrics(run_id, 2, {"train_loss": 1.5, "total_steps": 4})
    moved = live_tab.tick(ctx, {"run": run_id, "log_y": False, "seen": shown[-1]})
    assert "Step 2 of 4" in moved[2]
    # Start queues a second run and shows it; a tick sent before that choice arrived lists the new run but does
    # not put the first one back in the Run box (it did, and the page went on showing the first run).
    second = runner.store.create(build_config({"dataset": "chats", "name": "second try"}))
    chosen = live_tab.show(ctx, {"run": second, "log_y": False})
    assert chosen[0]["value"] == second and "<b>second try</b> is waiting in line" in chosen[1]
    stale = live_tab.tick(ctx, {"run": run_id, "log_y": False, "seen": moved[-1]})
    assert "value" not in stale[0] and second in [value for _, value in stale[0]["choices"]]


def test_a_password_keeps_the_app_and_its_files_closed(home):
    runner = JobRunner()
    demo = build_app(runner)
    port = free_port()
    launch(demo, port=port, auth="anna:pw", prevent_thread_lock=True, quiet=True)
    try:
        (home / "exports" / "card.txt").write_text("shareable")
        assert status_of(f"http://127.0.0.1:{port}/config") == 401
        assert status_of(f"http://127.0.0.1:{port}/gradio_api/file={home / 'exports' / 'card.txt'}") == 401
    finally:
        demo.close(verbose=False)
        runner.close()


def test_auth_is_user_colon_password():
    assert parse_auth("anna:s3:cret") == ("anna", "s3:cret")
    assert parse_auth(None) is None
    with pytest.raises(ConfigError, match="user:password"):
        parse_auth("anna")


def test_only_loopback_counts_as_local():
    assert is_local("127.0.0.1") and is_local("localhost") and is_local("::1")
    assert not is_local("0.0.0.0") and not is_local("192.168.1.5")


def test_command_line_starts_the_web_app_with_safe_defaults(monkeypatch):
    seen = {}
    monkeypatch.setattr("ui.app.serve", lambda **kwargs: seen.update(kwargs) or 0)
    import app
    assert main([], serve=app.serve) == 0
    assert seen == {"host": "127.0.0.1", "port": 7860, "auth": None, "auth_file": None, "insecure_no_auth": False}
    assert main(["--host", "0.0.0.0", "--port", "9000", "--auth-file", "pw.txt"], serve=app.serve) == 0  # read by serve()
    assert seen == {"host": "0.0.0.0", "port": 9000, "auth": None, "auth_file": "pw.txt", "insecure_no_auth": False}


def test_every_web_option_has_help():
    parser = build_parser()
    for action in parser._actions:
        if action.dest in ("host", "port", "auth", "auth_file", "insecure_no_auth"):
            assert action.help and len(action.help) > 20
