"""A team on a served app: the owner of today's password, labellers signed in with theirs. A labeller reaches only
their page (Chat and Label) and its events: the server refuses them the owner's page, its events (training,
exports, run deletion), uploads, files and the REST API. A removed labeller is signed out at once, and the password
leaves no trace but its hash."""
import json
import threading
import time
from types import SimpleNamespace

import gradio as gr
import httpx
import pytest

from backend.accounts import Account, AccountStore, SignIn
from backend.db import connect
from backend.jobs.runner import JobRunner
from tests.test_ui_app import free_port
from ui import team
from ui.app import build_app, launch
from ui.common import Context


@pytest.fixture(scope="module")
def served(module_home):
    runner = JobRunner()
    demo = build_app(runner)
    port = free_port()
    launch(demo, port=port, auth="anna:owner-pw", prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}", module_home
    demo.close(verbose=False)
    runner.close()


def signed_in(url: str, name: str, password: str) -> httpx.Client:
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    assert client.post("/login", data={"username": name, "password": password}).status_code == 200
    return client


def fn_index(demo, page: str, button_id: str) -> int:
    """The event a button with `button_id` on `page` triggers."""
    block = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == button_id and b.page == page)
    return next(i for i, fn in demo.fns.items() if any(t[0] == block._id for t in fn.targets))


def join(client: httpx.Client, index: int, data: list) -> httpx.Response:
    return client.post("/gradio_api/queue/join", json={"fn_index": index, "data": data, "session_hash": "abc123",
                                                       "event_data": None, "trigger_id": None})


def test_a_labeller_is_refused_by_the_server_and_a_removed_one_signed_out_at_once(served, monkeypatch):
    demo, url, home = served
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    password = AccountStore(connect()).add_labeller("bea", owner_name="anna")
    (home / "exports").mkdir(exist_ok=True)
    (home / "exports" / "labels.jsonl").write_text("{}\n")
    exported = f"/gradio_api/file={home / 'exports' / 'labels.jsonl'}"
    owner, bea = signed_in(url, "anna", "owner-pw"), signed_in(url, "bea", password)

    assert owner.get("/").status_code == 200 and owner.get(exported).status_code == 200
    assert bea.get("/").status_code == 302 and bea.get("/").headers["location"] == "/label"
    assert bea.get("/label").status_code == 200
    assert bea.get("/config", params={"page": "label"}).status_code == 200
    refused = [bea.get(exported), bea.get("/config"), bea.get("/config?page=label&page="),
               bea.post("/gradio_api/upload", files={"files": ("a.csv", b"q,a\n1,2\n")}),
               bea.post("/gradio_api/run/predict", json={"data": []}),
               bea.post("/gradio_api/call/predict", json={"data": []}),
               join(bea, fn_index(demo, "", "tl-train-kto"), [None, None]),  # Train on labels, the owner's page
               join(bea, fn_index(demo, "", "tl-team-add"), ["mallory"])]  # adding an account
    assert [r.status_code for r in refused] == [403] * len(refused)
    assert "Labellers may chat and label only" in refused[0].text
    assert [a["name"] for a in AccountStore(connect()).labellers()] == ["bea"]
    # the labeller's own page's events go through (the label queue's Undo: nothing to undo yet)
    assert join(bea, fn_index(demo, "label", "tl-key-undo"), [None, "", None]).status_code == 200

    team.remove(Context(None), {"who": "bea", "account": Account("anna", "owner")}, demo)
    assert "bea" not in demo.server_app.tokens.values()
    assert bea.get("/config", params={"page": "label"}).status_code == 401
    assert join(bea, fn_index(demo, "label", "tl-key-undo"), [None, "", None]).status_code == 401
    assert bea.post("/login", data={"username": "bea", "password": password}).status_code == 400
    assert owner.get("/config").status_code == 200

    # removed elsewhere (another process, the database): signed out at the next request all the same
    sam = signed_in(url, "sam", AccountStore(connect()).add_labeller("sam"))
    assert sam.get("/config", params={"page": "label"}).status_code == 200
    AccountStore(connect()).remove("sam")
    assert sam.get("/config", params={"page": "label"}).status_code == 401
    assert "sam" not in demo.server_app.tokens.values()

    # the password left no trace in the workspace but its hash (the database, its log, uploads, exports)
    found = [p for p in home.rglob("*") if p.is_file() and password.encode() in p.read_bytes()]
    assert found == []


def test_only_the_owner_manages_the_team():
    demo = SimpleNamespace(tuneloop_sign_in=SignIn(("anna", "pw"), lambda: AccountStore(connect())), server_app=None)
    ctx = Context(None)
    owner, labeller = Account("anna", "owner"), Account("bea", "labeller")
    shown = team.add(ctx, {"name": "bea", "account": owner}, demo)
    members, who, said = shown[0], shown[1], shown[-1]
    assert "| bea |" in members and who["choices"] == ["bea"] and "shown only now" in said
    for handler, values in ((team.add, {"name": "sam"}), (team.remove, {"who": "bea"}),
                            (team.new_password, {"who": "bea"}), (team.team_view, {}), (team.show_progress, {}),
                            (team.set_overlap, {"overlap": 2})):
        with pytest.raises(gr.Error, match="Only the app's owner"):
            handler(ctx, {**values, "account": labeller}, **({} if handler in (team.show_progress, team.set_overlap)
                                                             else {"demo": demo}))
    assert [a["name"] for a in AccountStore(connect()).labellers()] == ["bea"]
    no_passwords = SimpleNamespace(tuneloop_sign_in=None, server_app=None)
    with pytest.raises(gr.Error, match="Start the app with a password"):
        team.add(ctx, {"name": "sam", "account": owner}, no_passwords)


def test_the_team_tab_shows_each_labellers_win_rates():
    from backend.answers import Answer, Sampling, Source
    from backend.labels import LabelStore
    store = LabelStore(connect())
    for name, value in (("bea", "right"), ("sam", "left")):
        for i in range(2):
            base, tuned = Answer(f"Base {i}.", Source("smollm2"), Sampling()), \
                Answer(f"Tuned {i}.", Source("smollm2", "run-1"), Sampling())
            store.add_choice([{"role": "user", "content": f"Q{i}?"}], base, tuned, value, labeller=name, blind=True)
    text = team.agreement_text(Context(None))
    assert "A/B win-rates, everyone's and by labeller" in text and "#### bea" in text and "#### sam" in text
    assert "#### Everyone\n\n**Do people prefer it? Blind A/B votes**" in text  # overall, as in the Runs tab
    assert "| run-1 | base model (smollm2) | 4 | 2 | 0 | 2 | 50% |" in text
    assert "| run-1 | base model (smollm2) | 2 | 2 | 0 | 0 | 100% |" in text
    assert "| run-1 | base model (smollm2) | 2 | 0 | 0 | 2 | 0% |" in text


def test_a_labeller_gets_nothing_more_by_splitting_their_cookie_or_asking_for_the_api(served, monkeypatch):
    """A review found that the guard read only the last Cookie header, while Gradio merges them all: a labeller
    who sent their sign-in cookie in one header and anything in a second was taken for someone not signed in, passed
    on, then signed in by Gradio: the owner's page, its events and files. The API's description listed every owner
    event."""
    demo, url, home = served
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    password = AccountStore(connect()).add_labeller("cy", owner_name="anna")
    cy = signed_in(url, "cy", password)
    cookie = "; ".join(f"{k}={v}" for k, v in cy.cookies.items())
    bare = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    split = {"headers": [("cookie", cookie), ("cookie", "x=1")]}

    def get(path):
        return bare.build_request("GET", path, headers=httpx.Headers(split["headers"]))
    assert bare.send(get("/config")).status_code == 403
    assert bare.send(get("/")).status_code == 302
    joined = bare.build_request("POST", "/gradio_api/queue/join", headers=httpx.Headers(split["headers"]),
                                json={"fn_index": fn_index(demo, "", "tl-train-kto"), "data": [None, None],
                                      "session_hash": "abc124", "event_data": None, "trigger_id": None})
    assert bare.send(joined).status_code == 403
    for path in ("/gradio_api/info", "/gradio_api/info?all_endpoints=true", "/gradio_api/openapi.json"):
        assert cy.get(path).status_code == 403, path
    assert cy.get("/gradio_api/info", params={"page": "label"}).status_code != 403


def test_sign_ins_are_throttled_per_name_so_a_labeller_neither_resets_nor_locks_the_owner(served, monkeypatch):
    """Before, one labeller's good sign-in cleared the failures of the whole address: four wrong owner passwords,
    then the labeller's, again and again, and the owner's password could be guessed without end (16 guesses, no
    429). And a labeller's typos locked the owner out."""
    demo, url, home = served
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    password = AccountStore(connect()).add_labeller("dee", owner_name="anna")
    client = httpx.Client(base_url=url, timeout=60, follow_redirects=False)
    codes = []
    for _ in range(3):
        codes += [client.post("/login", data={"username": "anna", "password": f"guess{i}"}).status_code
                  for i in range(4)]
        assert client.post("/login", data={"username": "dee", "password": password}).status_code == 200
    assert 429 in codes, codes  # the owner's name is locked after its five free tries, whatever dee does
    for i in range(6):
        client.post("/login", data={"username": "dee", "password": f"typo{i}"})
    assert client.post("/login", data={"username": "dee", "password": password}).status_code == 429
    demo.tuneloop_login_limiter.tries.clear()
    assert client.post("/login", data={"username": "anna", "password": "owner-pw"}).status_code == 200


def test_the_owners_name_takes_as_long_to_check_as_any_other(monkeypatch):
    """The owner's password was compared in microseconds and every other name took an Argon2 check: the timing told
    the owner's name. Now both go through Argon2 (counted by calls, not timed)."""
    import backend.accounts as accounts
    calls = []

    class Counting:
        def __init__(self, hasher):
            self.hasher = hasher

        def hash(self, password):
            return self.hasher.hash(password)

        def verify(self, stored, password):
            calls.append(1)
            return self.hasher.verify(stored, password)
    monkeypatch.setattr(accounts, "_HASHER", Counting(accounts._HASHER))
    sign_in = SignIn(("anna", "pw"), lambda: AccountStore(connect()))
    assert sign_in.check("anna", "pw") and not sign_in.check("anna", "nope")
    assert not sign_in.check("nobody", "nope")
    assert len(calls) == 3


def test_a_removed_labellers_open_streams_end_at_once(served, monkeypatch):
    """Signed out at once means their page's open streams too (its heartbeat, an answer streaming in), not only their
    next request: removing kim ends the stream her page holds open."""
    demo, url, home = served
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    kim = signed_in(url, "kim", AccountStore(connect()).add_labeller("kim", owner_name="anna"))
    heard, ended = [], threading.Event()

    def listen():
        with kim.stream("GET", "/gradio_api/heartbeat/kims-page") as response:
            heard.append(response.status_code)
            for line in response.iter_lines():
                heard.append(line)
        ended.set()
    threading.Thread(target=listen, daemon=True).start()
    deadline = time.monotonic() + 60
    while "data: ALIVE" not in heard:  # the page's heartbeat is open (it never ends by itself)
        assert time.monotonic() < deadline, f"no heartbeat: {heard}"
        time.sleep(0.1)
    team.remove(Context(None), {"who": "kim", "account": Account("anna", "owner")}, demo)
    assert ended.wait(30), "the removed labeller's open stream went on"
    assert heard[0] == 200 and kim.get("/config", params={"page": "label"}).status_code == 401
