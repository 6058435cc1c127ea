"""Labelling at speed in the browser: keys judge, skip and undo, the running count follows, every label is in the
database the moment it is given, and the labels are still there after the app restarts."""
import pytest

from backend.db import connect
from backend.labels import LabelStore
from tests.browser.loop_helpers import (TINY_ANSWER, count_text, open_tab, served,  # noqa: F401
                                        start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser


def press(page, key: str, expect: str):
    page.keyboard.press(key)
    wait_for(lambda: expect in count_text(page), 60, f"after key {key!r} the count never said {expect!r}: "
                                                    f"{count_text(page)!r}")


def prompt_shown(page) -> str:
    return page.locator("#tl-label-prompt").inner_text()


def test_labelling_with_the_keyboard_undo_and_a_restart(served, page, tiny_model):
    run_id = fake_run(tiny_model)
    page.goto(served.url)
    open_tab(page, "7. Label")
    source = page.get_by_role("combobox", name="Answers from", exact=True)
    wait_for(lambda: source.input_value().startswith(run_id), 30, "the finished run is not offered")
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
    wait_for(lambda: "👍 1 good, 👎 2 bad" in totals.inner_text(), 30,
             f"the labels are not shown after the restart: {totals.inner_text()!r}")
