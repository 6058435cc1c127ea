"""The tabs' handlers, called directly as plain functions of (context, values): what a click does, without a
browser. Tiny model and fake runs: seconds. The browser tests cover the same paths end to end."""
import threading
from collections import deque

import gradio as gr
import pytest

from backend.answers import Answer, Sampling, Source
from backend.data import DatasetStore, inspect_file
from backend.errors import DataError, RunStateError
from backend.labels import Item, LabelStore, label_stats, stats_text
from backend.models.pool import ModelPool
from backend.jobs.runner import JobRunner
from tests.fake_runs import fake_run
from ui import chat_tab, data_tab, label_tab, runs_tab, train_tab
from ui.common import BASE, Context
from ui.settings_form import form_values


class Progress:
    def __call__(self, *args, **kwargs):
        pass


@pytest.fixture
def ctx(home):
    runner = JobRunner()
    yield Context(runner, ModelPool())
    runner.close(stop_current=True)


def train_form(dataset: str, model_folder: str, **changes) -> dict:
    values = form_values("quick", "sft")
    values.update(max_steps=1, batch_size=2, rehearsal=0, probe=False, validation_split=0.0, max_length=64)
    values.update(dataset=dataset, method="sft", source="folder", folder=model_folder, base_run=None, run_name="",
                  preset="quick")
    values.update(changes)
    return values


def test_start_queues_the_run_the_form_describes_and_stop_acts_on_it(ctx, tiny_model, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    status, run_id, tabs, memory = train_tab.start_run(ctx, train_form("chats", tiny_model))
    assert "started" in status or "waits in line" in status
    assert tabs.selected == "live" and "Memory: Fits" in memory
    config = ctx.runs().config(run_id)
    assert (config.dataset, config.model, config.max_steps, config.name) == ("chats", tiny_model, 1, "chats, quick")
    assert "Stopping 'chats, quick'" in train_tab.stop_run(ctx, {"watch": run_id}) or \
        ctx.runs().get(run_id)["status"] == "done"  # a one-step run may finish before the click
    with pytest.raises(gr.Error, match="No run was started from this page"):
        train_tab.stop_run(ctx, {"watch": None})


def test_the_form_follows_examples_about_the_assistant_and_keeps_what_the_person_changed(ctx, chat_file, tiny_model):
    """Issue 24: the quick preset's step for examples that teach who the assistant is (1e-3) is shown in the form as
    `train` would use it for the data chosen; a value the person typed, or Try this filled in, stays."""
    from pathlib import Path

    from ui import train_fill
    store = DatasetStore(ctx.runs().db)
    store.add(inspect_file(chat_file), name="chats")
    store.add(inspect_file(Path(__file__).parent / "fixtures" / "identity_quill.jsonl"), name="quill")

    def pick(dataset, followed, rate, typed=False):
        values = dict(train_form(dataset, ""), learning_rate=rate, followed=followed, typed=typed)
        _, _, cards, now, update = train_tab.on_dataset(ctx, values)
        return now, update.get("value", rate), cards

    now, rate, cards = pick("quill", False, 5e-4)
    assert (now, rate) == (True, 1e-3)
    assert "teach who the assistant is, so the preset trains them with learning rate 0.001 instead of 0.0005" in cards
    assert "so the preset trains them with" not in pick("chats", True, 1e-3)[2]
    assert pick("chats", True, 1e-3)[:2] == (False, 5e-4)
    assert pick("quill", False, 2e-4)[:2] == (True, 2e-4)  # not the preset's: kept
    assert pick("quill", False, 5e-4, typed=True)[:2] == (True, 5e-4)  # typed, even where it is the preset's: kept
    assert pick("quill", False, 0.0005000000000000001)[:2] == (True, 1e-3)  # as a number box may send it back
    assert pick("quill", True, 5e-4)[:2] == (True, 5e-4)  # already filled for this data (Try this): kept
    # the preset chosen again fills the form for the data
    shown = train_tab.on_method(ctx, dict(train_form("quill", "")))
    rate = [u["value"] for d, u in zip(train_tab.advanced_declarations(), shown[1:-3]) if d.name == "learning_rate"]
    assert rate == [1e-3] and shown[-2:] == (True, False)  # filled for such examples; nothing typed since
    from tests.conftest import tiny_config
    config = tiny_config(tiny_model, "quill", learning_rate=5e-4, epochs=4.0).to_dict()
    hint = {"run": "sft-1", "change": {"epochs": 4.0}, "config": config}
    filled = train_fill.fill_train_form(ctx, {"suggestion": hint})
    assert filled["followed"] is True and filled["typed"] is True  # the run's rate stays


def test_start_refuses_in_words_naming_the_box(ctx, tiny_model, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    with pytest.raises(gr.Error, match=r"Learning rate \(size of each step\): 5.0 is above"):
        train_tab.start_run(ctx, train_form("chats", tiny_model, learning_rate=5.0))
    with pytest.raises(DataError, match="'chats' holds conversations .SFT data., but DPO needs preference pairs"):
        train_tab.start_run(ctx, train_form("chats", tiny_model, method="dpo"))
    with pytest.raises(gr.Error, match="Pick a dataset first"):
        train_tab.start_run(ctx, train_form("", tiny_model))
    assert ctx.runs().list() == []


def test_a_memory_problem_is_shown_in_the_box_not_raised(ctx, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    html = train_tab.refresh_fit(ctx, train_form("chats", "/no/such/folder"))[0]
    assert "tl-too_big" in html and "No model folder at &#x27;/no/such/folder&#x27;" in html


def test_chat_streams_both_sides_then_every_judgement_is_saved(ctx, tiny_model):
    other, run_id = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)  # the random base says only newlines
    values = {"message": "Say hello.", "conversation": None, "left": other, "right": run_id, "system": "",
              "temperature": 0, "max_tokens": 6, "seed": 0}
    steps = list(chat_tab.respond(ctx, values))
    left, right, conv, _, note = steps[-1]
    assert len(steps) >= 3  # the user's turn, tokens, the end
    assert note.startswith("Both have answered (temperature 0, at most 6 tokens, seed ")  # what each label records
    assert left[-1]["role"] == right[-1]["role"] == "assistant" and left[-1]["content"] != right[-1]["content"]
    assert "👍 good for the right answer" in chat_tab.thumb(ctx, {"conversation": conv}, side=1, value="up")
    assert "left answer better" in chat_tab.choose(ctx, {"conversation": conv}, value="left")
    chat_tab.save_correction(ctx, {"conversation": conv, "editing": 0, "corrected": "Hello there."})
    labels = LabelStore(ctx.db()).list()
    assert [(label["kind"], label["run_id"]) for label in labels] == [("thumb", run_id), ("ab", other), ("edit", other)]
    assert labels[1]["run_id_b"] == run_id and labels[0]["settings"]["temperature"] == 0


def test_chat_after_a_correction_judges_the_models_answers_and_says_when_a_choice_makes_no_pair(ctx, tiny_model):
    """Issue 26, item 17: 'Both bad' after 'Correct it' was refused with an error, and the next turn's 'Left is
    better' was silently not made a DPO pair (the right side's history held the correction)."""
    left, right = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)
    values = {"message": "Say hello.", "conversation": None, "left": left, "right": right, "system": "",
              "temperature": 0, "max_tokens": 6, "seed": 0}
    conv = list(chat_tab.respond(ctx, values))[-1][2]
    models_said = [a.text for a in conv.answers]
    corrected = chat_tab.save_correction(ctx, {"conversation": conv, "editing": 1, "corrected": "Hello there."})[-1]
    assert "The right side now goes on from your correction" in corrected and "still judge the two models'" in corrected
    both_bad = chat_tab.choose(ctx, {"conversation": conv}, value="both_bad")
    assert "Saved: both bad" in both_bad and "as they gave them before your correction" in both_bad
    choice = LabelStore(ctx.db()).list("ab")[-1]
    assert [choice["answer"], choice["answer_b"]] == models_said  # the models' answers, not the correction

    conv = list(chat_tab.respond(ctx, {**values, "message": "And goodbye?", "conversation": conv}))[-1][2]
    second = chat_tab.choose(ctx, {"conversation": conv}, value="left")
    assert "makes no DPO pair: the two answers follow different conversations" in second
    assert label_stats(ctx.db())["dpo_pairs"] == 0  # what the sentence says


def test_chat_refuses_to_judge_before_an_answer(ctx):
    with pytest.raises(gr.Error, match="Send a message first"):
        chat_tab.thumb(ctx, {"conversation": None}, side=0, value="up")


def test_label_session_judges_undoes_and_refuses_kto_with_one_side_only(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    setup = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": "Say hi.\nSay bye.\nSay yes.",
             "mode": "thumb", "source_a": run_id, "temperature_a": 0, "source_b": BASE, "temperature_b": 1.0,
             "system": "", "max_tokens": 4}
    shown = label_tab.begin(ctx, setup)
    session, count, prompt, answer, _, item_id = shown[:6]
    assert "Say hi." in prompt and item_id and "0 judged" in count
    after = label_tab.judge(ctx, {"state": session, "shown": item_id}, value="up")
    assert "1 judged" in after[1] and "Say bye." in after[2]
    assert label_tab.judge(ctx, {"state": session, "shown": item_id}, value="up") == label_tab.NOTHING  # twice
    undone = label_tab.undo_last(ctx, {"state": session, "shown": after[5]})
    assert "Took back your last judgement (👍 good)" in undone[1] and "Say hi." in undone[2]
    label_tab.judge(ctx, {"state": session, "shown": undone[5]}, value="up")
    with pytest.raises(DataError, match="KTO needs answers marked good and answers marked bad"):  # a sentence on screen
        label_tab.train(ctx, {"preset": "quick"}, kind="kto")
    assert ctx.runs().list()[0]["id"] == run_id  # nothing queued
    session.close()


class StuckQueue:
    """A label queue with `ready` answers ready and the rest still being generated until `release` is set."""
    mode = "thumb"

    def __init__(self, prompts: list[str], ready: int):
        source = Source("tiny", None)
        self.items = deque(Item(f"id{i}", i + 1, [{"role": "user", "content": p}], [Answer(f"Answer {i}.", source,
                                                                                            Sampling())])
                           for i, p in enumerate(prompts))
        self.release, self.can_hand_out = threading.Event(), ready

    def next(self, timeout=None):
        if self.can_hand_out <= 0 and not self.release.wait(timeout):  # the old handlers waited here
            raise TimeoutError
        self.can_hand_out -= 1
        return self.items.popleft() if self.items else None

    def put_back(self, item):
        self.items.appendleft(item)
        self.can_hand_out += 1

    def ready(self):
        return max(0, self.can_hand_out)

    def left(self):
        return len(self.items)

    def close(self):
        self.release.set()

    # a labeller's seat at a shared queue: what became of each item, and how far the queue is (one person here)
    labeller = "owner"

    def judged(self, item):
        pass

    skipped = taken_back = judged

    def progress(self, everyone=False):
        return {"items": len(self.items), "overlap": 1, "complete": 0, "judged": {}}


def test_label_keys_judge_only_the_answer_on_screen_and_undo_waits_for_no_generation(ctx):
    """Issue 26, item 1: keys pressed while the next answers were being generated were applied, about a minute
    later, to answers never shown; the page stayed greyed meanwhile, Undo too. A key judges the item whose id it
    carries, if that item is on screen, and no handler waits for generation."""
    queue = StuckQueue(["First?", "Second?", "Third?"], ready=1)
    session = label_tab.LabelSession(queue)
    session.item = queue.next()  # "First?" is on screen, its id in the page

    def press(handler, **kwargs):
        thread = threading.Thread(target=lambda: pressed.append(handler(ctx, {"state": session, "shown": "id0"},
                                                                        **kwargs)), daemon=True)
        thread.start()
        thread.join(60)
        return thread

    pressed = []
    try:
        assert not press(label_tab.judge, value="up").is_alive(), "judging waited for the next answer's generation"
        waiting = pressed[0]
        assert "Waiting for the next answer" in waiting[2] and waiting[5] == "" and waiting[7].active
        for handler, kwargs in ((label_tab.judge, {"value": "down"}), (label_tab.skip_item, {})):
            assert not press(handler, **kwargs).is_alive()  # keys pressed for "First?" while nothing is shown
        assert pressed[1:] == [label_tab.NOTHING, label_tab.NOTHING]
        undone = label_tab.undo_last(ctx, {"state": session, "shown": ""})  # generation still stuck
        assert "Took back your last judgement (👍 good)" in undone[1] and "First?" in undone[2]
        assert undone[5] == "id0" and not undone[7].active
    finally:
        queue.release.set()
    assert label_tab.look_again(ctx, {"state": session, "preset": None})[2] == gr.skip()  # "First?" stays
    again = label_tab.judge(ctx, {"state": session, "shown": "id0"}, value="down")
    assert "Second?" in again[2] and again[5] == "id1"
    labels = LabelStore(ctx.db()).list(include_undone=True)
    assert [(label["prompt"][0]["content"], label["value"], label["undone"]) for label in labels] == \
        [("First?", "up", 1), ("First?", "down", 0)]
    assert session.skipped == 0


def test_label_buttons_go_once_every_prompt_is_judged_and_come_back_with_undo(ctx):
    """The walk (issue 26 follow-up): the A/B buttons stood, enabled, under "All prompts are judged"."""
    queue = StuckQueue(["Only?"], ready=1)
    session = label_tab.LabelSession(queue)
    session.item = queue.next()
    shown = label_tab.render(ctx, session)
    assert shown[8].visible is True and shown[9].visible is True  # the judging buttons and Skip
    done = label_tab.judge(ctx, {"state": session, "shown": "id0"}, value="up")
    assert "All prompts are judged" in done[2] and done[5] == ""
    assert done[8].visible is False and done[9].visible is False
    undone = label_tab.undo_last(ctx, {"state": session, "shown": ""})
    assert "Only?" in undone[2] and undone[8].visible is True and undone[9].visible is True
    queue.release.set()


def test_show_it_in_progress_goes_on_the_progress_tab_showing_its_run_and_the_line_stays(ctx):
    """The walk (issue 26 follow-up): 'Show it in Progress' stood above the Progress tab that showed that very run.
    The line stays, so the tab bar does not move as Progress opens (tests/browser/test_charts.py)."""
    from backend.config import build_config
    from ui import banner
    store = ctx.runs()
    first = store.create(build_config({"dataset": "chats", "name": "first try"}))
    store.set_status(first, "running")
    other = store.create(build_config({"dataset": "chats", "name": "older"}))
    for open_tab, shown_run, button_shown in (("1. Data", None, True), ("1. Data", first, True),
                                              ("3. Progress", other, True), ("3. Progress", first, False)):
        line, button, named = banner.refresh(ctx, {"open_tab": open_tab, "progress_run": shown_run})
        assert (line["visible"], button["visible"], named) == (True, button_shown, first), (open_tab, shown_run)


def test_label_training_on_too_few_labels_says_how_many_are_useful_and_asks_again(ctx, tiny_model):
    """Issue 26, item 5: DPO started on 8 pairs without a word; its diagnosis then said "Too few examples"."""
    run_id = fake_run(tiny_model)
    store, source = LabelStore(ctx.db()), Source(tiny_model, run_id)
    for i in range(8):
        store.add_choice([{"role": "user", "content": f"Q{i}?"}], Answer(f"Good {i}.", source, Sampling(seed=i)),
                         Answer(f"Bad {i}.", source, Sampling(seed=i + 50)), "left")
    assert "DPO: 8 pairs; the 'quick' preset learns from at least 27 (with 8," in label_tab.totals_text(ctx, "quick")
    text, watch, tabs, button, asked = label_tab.train(ctx, {"preset": "quick", "asked": None}, kind="dpo")
    assert text.startswith("**Not started.** DPO: 8 pairs; the 'quick' preset learns from at least 27") and \
        "fewer than 3: too few to learn from" in text
    assert button.value == "Train DPO anyway on 8 pairs" and watch == gr.skip()
    assert asked == ("dpo", 8, "quick", "every", None)  # every label, nobody left out
    assert [r["id"] for r in ctx.runs().list()] == [run_id]  # nothing started
    text, watch, tabs, button, asked = label_tab.train(ctx, {"preset": "quick", "asked": asked}, kind="dpo")
    assert text.startswith("Started **DPO on labels") and button.value == "Train DPO on the A/B choices"
    assert ctx.runs().get(watch)["config"]["base_run"] == run_id and asked is None
    ctx.runner.stop(watch)


def test_label_tab_totals_are_the_numbers_labels_stats_prints(ctx, tiny_model):
    """Issue 26, item 16: the tab said "3 ties or 'both bad'" where `labels stats` said 1 tie, 1 both bad and
    1 choice between answers to two different conversations."""
    store, source = LabelStore(ctx.db()), Source("tiny", None)
    ask = [{"role": "user", "content": "Hi?"}]
    other = ask + [{"role": "assistant", "content": "Hey."}, {"role": "user", "content": "And?"}]
    said = [Answer(text, source, Sampling()) for text in ("One.", "Two.")]
    for value in ("tie", "both_bad", "left"):
        store.add_choice(ask, *said, value)
    store.add_choice(ask + [{"role": "assistant", "content": "Hello."}, {"role": "user", "content": "And?"}], *said,
                     "right", right_prompt=other)
    printed = stats_text(label_stats(ctx.db()))  # what `python app.py labels stats` prints
    assert "1 tie, 1 both bad -> 1 DPO pair" in printed and "nor does 1 choice between answers" in printed
    shown = label_tab.totals_text(ctx).split("  \n")
    assert all(line in shown for line in printed.splitlines()), (shown, printed)


def test_data_upload_save_and_remove(ctx, tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer\n" + "".join(f"What is {i}?,It is {i}.\n" for i in range(30)) + "Empty?,\n")
    shown = data_tab.on_upload(ctx, {"upload": str(csv), "kind": "auto", "max_length": 512, "progress": Progress()})
    checked = shown[0]  # the sandbox's Inspection: a report with a preview of the examples
    assert checked.report.valid_rows == 30 and checked.report.invalid_rows == 1
    assert "Found: supervised fine-tuning" in shown[1]
    saved = data_tab.save_dataset(ctx, {"checked": checked, "name": "qa"})
    assert "Saved as **qa**" in saved[0] and ctx.datasets().exists("qa")
    data_tab.do_remove(ctx, {"to_remove": "qa"})
    assert not ctx.datasets().exists("qa")


def test_runs_tab_reruns_and_will_not_delete_an_active_run(ctx, tiny_model):
    done = fake_run(tiny_model)
    waiting = fake_run(tiny_model, status="queued")
    with pytest.raises(RunStateError, match="training or waiting"):
        runs_tab.do_delete(ctx, {"run": waiting, "other": None})
    shown = runs_tab.show(ctx, {"run": done, "other": None, "log_y": False})
    assert shown[-1].startswith("python app.py train --data fake.jsonl")
    runs_tab.do_delete(ctx, {"run": done, "other": None})
    assert [r["id"] for r in ctx.runs().list()] == [waiting]
