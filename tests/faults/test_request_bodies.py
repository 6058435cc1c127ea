"""Request bodies are capped before Gradio reads them: a 200 MB JSON POST to the queue was answered 200 and held
790 MB of the app's memory. Every body past TUNELOOP_MAX_REQUEST_MB is refused with a 413 in words, whether it
declares its length or comes in chunks; uploads keep their own, bigger cap (TUNELOOP_MAX_UPLOAD_MB)."""
import socket

import requests

from tests.faults.test_exposure import serve_app  # noqa: F401 (the fixture)

QUEUE = "/gradio_api/queue/join"


def raw_post(url: str, path: str, head: dict, chunks=()) -> tuple[int, str]:
    """(status, body) of a POST written by hand: headers, then `chunks` as they are, then the answer read to the end."""
    host, port = url.removeprefix("http://").split(":")
    head = {"Content-Type": "application/json", **head}
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}:{port}", "Connection: close", *(f"{k}: {v}" for k, v in head.items())]
    with socket.create_connection((host, int(port)), timeout=120) as conn:
        conn.sendall(("\r\n".join(lines) + "\r\n\r\n").encode())
        for chunk in chunks:
            conn.sendall(chunk)
        answer = b""
        while data := conn.recv(65536):
            answer += data
    status_line, _, rest = answer.decode("latin-1").partition("\r\n")
    return int(status_line.split()[1]), rest.partition("\r\n\r\n")[2]


def chunked(parts) -> list[bytes]:
    """`parts` as HTTP chunks, without the closing empty chunk: the body passes the cap on its last part, and nothing
    is left unread when the app answers and closes (bytes left unread would reset the connection before the answer
    is read). Without the cap the app would wait for the rest."""
    return [b"%x\r\n%s\r\n" % (len(part), part) for part in parts]


def test_a_body_declared_over_the_cap_is_refused_unread(serve_app, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNELOOP_MAX_REQUEST_MB", "1")
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "1")
    _, url = serve_app()
    # Only the headers are sent: the answer must come without the 200 MB they announce.
    status, text = raw_post(url, QUEUE, {"Content-Length": str(200 * 1024 * 1024)})
    assert status == 413, text
    assert text.startswith("This request is 200.0 MB, over the 1.0 MB limit") and "TUNELOOP_MAX_REQUEST_MB" in text
    assert requests.get(f"{url}/config", timeout=30).status_code == 200


def test_a_chunked_body_is_counted_as_it_arrives(serve_app, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNELOOP_MAX_REQUEST_MB", "1")
    _, url = serve_app()
    piece = b" " * 65536  # JSON allows the spaces: without the cap the app reads it all and answers
    body = [piece] * 16 + [b'{"data": [], "fn_index": 0, "session_hash": "x"}']  # 1 MB and a little more
    status, text = raw_post(url, QUEUE, {"Transfer-Encoding": "chunked"}, chunked(body))
    assert status == 413, text
    assert text.startswith("This request is over the 1.0 MB limit") and "TUNELOOP_MAX_REQUEST_MB" in text
    assert requests.get(f"{url}/config", timeout=30).status_code == 200


def test_uploads_keep_their_own_bigger_cap(serve_app, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TUNELOOP_MAX_REQUEST_MB", "1")
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "3")
    _, url = serve_app()
    data = b'{"prompt": "hi", "completion": "hello"}\n' * 60_000  # 2.3 MB: over the request cap, under the upload cap
    accepted = requests.post(f"{url}/gradio_api/upload", files={"files": ("big.jsonl", data)}, timeout=120)
    assert accepted.status_code == 200, accepted.text
    status, text = raw_post(url, "/gradio_api/upload", {"Content-Length": str(200 * 1024 * 1024),
                                                         "Content-Type": "multipart/form-data; boundary=x"})
    assert status == 413 and text.startswith("This upload is 200.0 MB, over the 3.0 MB limit"), text
    assert "TUNELOOP_MAX_UPLOAD_MB" in text


def test_an_upload_cut_off_at_the_cap_leaves_no_part_behind(serve_app, monkeypatch, home):  # noqa: F811
    """Gradio streams each file of an upload into a temporary file: one cut off by the cap must not stay there."""
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "1")
    _, url = serve_app()
    cap = 2 * 2**20  # the upload cap and 1 MB for the form around the files

    def part(name: str, size: int) -> bytes:
        return (b'--x\r\nContent-Disposition: form-data; name="files"; filename="%s"\r\n\r\n' % name.encode()
                + b"y" * size + b"\r\n")
    body = part("a.jsonl", 900_000) + part("b.jsonl", 900_000)  # each file under Gradio's own 1 MB per file
    body += part("c.jsonl", cap + 1 - len(body) - len(part("c.jsonl", 0)))  # the body passes the cap on its last byte
    pieces = [body[i:i + 65536] for i in range(0, len(body), 65536)]
    head = {"Transfer-Encoding": "chunked", "Content-Type": "multipart/form-data; boundary=x"}
    status, text = raw_post(url, "/gradio_api/upload", head, chunked(pieces))
    assert status == 413 and text.startswith("This upload is over the 1.0 MB limit"), text
    assert not [p.name for p in (home / "uploads").iterdir() if p.is_file()]  # the three files' parts are gone
