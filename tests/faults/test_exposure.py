"""Who may reach the web app: a password beyond this computer, read from the environment or a file, failed
sign-ins limited, foreign host names (DNS rebinding) and cross-site pages refused. Served on a free port."""
import os
import signal
import socket
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import requests

from backend.errors import TuneloopError
from backend.jobs.runner import JobRunner
from ui.app import build_app, launch
from ui.exposure import read_auth

ROOT = Path(__file__).resolve().parents[2]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def serve_app(home):
    """serve_app(auth=..., host=...) -> (demo, url) of an app served in this process; closed after the test."""
    started = []

    def start(auth=None, host="127.0.0.1"):
        runner = JobRunner()
        demo = build_app(runner)
        port = free_port()
        launch(demo, host=host, port=port, auth=auth, prevent_thread_lock=True, quiet=True)
        started.append((demo, runner))
        return demo, f"http://127.0.0.1:{port}"

    yield start
    for demo, runner in started:
        demo.close(verbose=False)
        runner.close()


def sign_in(url: str, user: str, password: str) -> requests.Response:
    return requests.post(f"{url}/login", data={"username": user, "password": password}, timeout=30)


# --- host names and origins ---------------------------------------------------------------------------

def test_a_foreign_host_name_is_refused(serve_app, monkeypatch):
    monkeypatch.setenv("TUNELOOP_ALLOWED_HOSTS", "tuneloop.example.org")
    _, url = serve_app()
    port = url.rsplit(":", 1)[1]
    assert requests.get(url, timeout=30).status_code == 200
    assert requests.get(url, headers={"Host": f"localhost:{port}"}, timeout=30).status_code == 200
    assert requests.get(url, headers={"Host": f"tuneloop.example.org:{port}"}, timeout=30).status_code == 200
    refused = requests.get(f"{url}/config", headers={"Host": f"rebind.attacker.example:{port}"}, timeout=30)
    assert refused.status_code == 400
    assert "TUNELOOP_ALLOWED_HOSTS" in refused.text and "components" not in refused.text


def test_a_cross_site_upload_is_refused_without_a_password(serve_app, home):
    _, url = serve_app()
    marker = b"cross-site-upload-marker"
    upload = {"files": ("evil.txt", marker, "text/plain")}
    refused = requests.post(f"{url}/gradio_api/upload", files=upload, timeout=30,
                            headers={"Origin": "http://attacker.example"})
    assert refused.status_code == 403
    assert not any(marker in p.read_bytes() for p in (home / "uploads").rglob("*") if p.is_file())
    assert requests.get(f"{url}/config", headers={"Origin": "http://attacker.example"}, timeout=30).status_code == 403
    assert requests.post(f"{url}/gradio_api/upload", files=upload, headers={"Origin": "null"},
                         timeout=30).status_code == 403
    # The app's own page may upload: the same request from its own origin goes through.
    accepted = requests.post(f"{url}/gradio_api/upload", files=upload, headers={"Origin": url}, timeout=30)
    assert accepted.status_code == 200
    assert any(marker in p.read_bytes() for p in (home / "uploads").rglob("*") if p.is_file())


# --- sign-in ------------------------------------------------------------------------------------------

def test_a_burst_of_wrong_passwords_gets_only_a_few_checks(serve_app):
    demo, url = serve_app(auth="anna:right-horse")
    with ThreadPoolExecutor(8) as pool:
        statuses = list(pool.map(lambda i: sign_in(url, "anna", f"guess-{i}").status_code, range(40)))
    checked = statuses.count(400)  # a wrong password that was actually compared
    assert 1 <= checked <= demo.tuneloop_login_limiter.free
    assert statuses.count(429) == 40 - checked
    # Locked out: even the right password waits until the lockout has passed.
    locked = sign_in(url, "anna", "right-horse")
    assert locked.status_code == 429 and int(locked.headers["retry-after"]) >= 1
    limiter = demo.tuneloop_login_limiter
    real_clock = limiter.clock
    limiter.clock = lambda: real_clock() + limiter.max_lockout_s + 1
    signed_in = sign_in(url, "anna", "right-horse")
    assert signed_in.status_code == 200 and signed_in.json() == {"success": True}
    assert sign_in(url, "anna", "still-wrong").status_code == 400  # a success resets the count: checked again


def test_forwarded_addresses_are_not_believed_unless_the_proxy_is_trusted(serve_app, monkeypatch):
    """Uvicorn believes X-Forwarded-For from 127.0.0.1 by default: each guess claiming a new address got its own
    count, unlimited guesses for any local user. Only a proxy named in TUNELOOP_TRUSTED_PROXIES is believed."""
    monkeypatch.delenv("TUNELOOP_TRUSTED_PROXIES", raising=False)
    demo, url = serve_app(auth="anna:right-horse")
    statuses = [requests.post(f"{url}/login", data={"username": "anna", "password": f"guess-{i}"}, timeout=30,
                              headers={"X-Forwarded-For": f"10.0.{i}.7"}).status_code for i in range(20)]
    assert statuses.count(400) == demo.tuneloop_login_limiter.free and statuses.count(429) == 20 - statuses.count(400)
    assert set(demo.tuneloop_login_limiter.tries) == {("127.0.0.1", "anna")}


def test_a_trusted_proxy_passes_on_each_client_address(serve_app, monkeypatch):
    monkeypatch.setenv("TUNELOOP_TRUSTED_PROXIES", "127.0.0.1, ::1")
    demo, url = serve_app(auth="anna:right-horse")
    free = demo.tuneloop_login_limiter.free
    for client in ("203.0.113.7", "198.51.100.9"):  # two people behind the proxy: each has their own tries
        statuses = [sign_in_from(url, client, f"guess-{i}").status_code for i in range(free + 1)]
        assert statuses == [400] * free + [429]
    assert set(demo.tuneloop_login_limiter.tries) == {("203.0.113.7", "anna"), ("198.51.100.9", "anna")}


def test_a_malformed_trusted_proxy_is_refused_in_words(monkeypatch):
    from ui.exposure import trusted_proxies
    monkeypatch.setenv("TUNELOOP_TRUSTED_PROXIES", "10.0.0.1, proxy.example")
    with pytest.raises(TuneloopError, match=r"TUNELOOP_TRUSTED_PROXIES.*'proxy.example' is not an IP address"):
        trusted_proxies()


def sign_in_from(url: str, client: str, password: str) -> requests.Response:
    return requests.post(f"{url}/login", data={"username": "anna", "password": password}, timeout=30,
                         headers={"X-Forwarded-For": client})


def test_password_from_the_environment(serve_app, monkeypatch):
    monkeypatch.setenv("TUNELOOP_AUTH", "anna:from-env")
    monkeypatch.delenv("TUNELOOP_AUTH_FILE", raising=False)
    _, url = serve_app(auth=read_auth())
    assert requests.get(f"{url}/config", timeout=30).status_code == 401
    assert sign_in(url, "anna", "wrong").status_code == 400
    session = requests.Session()
    assert session.post(f"{url}/login", data={"username": "anna", "password": "from-env"}, timeout=30).ok
    assert session.get(f"{url}/config", timeout=30).status_code == 200


def test_password_file_from_the_environment_wins_over_the_password_variable(serve_app, monkeypatch, tmp_path):
    secret = tmp_path / "auth.txt"
    secret.write_text("\nanna:from-file\n")
    monkeypatch.setenv("TUNELOOP_AUTH_FILE", str(secret))
    monkeypatch.setenv("TUNELOOP_AUTH", "anna:from-env")
    _, url = serve_app(auth=read_auth())
    assert sign_in(url, "anna", "from-env").status_code == 400
    assert sign_in(url, "anna", "from-file").status_code == 200


def test_unreadable_or_empty_password_files_say_so(tmp_path, monkeypatch, capsys):
    from backend.errors import TuneloopError
    monkeypatch.delenv("TUNELOOP_AUTH", raising=False)
    monkeypatch.delenv("TUNELOOP_AUTH_FILE", raising=False)
    assert read_auth() is None
    with pytest.raises(TuneloopError, match="Cannot read the password file .*missing.txt"):
        read_auth(auth_file=str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("\n")
    with pytest.raises(TuneloopError, match="is empty"):
        read_auth(auth_file=str(tmp_path / "empty.txt"))
    (tmp_path / "bad.txt").write_text("anna\n")
    with pytest.raises(TuneloopError, match="user:password"):
        read_auth(auth_file=str(tmp_path / "bad.txt"))
    assert read_auth(auth="anna:typed") == "anna:typed"
    assert "ps" in capsys.readouterr().err  # typed on the command line: warned


# --- starting the app from the command line -----------------------------------------------------------

def start_cli(home: Path, *args: str, env: dict | None = None) -> subprocess.Popen:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("TUNELOOP_AUTH")}
    clean.update({"TUNELOOP_HOME": str(home), "TUNELOOP_MODEL_CACHE": os.environ["TUNELOOP_MODEL_CACHE"]}, **(env or {}))
    return subprocess.Popen([sys.executable, "app.py", *args], cwd=ROOT, env=clean, text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def wait_until_served(process: subprocess.Popen, url: str, deadline_s: float = 240) -> int:
    end = time.monotonic() + deadline_s
    while time.monotonic() < end and process.poll() is None:
        try:
            return requests.get(url, timeout=5).status_code
        except requests.ConnectionError:
            time.sleep(0.5)
    raise AssertionError(f"the app did not answer on {url} (exit code {process.poll()})")


def stop(process: subprocess.Popen) -> str:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=60)
    return err


def test_listening_beyond_this_computer_without_a_password_refuses_to_start(home):
    port = free_port()
    process = start_cli(home, "--host", "0.0.0.0", "--port", str(port))
    _, err = process.communicate(timeout=120)
    assert process.returncode == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: Tuneloop will not listen on 0.0.0.0 without a password")
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/", timeout=5)


def test_insecure_no_auth_starts_and_says_what_it_means(home):
    port = free_port()
    process = start_cli(home, "--host", "0.0.0.0", "--port", str(port), "--insecure-no-auth")
    try:
        assert wait_until_served(process, f"http://127.0.0.1:{port}/config") == 200  # no password asked
    finally:
        err = stop(process)
    assert "without a password (--insecure-no-auth)" in err


def test_password_file_on_the_command_line_stays_out_of_the_process_arguments(home, tmp_path):
    secret = tmp_path / "auth.txt"
    secret.write_text("anna:file-secret\n")
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    process = start_cli(home, "--host", "0.0.0.0", "--port", str(port), "--auth-file", str(secret))
    try:
        assert wait_until_served(process, f"{url}/config") == 401
        assert b"file-secret" not in Path(f"/proc/{process.pid}/cmdline").read_bytes()
        assert sign_in(url, "anna", "wrong").status_code == 400
        assert sign_in(url, "anna", "file-secret").status_code == 200
    finally:
        stop(process)
