"""Overlap on the Label tab (issue 28, item 3): labellers who start the same prompts share one queue; each item (the
same answers for all) goes to as many labellers as the owner chose on the Team tab, never twice to one, also across
sittings; each labeller sees their own progress, the owner everyone's, and `labels stats --json` the numbers the
Team tab shows."""
import threading
from collections import deque

import gradio as gr
import pytest

from backend.accounts import Account
from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.errors import ConfigError
from backend.labels import Item, LabelStore
from backend.labels.overlap import labellers_per_item, set_labellers_per_item, team_progress
from backend.labels.shared import SharedQueues
from backend.labels.queue import Side
from tests.test_cli import app, last_json
from tests.test_ui_handlers import ctx  # noqa: F401  (the fixture)
from tests.fake_runs import fake_run
from ui import label_tab, team

SOURCE = Source("tiny", None)
SIDES = [Side(SOURCE, Sampling(temperature=0.7))]
OWNER = Account("anna", "owner")


def ask(text):
    return [{"role": "user", "content": text}]


class MadeQueue:
    """A LabelQueue whose answers are all made: the items in order, then None."""
    mode = "thumb"
    error = None

    def __init__(self, prompts: list[str]):
        self.prompts = [ask(p) for p in prompts]
        self.identical_skipped = 0
        self._items = deque(Item(f"id{i}", i + 1, self.prompts[i], [Answer(f"Answer {i}.", SOURCE, Sampling())])
                            for i in range(len(prompts)))
        self.closed = False

    def next(self, timeout=None):
        return self._items.popleft() if self._items else None

    def ready(self):
        return len(self._items)

    def left(self):
        return len(self._items)

    def close(self):
        self.closed = True


class App:
    """What the registry of shared queues belongs to: in the web app, its Context."""


def seats(prompts, names, app_object=None):
    queues = SharedQueues.of(app_object or App())
    made = MadeQueue(prompts)
    return made, [queues.join(made.prompts, SIDES, name, lambda: made, db=connect) for name in names]


def judge_all(seat) -> list[str]:
    """Judges (thumbs up) every item the seat hands out; the prompts it got."""
    got = []
    while (item := seat.next(timeout=0)) is not None:
        LabelStore(connect()).add_thumb(item.prompt, item.answers[0], "up", labeller=seat.labeller)
        seat.judged(item)
        got.append(item.prompt[0]["content"])
    return got


def test_the_owners_choice_is_kept_and_checked():
    assert labellers_per_item(connect()) == 1  # each item once, until the owner chooses
    set_labellers_per_item(connect(), 3)
    assert labellers_per_item(connect()) == 3  # another connection: kept in the database
    for wrong in (0, 6, "two"):
        with pytest.raises(ConfigError, match="give each item to 1 to 5 labellers"):
            set_labellers_per_item(connect(), wrong)


def test_with_two_per_item_both_labellers_judge_every_item_and_nobody_twice():
    set_labellers_per_item(connect(), 2)
    made, (bea, sam, kim) = seats(["Q0?", "Q1?", "Q2?"], ["bea", "sam", "kim"])
    assert bea.shared is sam.shared is kim.shared  # the same prompts and sides: one queue
    got = {"bea": judge_all(bea), "sam": judge_all(sam), "kim": judge_all(kim)}
    assert got == {"bea": ["Q0?", "Q1?", "Q2?"], "sam": ["Q0?", "Q1?", "Q2?"], "kim": []}
    assert bea.progress() == {"items": 3, "overlap": 2, "complete": 3, "judged": {"bea": 3}}  # their own
    assert bea.progress(everyone=True)["judged"] == {"bea": 3, "sam": 3}  # the owner's view
    assert team_progress(connect())["thumb"] == {"items": 3, "complete": 3, "judged": {"bea": 3, "sam": 3}}


def test_with_one_per_item_the_labellers_split_the_items_and_a_skip_goes_to_someone_else():
    made, (bea, sam) = seats(["Q0?", "Q1?", "Q2?"], ["bea", "sam"])
    first, second = bea.next(timeout=0), sam.next(timeout=0)
    assert first.prompt != second.prompt  # each item to one labeller
    bea.skipped(first)
    assert sam.next(timeout=0).id == first.id  # bea's skip went to sam
    assert bea.next(timeout=0).prompt == ask("Q2?") and bea.next(timeout=0) is None  # never the skipped one again


def test_a_labeller_who_leaves_hands_their_item_on_and_one_who_comes_back_gets_only_what_they_have_not_judged():
    set_labellers_per_item(connect(), 2)
    owner_app = App()
    made, (bea,) = seats(["Q0?", "Q1?"], ["bea"], owner_app)
    LabelStore(connect()).add_thumb(ask("Q0?"), Answer("Answer 0.", SOURCE, Sampling()), "down", labeller="bea")
    held = bea.next(timeout=0)
    assert held.prompt == ask("Q1?")  # Q0's answer she judged in an earlier sitting
    bea.close()  # her page closed before she judged it
    again = SharedQueues.of(owner_app).join(made.prompts, SIDES, "bea", lambda: MadeQueue([]), db=connect)
    assert again.shared is bea.shared and again.next(timeout=0).id == held.id  # handed back, hers to take
    assert again.next(timeout=0) is None


def test_labellers_at_once_get_no_item_more_than_n_times():
    set_labellers_per_item(connect(), 2)
    made, people = seats([f"Q{i}?" for i in range(30)], [f"l{i}" for i in range(4)])
    got = {}
    threads = [threading.Thread(target=lambda s=s: got.__setitem__(s.labeller, judge_all(s))) for s in people]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert all(len(items) == len(set(items)) for items in got.values())
    assert sorted(p for items in got.values() for p in items) == sorted(f"Q{i}?" for i in range(30) for _ in "ab")


def on_screen(ctx, shown):
    """The page once the next answer is on screen (or none is left): the timer's look, waited for."""
    session = shown[0]
    if session.item is None and session.queue.left() > 0:
        with session.lock:
            return label_tab.advance(ctx, session, None, wait=120)
    return shown


def begin(ctx, name: str | None, prompts: str, run_id: str):
    values = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": prompts, "mode": "thumb",
              "source_a": run_id, "temperature_a": 1.0, "source_b": run_id, "temperature_b": 1.0, "system": "",
              "max_tokens": 12, "account": Account(name, "labeller") if name else OWNER}
    return label_tab.begin(ctx, values)


def test_label_tab_two_labellers_share_the_answers_see_their_progress_and_the_owner_everyones(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    owner_said = team.set_overlap(ctx, {"overlap": 2, "account": OWNER})[1]
    assert "Each item now goes to **2** labellers" in owner_said
    with pytest.raises(gr.Error, match="Only the app's owner"):
        team.set_overlap(ctx, {"overlap": 1, "account": Account("bea", "labeller")})
    prompts = "Say hi.\nSay bye."
    shown = {name: begin(ctx, name, prompts, run_id) for name in ("bea", "sam")}
    assert shown["bea"][0].queue.shared is shown["sam"][0].queue.shared
    assert shown["bea"][3] == shown["sam"][3]  # the same answer (sampled once at temperature 1), for both
    for round_ in range(2):
        for name in ("bea", "sam"):
            session = shown[name][0]
            shown[name] = on_screen(ctx, label_tab.judge(ctx, {"state": session, "shown": shown[name][5],
                                                               "account": Account(name, "labeller")}, value="up"))
            if (round_, name) == (1, "bea"):  # she is done; the last item waits for sam
                assert "Nothing more for you here" in shown["bea"][2] and "1 of 2 items complete" in shown["bea"][1]
                again = begin(ctx, "bea", prompts, run_id)  # she starts again: nothing she judged comes back
                assert again[0].queue.shared is session.queue.shared and again[5] == ""
                mine = begin(ctx, None, prompts, run_id)  # the owner joins: one item is complete, sam has the other
                assert mine[5] == "" and "1 of 2 items complete · judged by bea 2, sam 1" in mine[1]
    bea = label_tab.render(ctx, shown["bea"][0])
    assert "Each item goes to 2 labellers: 2 of 2 items complete · you judged 2" in bea[1] and "sam" not in bea[1]
    assert "All prompts are judged" in bea[2]
    labels = LabelStore(ctx.db()).list("thumb")
    assert sorted(lab["labeller"] for lab in labels) == ["bea", "bea", "sam", "sam"]
    assert len({(lab["prompt"][0]["content"], lab["answer"]) for lab in labels}) == 2  # two items, judged twice

    progress = team.progress_text(ctx)
    assert "“Say hi.” and 1 more (thumbs): **2 of 2 items complete**; judged by bea 2, sam 2" in progress
    assert "Thumbs: 2 of the 2 items judged so far are complete; judged by bea 2, sam 2" in progress
    cli = last_json(app("labels", "stats", "--json"))["overlap"]
    assert cli == team_progress(ctx.db()) == {"labellers_per_item": 2, "ab": {"items": 0, "complete": 0, "judged": {}},
                                              "thumb": {"items": 2, "complete": 2, "judged": {"bea": 2, "sam": 2}}}
    assert "Thumbs: 2 of the 2 items judged so far are complete; judged by bea 2, sam 2" in app("labels", "stats").stdout
    fresh = begin(ctx, "bea", prompts, run_id)  # every item complete: starting again makes new answers
    assert fresh[0].queue.shared is not shown["bea"][0].queue.shared and fresh[5] and "Say hi." in fresh[2]
    for session in (shown["bea"][0], shown["sam"][0], again[0], mine[0], fresh[0]):
        session.close()
