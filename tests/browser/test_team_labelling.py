"""A team in the browser: the owner adds two labellers on the Team tab and gives each item to two of them; each
signs in in a browser of their own, gets a page with Chat and Label only, and they start the same prompts at once:
one shared queue, the same (sampled) answers for both, each sees their own progress and the owner everyone's. Every
label carries its labeller, the owner's Team tab shows how far they agree and where they split, the server refuses
a labeller the owner's requests and files, and a removed labeller is signed out."""
import re

import pytest

from backend.data import DatasetStore
from backend.db import connect
from backend.labels import LabelStore
from tests.browser.conftest import ARTIFACTS, VIEWPORT, free_port
from tests.browser.loop_helpers import (TINY_ANSWER, count_text, open_tab, served,  # noqa: F401
                                        start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser
PROMPTS = ["Question number 0?", "Question number 1?", "Question number 2?"]


@pytest.fixture
def team_app(home, embedded_model):
    from backend.jobs.runner import JobRunner
    from ui.app import build_app, launch
    runner = JobRunner()
    demo = build_app(runner)
    port = free_port()
    launch(demo, port=port, auth="anna:owner-pw", prevent_thread_lock=True, quiet=True)
    yield f"http://127.0.0.1:{port}"
    demo.close(verbose=False)
    runner.close(stop_current=True)


def sign_in(browser, url: str, name: str, password: str):
    context = browser.new_context(viewport=VIEWPORT)
    context.set_default_timeout(120_000)
    page = context.new_page()
    page.goto(url)
    page.get_by_label("username").fill(name)
    page.get_by_label("password").fill(password)
    page.get_by_role("button", name="Login").click()
    return page


def add_labeller(owner, name: str) -> str:
    owner.locator("#tl-team-name textarea, #tl-team-name input").first.fill(name)
    owner.locator("#tl-team-add").click()
    said = owner.locator("#tl-team-said")
    wait_for(lambda: f"Added {name}" in said.inner_text(), 60, f"{name} was not added: {said.inner_text()!r}")
    return re.search(r"shown only now: (\S+)", said.inner_text()).group(1)




def owners_event(owner, url: str, **props) -> int:
    """The event (fn_index) of the owner's button whose properties include `props`, from the owner's page config."""
    config = owner.request.get(f"{url}/config").json()
    button = next(c["id"] for c in config["components"]
                  if c.get("type") == "button" and props.items() <= c.get("props", {}).items())
    return next(d["id"] for d in config["dependencies"] if any(t[0] == button for t in d["targets"]))


def press(page, key: str, n: int):
    page.locator("#tl-label-answer-a .tl-answer").wait_for()
    page.keyboard.press(key)
    wait_for(lambda: f"{n} judged" in count_text(page), 60, f"key {key!r} was not counted: {count_text(page)!r}")


def test_a_team_labels_at_once_and_the_owner_sees_who_agreed(team_app, browser, tiny_model, home):
    run_id = fake_run(tiny_model)
    owner = sign_in(browser, team_app, "anna", "owner-pw")
    open_tab(owner, "8. Team")
    passwords = {name: add_labeller(owner, name) for name in ("bea", "sam")}
    owner.locator("#tl-team-overlap").get_by_label("2").check()  # each item to both of them
    wait_for(lambda: "Each item now goes to 2 labellers" in owner.locator("#tl-team-said").inner_text(), 60,
             "the owner's choice of 2 labellers per item was not taken")
    owner.screenshot(path=str(ARTIFACTS / "team-owner-added.png"), full_page=True)

    pages = {name: sign_in(browser, team_app, name, password) for name, password in passwords.items()}
    for name, page in pages.items():
        page.wait_for_url(re.compile(r"/label$"))
        tabs = page.get_by_role("tab")
        wait_for(lambda: tabs.all_inner_texts() == ["Label", "Chat"], 60, f"tabs: {tabs.all_inner_texts()}")
        assert page.get_by_text("Train KTO on the thumbs").count() == 0
        source = page.get_by_role("combobox", name="Answers from", exact=True)
        wait_for(lambda: source.input_value().startswith(run_id), 30, "the finished run is not offered")

    votes = {"bea": "ggb", "sam": "gbb"}  # they split on the second answer
    for page in pages.values():  # at the default temperature: the queue they share makes the answers once
        start_labelling(page, PROMPTS, max_tokens=TINY_ANSWER)
    for n in range(len(PROMPTS)):  # both sessions open, their judgements interleaved
        for name, keys in votes.items():
            press(pages[name], keys[n], n + 1)
    # bea was done first: the last item was sam's to judge then
    assert "Nothing more for you here" in pages["bea"].locator("#tl-label-prompt").inner_text()
    assert "2 of 3 items complete · you judged 3" in count_text(pages["bea"])
    wait_for(lambda: "All prompts are judged" in pages["sam"].locator("#tl-label-prompt").inner_text(), 60,
             "sam's queue did not end")
    assert "Each item goes to 2 labellers: 3 of 3 items complete · you judged 3" in count_text(pages["sam"])
    assert "sam" not in count_text(pages["bea"])  # her own only
    pages["bea"].screenshot(path=str(ARTIFACTS / "team-labeller-page.png"), full_page=True)
    chat = pages["bea"]  # a labeller's thumb in Chat carries their name too
    open_tab(chat, "Chat")
    # The answers' settings are left as they are (the tiny model answers at once): opening their accordion raced
    # the tab's first drawing on a loaded machine, and its inputs stayed hidden.
    chat.locator("#tl-chat-message textarea").fill("Who are you?")
    chat.keyboard.press("Enter")
    chat.locator("#tl-chat-saved").get_by_text("Both have answered").wait_for(timeout=240_000)
    chat.locator("#tl-chat-left-up").click()
    chat.locator("#tl-chat-saved").get_by_text("👍 good for the left answer").wait_for()
    assert [(lab["labeller"], lab["origin"]) for lab in LabelStore(connect()).list() if lab["origin"] == "chat"] == \
        [("bea", "chat")]
    assert "Your labels so far, bea" in pages["bea"].locator("#tl-label-totals").inner_text()

    labels = LabelStore(connect()).list(kind="thumb")
    labels = [lab for lab in labels if lab["origin"] == "label"]
    assert sorted((lab["labeller"], lab["value"]) for lab in labels) == sorted(
        [("bea", "up"), ("bea", "up"), ("bea", "down"), ("sam", "up"), ("sam", "down"), ("sam", "down")])

    open_tab(owner, "1. Data")
    open_tab(owner, "8. Team")
    agreed = owner.locator("#tl-team-agreement")
    wait_for(lambda: "Cohen's kappa" in agreed.inner_text(), 60, f"no agreement shown: {agreed.inner_text()!r}")
    text = agreed.inner_text()
    assert "bea and sam: 67% the same on 3 items" in text and "Split on 1 of 3 shared items" in text
    assert "Question number 1?" in text and "bea good, sam bad" in text
    progress = owner.locator("#tl-team-progress").inner_text()  # everyone's
    assert "“Question number 0?” and 2 more (thumbs): 3 of 3 items complete; judged by bea 3, sam 3" in progress
    assert owner.locator("#tl-team-overlap").get_by_label("2").is_checked()  # kept
    owner.screenshot(path=str(ARTIFACTS / "team-owner-agreement.png"), full_page=True)

    # Train on labels, the majority per answer: Q0 good (both), Q1 dropped (a tie), Q2 bad (both), and bea's
    # thumb in Chat (an answer she alone judged: her own majority)
    open_tab(owner, "7. Label")
    owner.get_by_label("The majority per answer (more than half; ties dropped): 3 KTO examples, 0 DPO pairs").check()
    owner.locator("#tl-label-rule").screenshot(path=str(ARTIFACTS / "team-owner-train-choices.png"))
    owner.locator("#tl-train-kto").click()
    owner.get_by_role("button", name="Train KTO anyway on 3 examples").click()
    trained = owner.locator("#tl-label-trained")
    wait_for(lambda: "Started" in trained.inner_text(), 60, f"no run started: {trained.inner_text()!r}")
    assert "the majority label per item (more than half; ties dropped)" in trained.inner_text()
    dataset = DatasetStore(connect()).get(re.search(r"dataset '([^']+)'", trained.inner_text()).group(1))
    assert dataset["valid_rows"] == 3 and "majority" in dataset["source"]
    owner.screenshot(path=str(ARTIFACTS / "team-owner-trained-majority.png"), full_page=True)

    bea = pages["bea"].request  # the server refuses, whatever the page shows
    assert bea.get(f"{team_app}/config").status == 403
    assert bea.post(f"{team_app}/gradio_api/upload", multipart={"files": {"name": "a.csv", "mimeType": "text/csv",
                                                                          "buffer": b"q,a\n"}}).status == 403
    assert bea.get(f"{team_app}/").status == 200 and pages["bea"].request.get(f"{team_app}/").url.endswith("/label")
    owners = {"train on labels": owners_event(owner, team_app, elem_id="tl-train-kto"),
              "export a model": owners_event(owner, team_app, value="Export"),
              "download labels": owners_event(owner, team_app, value="Download thumbs as KTO JSONL")}
    for what, fn_index in owners.items():  # as the owner's page would send them, from bea's signed-in browser
        asked = bea.post(f"{team_app}/gradio_api/queue/join",
                         data={"fn_index": fn_index, "data": [], "session_hash": "bea-tries", "event_data": None,
                               "trigger_id": None})
        assert asked.status == 403, f"{what}: {asked.status}"
    exported = home / "exports" / "labels-kto.jsonl"
    exported.parent.mkdir(parents=True, exist_ok=True)
    exported.write_text("{}\n")
    assert owner.request.get(f"{team_app}/gradio_api/file={exported}").status == 200
    assert bea.get(f"{team_app}/gradio_api/file={exported}").status == 403

    open_tab(owner, "8. Team")
    owner.get_by_role("combobox", name="Labeller").click()
    owner.get_by_role("option", name="sam").click()
    owner.locator("#tl-team-remove").click()
    wait_for(lambda: "Removed sam" in owner.locator("#tl-team-said").inner_text(), 60, "sam was not removed")
    assert pages["sam"].request.get(f"{team_app}/config?page=label").status == 401
    pages["sam"].get_by_label("password").wait_for(timeout=60_000)  # his open page: back at the sign-in form
    pages["sam"].screenshot(path=str(ARTIFACTS / "team-labeller-removed.png"), full_page=True)

    # the passwords left no trace in the workspace but their hashes (database, logs, uploads, exports)
    for password in passwords.values():
        assert [p for p in home.rglob("*") if p.is_file() and password.encode() in p.read_bytes()] == []


def test_the_team_tab_counts_only_blind_votes_and_says_what_it_left_out(served, page, tiny_model):
    """Issue 26 follow-up: the Team tab called every A/B choice a blind vote. Each labeller's blind votes count; a
    choice made with the names shown is left out, said in the words `labels stats` prints."""
    from backend.answers import Answer, Sampling, Source
    from backend.labels.winrate import win_rates

    run_id = fake_run(tiny_model)
    store = LabelStore(connect())
    ask = [{"role": "user", "content": "Who are you?"}]
    base = Answer("I am SmolLM.", Source(tiny_model), Sampling())
    tuned = Answer("I am Quill.", Source(tiny_model, run_id), Sampling())
    for name in ("bea", "sam"):
        store.add_choice(ask, base, tuned, "right", labeller=name, blind=True)
    store.add_choice(ask, base, tuned, "left", labeller="sam", blind=False)
    said = win_rates(connect(), "sam")["left_out"]
    assert said == ("Left out of the win-rates, which count only blind votes: 1 A/B choice made with the models' "
                    "names shown.")
    page.goto(served.url)
    open_tab(page, "8. Team")
    agreed = page.locator("#tl-team-agreement")
    wait_for(lambda: "Blind A/B win-rates, everyone's and by labeller" in agreed.inner_text(), 60,
             f"no win-rates on the Team tab: {agreed.inner_text()!r}")
    text = agreed.inner_text()
    assert text.count(said) == 2, text  # everyone's and sam's; bea's has nothing left out
    from backend.runs import RunStore
    rows = agreed.locator("tr", has_text=RunStore(connect()).get(run_id)["name"])
    cells = [[c.strip() for c in row.locator("td").all_inner_texts()] for row in rows.all()]
    assert [(row[2], row[3], row[6]) for row in cells] == [("2", "2", "100%"), ("1", "1", "100%"), ("1", "1", "100%")]
    agreed.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "team-blind-win-rates.png"), full_page=True)
