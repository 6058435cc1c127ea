"""Hub upload against a local stand-in for the Hugging Face Hub API (127.0.0.1, no network): the repo is
created private, the files arrive, and every failure is one sentence without the token."""
import base64
import json
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from backend.errors import HubError
from backend.export.hub_upload import UNREACHABLE, upload_export

TOKEN = "hf_test_token_never_to_be_seen_0123456789"


class StandInHub:
    """Answers the requests huggingface_hub's create_repo + upload_folder make (create, validate-yaml,
    preupload, commit) when every file travels inside the commit (upload mode "regular"; the LFS/Xet path
    for large files is the real Hub's and is not imitated here)."""

    def __init__(self, token: str):
        self.token = token
        self.repos = {}  # repo_id -> {"private": bool, "files": {path: bytes}}
        self.unknown = []
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body):
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if self.headers.get("authorization") != f"Bearer {hub.token}":
                    return self._reply(401, {"error": "Invalid credentials in Authorization header"})
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    payload = json.loads(body)
                    repo_id = f"{payload['organization']}/{payload['name']}" if payload.get("organization") else payload["name"]
                    if repo_id in hub.repos:
                        return self._reply(409, {"error": "You already created this model repo", "url": hub.url(repo_id)})
                    hub.repos[repo_id] = {"private": payload.get("visibility") == "private" or payload.get("private") is True,
                                          "files": {}}
                    return self._reply(200, {"url": hub.url(repo_id)})
                if path == "/api/validate-yaml":  # upload_folder checks README.md's metadata first
                    return self._reply(200, {"errors": [], "warnings": []})
                if path.startswith("/api/models/") and "/preupload/" in path:
                    files = json.loads(body)["files"]
                    return self._reply(200, {"files": [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                                                       for f in files]})
                if path.startswith("/api/models/") and "/commit/" in path:
                    repo_id = path[len("/api/models/"):path.index("/commit/")]
                    for line in body.decode().splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            hub.repos[repo_id]["files"][item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._reply(200, {"commitUrl": hub.url(repo_id) + "/commit/1", "commitOid": "1" * 40})
                hub.unknown.append(("POST", self.path))
                return self._reply(404, {"error": "not in the stand-in"})

            def do_GET(self):
                hub.unknown.append(("GET", self.path))
                return self._reply(404, {"error": "not in the stand-in"})

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_port}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, repo_id):
        return f"{self.endpoint}/{repo_id}"

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hub():
    server = StandInHub(TOKEN)
    yield server
    server.close()


@pytest.fixture
def export_folder(tmp_path):
    folder = tmp_path / "export"
    (folder / "sub").mkdir(parents=True)
    (folder / "README.md").write_text("# my-run\n\nFine-tuned with Tuneloop.\n")
    (folder / "adapter_config.json").write_text(json.dumps({"r": 16}))
    (folder / "adapter_model.safetensors").write_bytes(bytes(range(256)) * 40)
    (folder / "sub" / "notes.txt").write_text("kept in its folder")
    return folder


def test_upload_creates_a_private_repo_and_the_files_arrive(hub, export_folder, caplog):
    caplog.set_level(logging.DEBUG)
    seen = []
    result = upload_export(export_folder, "someone/my-run", TOKEN, endpoint=hub.endpoint,
                           progress=lambda fraction, message: seen.append((fraction, message)))
    assert result.repo_id == "someone/my-run" and result.private and result.files == 4
    repo = hub.repos["someone/my-run"]
    assert repo["private"] is True
    assert repo["files"]["README.md"] == (export_folder / "README.md").read_bytes()
    assert repo["files"]["adapter_model.safetensors"] == (export_folder / "adapter_model.safetensors").read_bytes()
    assert repo["files"]["sub/notes.txt"] == b"kept in its folder"
    assert hub.unknown == []
    assert seen[-1][0] == 1.0
    assert TOKEN not in caplog.text
    assert not any(TOKEN.encode() in p.read_bytes() for p in export_folder.rglob("*") if p.is_file())


def test_second_upload_to_the_same_repo_is_accepted(hub, export_folder):
    upload_export(export_folder, "someone/again", TOKEN, endpoint=hub.endpoint)
    (export_folder / "README.md").write_text("# my-run\n\nSecond version.\n")
    upload_export(export_folder, "someone/again", TOKEN, endpoint=hub.endpoint)
    assert hub.repos["someone/again"]["files"]["README.md"].endswith(b"Second version.\n")


def test_public_only_when_asked(hub, export_folder):
    upload_export(export_folder, "someone/open", TOKEN, private=False, endpoint=hub.endpoint)
    assert hub.repos["someone/open"]["private"] is False


def test_bad_token_is_one_sentence_without_the_token(hub, export_folder):
    wrong = "hf_wrong_token_also_secret_987654321"
    with pytest.raises(HubError) as caught:
        upload_export(export_folder, "someone/my-run", wrong, endpoint=hub.endpoint)
    message = str(caught.value)
    assert "refused the token" in message and wrong not in message and TOKEN not in message
    assert caught.value.__cause__ is None and caught.value.__suppress_context__
    assert hub.repos == {}


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_unreachable_hub_is_one_sentence(export_folder):
    with pytest.raises(HubError) as caught:
        upload_export(export_folder, "someone/my-run", TOKEN, endpoint=f"http://127.0.0.1:{_closed_port()}")
    assert str(caught.value) == UNREACHABLE
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_refuses_a_folder_without_a_model_card_or_token(tmp_path, export_folder):
    (tmp_path / "bare").mkdir()
    with pytest.raises(HubError, match="no README.md"):
        upload_export(tmp_path / "bare", "someone/x", TOKEN, endpoint="http://127.0.0.1:9")
    with pytest.raises(HubError, match="token"):
        upload_export(export_folder, "someone/x", "  ", endpoint="http://127.0.0.1:9")


def test_invalid_repo_name_is_one_sentence(hub, export_folder):
    with pytest.raises(HubError, match="not a valid repository name"):
        upload_export(export_folder, "a/b/c", TOKEN, endpoint=hub.endpoint)
