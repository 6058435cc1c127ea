"""A local stand-in for the Hugging Face Hub, so the real huggingface_hub client code runs in tests without a network.

It answers the requests huggingface_hub 2.4 makes to download a model (hf_api.py, file_download.py):
  GET  /api/models/<owner>/<name>[/revision/<rev>][?blobs=true]   repository info and its files (model_info)
  HEAD /<owner>/<name>/resolve/<rev>/<file>                        file metadata (get_hf_file_metadata)
  GET  /<owner>/<name>/resolve/<rev>/<file>                        the file, with HTTP Range (resume) support
with the headers the client reads: X-Repo-Commit, ETag, X-Linked-Etag / X-Linked-Size for LFS files,
Content-Range, and X-Error-Code (RepoNotFound, GatedRepo, EntryNotFound) on errors.

Gated repositories answer their info to anyone (as the Hub does) and their files only to the repository's token.
Every request is recorded in `requests` (method, path, Range header, whether a token was sent; never the token).
`drop_after[file] = n` closes the connection after n bytes of that file, once, to simulate a network cut.
Uploads are not served yet (405): add the commit endpoints here when a test needs them.

    with HubStandIn() as hub:
        hub.add_repo("org/tiny", {"config.json": b"{...}", "model.safetensors": data})
        pull("org/tiny", endpoint=hub.url)
"""
import hashlib
import json
import re
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import unquote, urlparse

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".model")


@dataclass
class Repo:
    files: dict  # name -> bytes
    gated: bool = False
    token: str | None = None  # the token that may read a gated repository
    commit: str = ""

    def sha256(self, name: str) -> str:
        return hashlib.sha256(self.files[name]).hexdigest()

    def is_lfs(self, name: str) -> bool:
        return name.endswith(LFS_SUFFIXES)


@dataclass
class Request:
    method: str
    path: str
    range: str | None
    with_token: bool


@dataclass
class HubStandIn:
    repos: dict = field(default_factory=dict)
    requests: list = field(default_factory=list)
    drop_after: dict = field(default_factory=dict)  # file name -> bytes to send before cutting the connection

    def add_repo(self, repo_id: str, files: dict, gated: bool = False, token: str | None = None) -> Repo:
        commit = hashlib.sha1(repo_id.encode() + b"".join(sorted(files.values()))).hexdigest()
        self.repos[repo_id] = Repo(dict(files), gated, token, commit)
        return self.repos[repo_id]

    def add_folder(self, repo_id: str, folder: Path, **kwargs) -> Repo:
        files = {p.name: p.read_bytes() for p in Path(folder).iterdir() if p.is_file()}
        return self.add_repo(repo_id, files, **kwargs)

    def __enter__(self):
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()

    @property
    def url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def served(self, file: str) -> list[Request]:
        """The GET requests made for one file."""
        return [r for r in self.requests if r.method == "GET" and r.path.endswith("/" + file)]


API = re.compile(r"^/api/models/(?P<repo>[^/]+/[^/]+?)(?:/revision/(?P<rev>[^/]+))?$")
RESOLVE = re.compile(r"^/(?P<repo>[^/]+/[^/]+)/resolve/(?P<rev>[^/]+)/(?P<file>.+)$")


def _handler(hub: HubStandIn):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def do_GET(self):
            self._answer(body=True)

        def do_HEAD(self):
            self._answer(body=False)

        def do_POST(self):
            self._error(405, "NotServed", "The stand-in does not accept uploads yet.")

        def _answer(self, body: bool):
            path = unquote(urlparse(self.path).path)
            auth = self.headers.get("Authorization", "")
            hub.requests.append(Request(self.command, path, self.headers.get("Range"), auth.startswith("Bearer ")))
            if match := API.match(path):
                return self._info(match["repo"], body)
            if match := RESOLVE.match(path):
                return self._file(match["repo"], match["rev"], match["file"], auth, body)
            self._error(404, None, "Not found")

        def _info(self, repo_id: str, body: bool):
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found")
            siblings = []
            for name, data in repo.files.items():
                sibling = {"rfilename": name, "size": len(data), "blobId": hashlib.sha1(data).hexdigest()}
                if repo.is_lfs(name):
                    sibling["lfs"] = {"size": len(data), "sha256": repo.sha256(name), "pointerSize": 134}
                siblings.append(sibling)
            info = {"id": repo_id, "modelId": repo_id, "sha": repo.commit, "private": False,
                    "gated": "manual" if repo.gated else False, "disabled": False, "siblings": siblings}
            self._send(200, json.dumps(info).encode(), {"Content-Type": "application/json"}, body)

        def _file(self, repo_id: str, rev: str, name: str, auth: str, body: bool):
            repo = hub.repos.get(repo_id)
            if repo is None:
                return self._error(401, "RepoNotFound", "Repository not found")
            if repo.gated and auth != f"Bearer {repo.token}":
                status = 401 if not auth else 403
                return self._error(status, "GatedRepo", f"Access to model {repo_id} is restricted.")
            if rev not in (repo.commit, "main") or name not in repo.files:
                return self._error(404, "EntryNotFound", f"{name} not found")
            data = repo.files[name]
            etag = repo.sha256(name) if repo.is_lfs(name) else hashlib.sha1(data).hexdigest()
            headers = {"X-Repo-Commit": repo.commit, "ETag": f'"{etag}"', "Accept-Ranges": "bytes",
                       "Content-Type": "application/octet-stream"}
            if repo.is_lfs(name):
                headers.update({"X-Linked-Etag": f'"{etag}"', "X-Linked-Size": str(len(data))})
            start, status = 0, 200
            if match := re.match(r"bytes=(\d+)-", self.headers.get("Range") or ""):
                start, status = int(match[1]), 206
                headers["Content-Range"] = f"bytes {start}-{len(data) - 1}/{len(data)}"
            chunk = data[start:]
            cut = hub.drop_after.pop(name, None) if body else None
            if cut is not None:
                headers["Content-Length"] = str(len(chunk))
                self.send_response(status)
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(chunk[:cut])
                self.wfile.flush()
                self.close_connection = True
                self.connection.shutdown(2)
                return
            self._send(status, chunk, headers, body)

        def _error(self, status: int, code: str | None, message: str):
            headers = {"Content-Type": "application/json", "X-Error-Message": message}
            if code:
                headers["X-Error-Code"] = code
            self._send(status, json.dumps({"error": message}).encode(), headers, True)

        def _send(self, status: int, data: bytes, headers: dict, body: bool):
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if body:
                self.wfile.write(data)

    return Handler


def closed_port() -> str:
    """An address where nothing listens, for the 'no network' case."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"
