"""Labelling at speed in the browser: keys judge, skip and undo, the running count follows, every label is in the
database the moment it is given, and the labels are still there after the app restarts. Keys pressed while the next
answer is being generated judge nothing; training on too few labels says so and asks again."""
import threading

import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels import LabelQueue, LabelStore
from backend.runs import RunStore
from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import (TINY_ANSWER, count_text, open_label_tab, open_tab, press_on_answer,  # noqa: F401
                                        served, start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser


def press(page, key: str, expect: str, answer_shown: bool = True):
    """Press `key` as a person does, once an answer is on screen (answer_shown=False: at once), and wait for the
    count to say `expect`."""
    if answer_shown:
        press_on_answer(page, key)
    else:
        page.keyboard.press(key)
    wait_for(lambda: expect in count_text(page), 60, f"after key {key!r} the count never said {expect!r}: "
                                                    f"{count_text(page)!r}")


def prompt_shown(page) -> str:
    return page.locator("#tl-label-prompt").inner_text()


def test_labelling_with_the_keyboard_undo_and_a_restart(served, page, tiny_model):
    run_id = fake_run(tiny_model)
    open_label_tab(page, served.url, run_id)
    start_labelling(page, [f"Question number {i}?" for i in range(8)], max_tokens=TINY_ANSWER)
    assert "Question number 0?" in prompt_shown(page)

    press(page, "g", "1 judged")
    press(page, "b", "2 judged")
    press(page, "g", "3 judged")
    assert "👍 2 good · 👎 1 bad" in count_text(page)
    assert "Question number 3?" in prompt_shown(page)

    press(page, "u", "2 judged")
    assert "Question number 2?" in prompt_shown(page)  # the undone answer comes back, to judge again
    assert "Took back your last judgement (👍 good)" in count_text(page)
    press(page, "b", "3 judged")
    press(page, "s", "1 skipped")
    assert "Question number 4?" in prompt_shown(page)

    labels = LabelStore(connect()).list(include_undone=True)
    assert [(label["value"], label["undone"]) for label in labels] == [("up", 0), ("down", 0), ("up", 1), ("down", 0)]
    assert {label["run_id"] for label in labels} == {run_id}
    assert all(label["origin"] == "label" and label["settings"]["temperature"] == 0.7 for label in labels)

    served.restart()
    page.goto(served.url)
    open_tab(page, "7. Label")
    totals = page.locator("#tl-label-totals")
    wait_for(lambda: "Thumbs: 1 good, 2 bad -> 3 KTO examples" in totals.inner_text(), 30,
             f"the labels are not shown after the restart: {totals.inner_text()!r}")


def test_keys_pressed_while_the_next_answer_is_generated_judge_nothing(served, page, tiny_model, monkeypatch):
    """Issue 26, item 1: after the ready answers ran out, the page stayed greyed until the next batch was generated
    (Undo too), and keys pressed meanwhile were applied later to answers never shown."""
    gate = threading.Event()  # the second batch of answers is generated only when the test says so
    generate = LabelQueue._add

    def held(queue, start, chunk):
        if start > 0:
            gate.wait()
        return generate(queue, start, chunk)
    monkeypatch.setattr(LabelQueue, "_add", held)
    run_id = fake_run(tiny_model)
    open_label_tab(page, served.url, run_id)
    try:
        start_labelling(page, [f"Question number {i}?" for i in range(6)], max_tokens=TINY_ANSWER)
        press(page, "g", "1 judged")
        assert "Question number 1?" in prompt_shown(page)
        press(page, "b", "2 judged")  # the two ready answers are judged; the next are not generated yet
        assert "Waiting for the next answer" in prompt_shown(page)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=str(ARTIFACTS / "label-waiting.png"), full_page=True)
        for key in ("g", "b", "s", "1"):  # keys for no answer on screen
            page.keyboard.press(key)
        press(page, "u", "1 judged", answer_shown=False)  # Undo answers while generation is still held
        assert "Question number 1?" in prompt_shown(page) and "0 skipped" in count_text(page)
        assert "Took back your last judgement (👎 bad)" in count_text(page)
        press(page, "g", "2 judged")
    finally:
        gate.set()
    wait_for(lambda: "Question number 2?" in prompt_shown(page), 120, "the next answer never showed")
    page.screenshot(path=str(ARTIFACTS / "label-after-wait.png"), full_page=True)
    assert "2 judged" in count_text(page) and "0 skipped" in count_text(page)
    labels = LabelStore(connect()).list(include_undone=True)
    assert [(label["prompt"][-1]["content"], label["value"], label["undone"]) for label in labels] == [
        ("Question number 0?", "up", 0), ("Question number 1?", "down", 1), ("Question number 1?", "up", 0)]


def test_training_on_too_few_labels_says_how_many_are_useful_and_asks_to_confirm(served, page, tiny_model):
    """Issue 26, item 5: DPO on 8 pairs started without a word, made 3 updates, and its diagnosis said "Too few
    examples for these settings". Before Start the tab says how many pairs there are and how many are useful; the
    first click starts nothing and the button asks again."""
    run_id = fake_run(tiny_model)
    store, source = LabelStore(connect()), Source(tiny_model, run_id)
    for i in range(8):
        store.add_choice([{"role": "user", "content": f"Question {i}?"}], Answer(f"Good {i}.", source, Sampling()),
                         Answer(f"Bad {i}.", source, Sampling(seed=1)), "left", origin="label")
    page.goto(served.url)
    open_tab(page, "7. Label")
    totals = page.locator("#tl-label-totals")
    wait_for(lambda: "DPO: 8 pairs; the 'quick' preset learns from at least 27 (with 8," in totals.inner_text(), 60,
             f"the totals do not say what is useful: {totals.inner_text()!r}")
    page.locator("#tl-train-dpo").click()
    trained = page.locator("#tl-label-trained")
    wait_for(lambda: "Not started. DPO: 8 pairs;" in trained.inner_text(), 60,
             f"the first click did not warn: {trained.inner_text()!r}")
    anyway = page.get_by_role("button", name="Train DPO anyway on 8 pairs")
    anyway.wait_for()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "label-too-few.png"), full_page=True)
    assert [run["id"] for run in RunStore(connect()).list()] == [run_id]  # nothing started
    anyway.click()
    page.get_by_role("tab", name="3. Progress", selected=True).wait_for()
    runs = RunStore(connect()).list()
    assert len(runs) == 2 and runs[0]["config"]["method"] == "dpo" and runs[0]["config"]["base_run"] == run_id


def test_the_which_labels_counts_follow_every_judgement_and_undo(served, page, tiny_model):
    """Issue 26 follow-up, item 2: the counts beside "Which labels" were drawn only on opening the tab: after 6 A/B
    judgements they still said "Every label: 2 KTO examples, 1 DPO pair" under totals saying "7 DPO pairs"."""
    run_id = fake_run(tiny_model)
    open_label_tab(page, served.url, run_id)
    rule = page.locator("#tl-label-rule")
    wait_for(lambda: "Every label: 0 KTO examples, 0 DPO pairs" in rule.inner_text(), 30, rule.inner_text())
    start_labelling(page, [f"Question number {i}?" for i in range(8)], max_tokens=TINY_ANSWER,
                    mode="A/B: which of two answers is better? (trains DPO)")

    def says(pairs: int):
        wait_for(lambda: f"Every label: 0 KTO examples, {pairs} DPO pair" in rule.inner_text(), 60,
                 f"after {pairs} judged the choice says {rule.inner_text()!r}")
    for judged in range(1, 7):
        press(page, "12"[judged % 2], f"{judged} judged")
    says(6)
    totals = page.locator("#tl-label-totals").inner_text()
    assert "-> 6 DPO pairs" in totals, totals
    press(page, "u", "5 judged", answer_shown=False)
    says(5)
    assert "Every label: 0 KTO examples, 5 DPO pairs" in rule.inner_text()
    assert "-> 5 DPO pairs" in page.locator("#tl-label-totals").inner_text()
    rule.scroll_into_view_if_needed()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "label-rule-counts.png"), full_page=True)
