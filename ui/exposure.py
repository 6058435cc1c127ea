"""Who may reach the web app, checked before Gradio sees a request.

- Beyond this computer only with a password, read from TUNELOOP_AUTH or a file: never from the command line,
  which every user of the machine sees in `ps`.
- Failed sign-ins are limited per client address: a few tries, then a lockout that doubles with each further
  failure. The right password works again once the lockout has passed. A client's address is the one it connects
  from: X-Forwarded-For is believed only from the reverse proxies named in TUNELOOP_TRUSTED_PROXIES.
- Only known host names: a web page whose own name resolves to this machine (DNS rebinding) is refused.
  An address like 192.168.1.5 is always accepted: a rebinding page needs a name of its own.
- Request bodies are capped (TUNELOOP_MAX_REQUEST_MB, uploads TUNELOOP_MAX_UPLOAD_MB): a declared length over the
  cap is refused unread, a chunked body as soon as it passes the cap. Gradio reads any body whole into memory.
- Only same-origin pages: a request sent by a page from another site (a cross-site form upload, a fetch
  that would read answers back) is refused. Gradio itself only shapes CORS headers and lets such a request run.
- A labeller's requests reach only their own page (LABELLER_PAGE: Chat and Label) and its events; everything else
  (the owner's page and its events, uploads, files, the REST API) is refused before Gradio sees it, whatever the page
  shows. A removed labeller (or one given a new password) is signed out at once: their sign-ins end, and their
  requests still open (the page's heartbeat, an answer streaming in) are ended as if they had closed the page.
"""
import asyncio
import ipaddress
import json
import os
import socket
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

from starlette.formparsers import MultiPartException
from starlette.requests import HTTPConnection

from backend.errors import ConfigError, TuneloopError
from backend.words import size_text

AUTH_ENV = "TUNELOOP_AUTH"
AUTH_FILE_ENV = "TUNELOOP_AUTH_FILE"
ALLOWED_HOSTS_ENV = "TUNELOOP_ALLOWED_HOSTS"
TRUSTED_PROXIES_ENV = "TUNELOOP_TRUSTED_PROXIES"
LOCAL_NAMES = {"localhost", "127.0.0.1", "::1"}
SAFE_METHODS = {"GET", "HEAD", "OPTIONS"}


class ExposureError(TuneloopError):
    """The app would be reachable by others without a password, or the password cannot be read."""


def parse_auth(text: str | None) -> tuple[str, str] | None:
    if not text:
        return None
    user, sep, password = text.partition(":")
    if not sep or not user or not password:
        raise ConfigError("auth", "write it as user:password, e.g. TUNELOOP_AUTH=anna:s3cret.")
    return user, password


def read_auth(auth: str | None = None, auth_file: str | None = None) -> str | None:
    """The 'user:password' to ask for: --auth-file, --auth, TUNELOOP_AUTH_FILE, then TUNELOOP_AUTH."""
    if auth:
        print("Warning: --auth puts the password where every user of this computer can read it (`ps`); "
              f"set {AUTH_ENV} or use --auth-file instead.", file=sys.stderr)
    path = auth_file or (None if auth else os.environ.get(AUTH_FILE_ENV))
    if path:
        try:
            lines = Path(path).expanduser().read_text().splitlines()
        except OSError as exc:
            raise ExposureError(f"Cannot read the password file '{path}' ({exc.strerror}).") from None
        auth = next((line.strip() for line in lines if line.strip()), "")
        if not auth:
            raise ExposureError(f"The password file '{path}' is empty: write user:password on its first line.")
    auth = auth or os.environ.get(AUTH_ENV) or None
    parse_auth(auth)
    return auth


def is_local(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return host == "localhost"


def check_exposure(host: str, auth: str | None, insecure_no_auth: bool = False):
    """Refuse to listen beyond this computer without a password, unless told so in plain words."""
    if is_local(host) or auth:
        return
    if not insecure_no_auth:
        raise ExposureError(f"Tuneloop will not listen on {host} without a password: set {AUTH_ENV}=user:password "
                            f"(or {AUTH_FILE_ENV}=PATH, or --auth-file PATH), or add --insecure-no-auth if everyone "
                            f"who can reach this port may use the app.")
    print(f"Warning: listening on {host} without a password (--insecure-no-auth): anyone who can reach this port "
          "can use the app and its data.", file=sys.stderr)


def allowed_host_names(host: str) -> set[str]:
    """Names a browser may use to reach the app: this computer's, the one it listens on, TUNELOOP_ALLOWED_HOSTS."""
    names = set(LOCAL_NAMES) | {host.lower(), socket.gethostname().lower()} | extra_host_names()
    return {name.strip("[]") for name in names if name}


def extra_host_names() -> set[str]:
    return {name.lower() for name in os.environ.get(ALLOWED_HOSTS_ENV, "").replace(",", " ").split()}


def trusted_proxies() -> str:
    """The reverse proxies whose X-Forwarded-For names the client, as uvicorn's FORWARDED_ALLOW_IPS: none unless
    TUNELOOP_TRUSTED_PROXIES lists them. Uvicorn by itself believes the header from 127.0.0.1, so any local user
    could claim a new address for each sign-in try and never be locked out."""
    entries = []
    for entry in os.environ.get(TRUSTED_PROXIES_ENV, "").replace(",", " ").split():
        try:
            address = ipaddress.ip_network(entry, strict=False) if "/" in entry else ipaddress.ip_address(entry)
            entries.append(str(address))
        except ValueError:
            raise ConfigError(TRUSTED_PROXIES_ENV, f"'{entry}' is not an IP address or network; list your reverse "
                                                   "proxies' addresses, e.g. 127.0.0.1,10.0.0.0/8.") from None
    return ",".join(entries)


def _hostname(netloc: str) -> str | None:
    try:
        return urlsplit("//" + netloc).hostname
    except ValueError:
        return None


def _is_address(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


async def _refuse(scope, receive, send, status: int, message: str):
    if scope["type"] == "websocket":
        await send({"type": "websocket.close", "code": 1008, "reason": message[:120]})
        return
    body = (message + "\n").encode()
    headers = [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(body)).encode())]
    if status == 429:
        headers.append((b"retry-after", b"%d" % max(1, int(scope.get("retry_after", 1)))))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class HostOriginGuard:
    """ASGI middleware: a request must name a known host, and a page that sends it must come from that host."""

    def __init__(self, app, host_names: set[str], origin_names: set[str]):
        self.app = app
        self.host_names = host_names
        self.origin_names = origin_names  # extra names a reverse proxy may show as the page's origin

    async def __call__(self, scope, receive, send):
        if scope["type"] not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        headers = {key.decode("latin-1"): value.decode("latin-1") for key, value in scope["headers"]}
        host = headers.get("host", "").lower()
        name = _hostname(host)
        if not name or not (name in self.host_names or _is_address(name)):
            return await _refuse(scope, receive, send, 400,
                                 f"Tuneloop does not answer to the host name '{name or host}'. If it is yours, "
                                 f"add it to {ALLOWED_HOSTS_ENV}.")
        origin = headers.get("origin")
        if origin is not None and not self._same_site(origin, host):
            return await _refuse(scope, receive, send, 403,
                                 f"Tuneloop refuses requests sent by a page from {origin}. If that is your own "
                                 f"address for the app, add its host name to {ALLOWED_HOSTS_ENV}.")
        return await self.app(scope, receive, send)

    def _same_site(self, origin: str, host: str) -> bool:
        parts = urlsplit(origin.lower())
        return parts.scheme in ("http", "https") and (parts.netloc == host or parts.hostname in self.origin_names)


@dataclass
class _Tries:
    failures: int = 0
    pending: int = 0
    locked_until: float = 0.0


class LoginLimiter:
    """Failed sign-ins per client (its address and the name it signs in as): `free` tries, then a lockout of
    `lockout_s` that doubles with each further failure (at most `max_lockout_s`). Tries in flight count as failures
    until they end, so a burst of parallel requests gets no more password checks than a sequence of them. By name
    too, since labellers sign in from the same address as the owner: a labeller's sign-in cleared the owner's
    failures (unlimited guesses, four at a time), and a labeller's typos locked the owner out."""

    def __init__(self, free: int = 5, lockout_s: float = 30.0, max_lockout_s: float = 900.0):
        self.free, self.lockout_s, self.max_lockout_s = free, lockout_s, max_lockout_s
        self.clock = time.monotonic
        self.tries: dict[tuple[str, str], _Tries] = {}  # by (address, name)

    def begin(self, client: tuple[str, str]) -> float:
        """0 and the try is counted as pending, or the seconds to wait before the next try."""
        now = self.clock()
        if len(self.tries) > 10_000:  # many addresses: forget those neither locked nor trying now
            self.tries = {key: t for key, t in self.tries.items() if t.pending or t.locked_until > now}
        tries = self.tries.setdefault(client, _Tries())
        if now < tries.locked_until:
            return tries.locked_until - now
        if tries.pending >= max(1, self.free - tries.failures):
            return self.lockout_s
        tries.pending += 1
        return 0.0

    def end(self, client: tuple[str, str], ok: bool):
        tries = self.tries[client]
        tries.pending -= 1
        if ok:
            tries.failures, tries.locked_until = 0, 0.0
            return
        tries.failures += 1
        if tries.failures >= self.free:
            wait = min(self.max_lockout_s, self.lockout_s * 2 ** (tries.failures - self.free))
            tries.locked_until = self.clock() + wait


class LoginThrottle:
    """ASGI middleware around Gradio's POST /login: refuses tries from a locked-out address with 429."""

    def __init__(self, app, limiter: LoginLimiter):
        self.app = app
        self.limiter = limiter

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or scope["method"] != "POST" or scope["path"].rstrip("/") != "/login":
            return await self.app(scope, receive, send)
        address = (scope.get("client") or ("unknown",))[0]
        body, replay = await read_whole(receive)  # for the name it signs in as
        client = (address, _form_name(body))
        wait = self.limiter.begin(client)
        if wait:
            scope = dict(scope, retry_after=wait)
            return await _refuse(scope, receive, send, 429, f"Too many failed sign-ins from {address}: try again "
                                                            f"in {max(1, round(wait))} seconds.")
        status = []

        async def watch(message):
            if message["type"] == "http.response.start":
                status.append(message["status"])
            await send(message)

        try:
            await self.app(scope, replay, watch)
        finally:
            self.limiter.end(client, ok=bool(status) and status[0] < 400)


async def read_whole(receive):
    """(the request's body, a `receive` that hands it on as it came). Only for small bodies: a sign-in form, an
    event's JSON (BodyCap caps every body before this reads it)."""
    body, more = b"", True
    while more:
        message = await receive()
        body += message.get("body", b"")
        more = message.get("more_body", False)
    sent = False

    async def replay():
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()
    return body, replay


def _form_name(body: bytes) -> str:
    """The name a sign-in form gives (Gradio's /login takes a urlencoded or multipart form with `username`)."""
    from urllib.parse import parse_qs
    text = body[:4096].decode("latin-1")
    name = parse_qs(text).get("username", [""])[0]
    if not name and 'name="username"' in text:  # multipart: the part's value follows its headers' blank line
        name = text.split('name="username"', 1)[1].split("\r\n\r\n", 1)[-1].split("\r\n", 1)[0]
    return name.strip()[:100]


LABELLER_PAGE = "label"  # the path of the page a labeller gets: Chat and Label only
API = "/gradio_api"
# What a labeller's page asks for besides its events: everything else, and every other POST, is refused.
LABELLER_REFUSED_GET = (f"{API}/file", "/file", f"{API}/stream", f"{API}/proxy", f"{API}/runs", f"{API}/run-history",
                        f"{API}/call", "/monitoring", f"{API}/monitoring", f"{API}/profiling", f"{API}/vibe",
                        f"{API}/openapi.json", f"{API}/deep_link")
# Routes that describe a page: a labeller gets their own page's only.
PAGE_DESCRIPTIONS = ("/config", f"{API}/config", "/info", f"{API}/info")
LABELLER_POSTS = {"/login", f"{API}/queue/join", f"{API}/cancel", f"{API}/reset"}


def signed_in_user(scope) -> str | None:
    """The name Gradio's sign-in cookie stands for (Gradio keeps the tokens in memory: app.tokens)."""
    app = scope.get("app")
    if app is None or not hasattr(app, "tokens"):
        return None
    cookies = HTTPConnection(scope).cookies  # parsed as Gradio parses them: every Cookie header, merged
    token = cookies.get(f"access-token-{app.cookie_id}") or cookies.get(f"access-token-unsecure-{app.cookie_id}")
    return app.tokens.get(token) if token else None


def sign_out(app, name: str):
    """Ends every sign-in of `name` (its tokens are forgotten: the next request asks for the password), and every
    request of theirs still open (RoleGuard). From any thread."""
    for token, user in list(getattr(app, "tokens", {}).items()):
        if user == name:
            app.tokens.pop(token, None)
    for end in list(_open_requests(app).get(name, ())):
        end()


def _open_requests(app) -> dict[str, set]:
    """{name: how to end each of their requests in flight}, kept on the web app."""
    if app is None:
        return {}
    if not hasattr(app, "tuneloop_open_requests"):
        app.tuneloop_open_requests = {}
    return app.tuneloop_open_requests


async def _until_signed_out(app, name: str, serve, scope, receive, send):
    """Serves a labeller's request, ending it when they are signed out: the request is told that the client went away
    (Gradio's streams then stop and clean up, as when a page closes), and a response already under way is closed."""
    loop = asyncio.get_running_loop()
    gone = asyncio.Event()

    def end():
        loop.call_soon_threadsafe(gone.set)
    requests = _open_requests(app).setdefault(name, set())
    requests.add(end)
    state = {"started": False, "ended": False}

    async def receive_or_gone():
        if gone.is_set():
            return {"type": "http.disconnect"}
        message, signed_out = asyncio.ensure_future(receive()), asyncio.ensure_future(gone.wait())
        try:
            await asyncio.wait({message, signed_out}, return_when=asyncio.FIRST_COMPLETED)
        finally:  # cancelled meanwhile (Starlette asks "disconnected?" with no time to wait): nothing left behind
            for task in (message, signed_out):
                if not task.done():
                    task.cancel()
        return message.result() if message.done() and not message.cancelled() else {"type": "http.disconnect"}

    async def watched(message):
        state["started"] |= message["type"] == "http.response.start"
        state["ended"] |= message["type"] == "http.response.body" and not message.get("more_body", False)
        await send(message)

    try:
        await serve(scope, receive_or_gone, watched)
    finally:
        requests.discard(end)
    if gone.is_set() and state["started"] and not state["ended"]:
        await send({"type": "http.response.body", "body": b"", "more_body": False})


class RoleGuard:
    """ASGI middleware: what a signed-in account may reach. The owner: everything. A labeller: their page
    (LABELLER_PAGE), its events and what the page itself loads; the home page sends them there. A name whose
    account is gone (a removed labeller) is signed out."""

    def __init__(self, app, sign_in):
        self.app = app
        self.sign_in = sign_in  # backend.accounts.SignIn

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not self.sign_in.passwords_on:
            return await self.app(scope, receive, send)
        name = signed_in_user(scope)
        if name is None:  # not signed in: Gradio asks for the password where it must
            return await self.app(scope, receive, send)
        account = self.sign_in.account(name)
        if account is None:
            sign_out(scope["app"], name)
            return await self.app(scope, receive, send)
        if account.is_owner:
            return await self.app(scope, receive, send)
        path, method = scope["path"].rstrip("/") or "/", scope["method"]
        if method in SAFE_METHODS:
            if path == "/":
                return await _redirect(send, f"/{LABELLER_PAGE}")
            if path.startswith(LABELLER_REFUSED_GET) or (path in PAGE_DESCRIPTIONS and
                                                         _query(scope, "page") != [LABELLER_PAGE]):
                return await _refuse(scope, receive, send, 403, LABELLER_REFUSAL)
            return await _until_signed_out(scope["app"], name, self.app, scope, receive, send)
        if path not in LABELLER_POSTS:
            return await _refuse(scope, receive, send, 403, LABELLER_REFUSAL)
        if path != f"{API}/queue/join":
            return await _until_signed_out(scope["app"], name, self.app, scope, receive, send)
        body, replay = await read_whole(receive)
        if not self._labellers_event(scope["app"], body):
            return await _refuse(scope, receive, send, 403, LABELLER_REFUSAL)
        return await _until_signed_out(scope["app"], name, self.app, scope, replay, send)

    @staticmethod
    def _labellers_event(app, body: bytes) -> bool:
        try:
            fn = app.get_blocks().fns.get(int(json.loads(body)["fn_index"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return False
        return fn is not None and fn.page == LABELLER_PAGE


LABELLER_REFUSAL = ("Labellers may chat and label only: training, exports, uploads, files and the owner's page "
                    "are for the owner.")


def _query(scope, key: str) -> list[str]:
    """Every value of `key` in the query: the framework reads the last of several, so all are checked."""
    from urllib.parse import parse_qs
    return parse_qs(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True).get(key, [])


async def _redirect(send, location: str):
    await send({"type": "http.response.start", "status": 302,
                "headers": [(b"location", location.encode()), (b"content-length", b"0")]})
    await send({"type": "http.response.body", "body": b""})


UPLOAD_PATH = "/gradio_api/upload"
MULTIPART_SLACK = 1024 * 1024  # an upload's form around its file: part headers and boundaries


class _TooLarge(MultiPartException):
    """Raised where the app reads a body past its cap. A MultiPartException, so that Gradio's upload route removes
    the temporary files it was writing the upload's files into, as it does for a file over its own size limit."""

    def __init__(self):
        super().__init__("The request body is over its size limit.")


class BodyCap:
    """ASGI middleware: a request body over `request_bytes` (an upload over `upload_bytes`) is answered 413."""

    def __init__(self, app, request_bytes: int, upload_bytes: int):
        self.app = app
        self.request_bytes, self.upload_bytes = request_bytes, upload_bytes

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        upload = scope["path"].rstrip("/").endswith(UPLOAD_PATH)
        cap = self.upload_bytes + MULTIPART_SLACK if upload else self.request_bytes
        declared = dict(scope["headers"]).get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            return await _refuse(scope, receive, send, 413, self._too_large(upload, int(declared)))
        received, over, started = 0, False, False

        async def counted():
            nonlocal received, over
            message = await receive()
            received += len(message.get("body", b""))
            if received > cap:
                over = True
                raise _TooLarge
            return message

        async def unless_over(message):
            nonlocal started
            if over:  # the app's own answer to a body cut short (a 400 or a 500) gives way to the 413
                return
            started = True
            await send(message)

        try:
            await self.app(scope, counted, unless_over)
        except Exception:
            if not over:
                raise
        if over and not started:
            await _refuse(scope, receive, send, 413, self._too_large(upload, None))

    def _too_large(self, upload: bool, size: int | None) -> str:
        what = "upload" if upload else "request"
        limit = self.upload_bytes if upload else self.request_bytes
        size_words = f"is {size_text(size)}, over" if size else "is over"
        advice = ("choose a smaller file, or raise TUNELOOP_MAX_UPLOAD_MB" if upload else
                  "send less, or raise TUNELOOP_MAX_REQUEST_MB")
        return f"This {what} {size_words} the {size_text(limit)} limit: {advice}."
