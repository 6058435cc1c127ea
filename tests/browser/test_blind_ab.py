"""Blind A/B in the browser: in Chat the two models answer as A and B, their names shown only after the vote; in
Label an A/B session names the models after each vote; the Runs tab then shows the win-rate with its interval and
vote count. Fake runs on the tiny model, so no training is needed: well under a minute of generation."""
import re

import pytest

from backend.db import connect
from backend.labels import LabelStore
from tests.browser.loop_helpers import (count_text, fill_numbers, open_tab, served,  # noqa: F401
                                        start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser
SCREENSHOT = "test-artifacts/blind-ab-runs.png"


def chat_once(page, blind: bool):
    """Ask the base model and the run "tuned try" one message in Chat (8 tokens), blind or with the names shown (the
    default); the line under the answers, once both have answered."""
    open_tab(page, "6. Chat")
    right = page.get_by_role("combobox", name="Right", exact=True)
    wait_for(lambda: right.input_value().startswith("tuned try"), 30, "the fake run is not offered")
    if blind:
        page.locator("#tl-chat-blind input").check()
        page.get_by_role("combobox", name="Model 2 (side shuffled)").wait_for()
    else:
        assert not page.locator("#tl-chat-blind input").is_checked()
    page.get_by_text("Settings (shared by both sides)").click()
    fill_numbers(page, {"Longest answer (tokens)": "8"})  # once drawn: Gradio resets it a frame after it shows
    page.locator("#tl-chat-message textarea").fill("Say hello.")
    page.keyboard.press("Enter")
    saved = page.locator("#tl-chat-saved")
    saved.get_by_text("Both have answered").wait_for(timeout=120_000)
    return saved


def test_blind_votes_in_chat_and_label_appear_as_a_win_rate_in_runs(served, page, tiny_model):
    from backend.runs import RunStore

    run_id = fake_run(tiny_model)
    RunStore(connect()).update(run_id, name="tuned try")
    page.goto(served.url)

    saved = chat_once(page, blind=True)
    assert "tuned try" not in saved.inner_text()  # no name before the vote
    page.get_by_role("button", name="⬅ A is better").click()
    saved.get_by_text("Revealed:").wait_for()
    assert "tuned try" in saved.inner_text() and "the base model" in saved.inner_text()

    open_tab(page, "7. Label")
    page.get_by_label("A/B: which of two answers is better? (trains DPO)").check()
    page.locator("#tl-label-blind input").wait_for()
    assert page.locator("#tl-label-blind input").is_checked()
    second = page.get_by_role("combobox", name="Second model (the sides are shuffled for each prompt)", exact=True)
    second.click()  # the base model against the run (both sides start on the newest run)
    page.locator(f"#{second.get_attribute('aria-controls')}").get_by_role(
        "option", name="Base model (no tuning)", exact=True).click()
    start_labelling(page, ["Say yes.", "Say no.", "Say maybe."])
    assert "tuned try" not in page.locator("#tl-label-answer-a").inner_text()
    page.keyboard.press("1")
    wait_for(lambda: "Revealed: A (left) was" in count_text(page), 60, "the names are not revealed after the vote")
    assert "tuned try" in count_text(page)

    votes = LabelStore(connect()).list(kind="ab")
    assert len(votes) == 2 and all({v["run_id"], v["run_id_b"]} == {run_id, None} for v in votes)
    # Each vote went to the left side; whether that was the run depends on the shuffle: count what was stored.
    run_wins = sum((v["value"] == "left") == (v["run_id"] == run_id) for v in votes)

    open_tab(page, "4. Runs")
    table = page.locator("#tl-runs-winrates")
    row = table.locator("tr", has_text="tuned try")

    def cells() -> list[str]:
        return [c.strip() for c in row.locator("td").all_inner_texts()] if row.count() else []
    wait_for(lambda: cells()[2:3] == ["2"], 60, "the Runs tab does not show the two votes")
    cells = cells()
    assert cells[1].startswith("base model") and cells[2:6] == ["2", str(run_wins), "0", str(2 - run_wins)]
    assert cells[6] == f"{run_wins / 2:.0%}" and re.fullmatch(r"\d+% to \d+%", cells[7])
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_a_choice_made_with_the_names_shown_is_left_out_of_the_win_rates(served, page, tiny_model):
    """Issue 26 follow-up: a Chat choice made with "Blind A/B" unchecked showed in Runs as "Blind A/B votes: 1 vote,
    100%". It is kept (it still trains DPO) but left out of the win-rates, and the Runs tab says so in the words
    `labels stats` prints."""
    from backend.runs import RunStore
    from tests.test_cli import app

    run_id = fake_run(tiny_model)
    RunStore(connect()).update(run_id, name="tuned try")
    page.goto(served.url)
    saved = chat_once(page, blind=False)
    page.get_by_role("button", name="Right is better ➡").click()
    saved.get_by_text("does not count in the win-rates").wait_for()
    (vote,) = LabelStore(connect()).list(kind="ab")
    assert vote["blind"] is False and vote["run_id_b"] == run_id

    open_tab(page, "4. Runs")
    table = page.locator("#tl-runs-winrates")
    said = app("labels", "stats").stdout.splitlines()[-1]
    assert said == ("Left out of the win-rates, which count only blind votes: 1 A/B choice made with the models' "
                    "names shown."), said
    wait_for(lambda: said in table.inner_text(), 60, f"the Runs tab does not say what was left out: "
                                                     f"{table.inner_text()!r}")
    assert "No blind A/B votes yet" in table.inner_text() and "100%" not in table.inner_text()
    table.scroll_into_view_if_needed()
    page.screenshot(path="test-artifacts/blind-ab-left-out.png", full_page=True)


def test_one_run_at_two_temperatures_is_revealed_by_its_temperatures(served, page, tiny_model):
    """Issue 26 follow-up: the reveal read "A was run 'quill, quick', B was run 'quill, quick'" when one run answered
    at two temperatures."""
    from backend.runs import RunStore

    run_id = fake_run(tiny_model)
    RunStore(connect()).update(run_id, name="quill, quick")
    page.goto(served.url)
    open_tab(page, "7. Label")
    page.get_by_label("A/B: which of two answers is better? (trains DPO)").check()
    second = page.get_by_role("combobox", name="Second model (the sides are shuffled for each prompt)", exact=True)
    wait_for(lambda: second.input_value().startswith("quill, quick"), 30, "the run is not on both sides")
    assert page.get_by_role("combobox", name="First model", exact=True).input_value().startswith("quill, quick")
    start_labelling(page, ["Say yes.", "Say no.", "Say maybe."], max_tokens=8)
    page.keyboard.press("1")
    wait_for(lambda: "Revealed:" in count_text(page), 60, "the names are not revealed after the vote")
    (vote,) = LabelStore(connect()).list(kind="ab")
    first, second_t = (f"{vote[key]['temperature']:g}" for key in ("settings", "settings_b"))
    assert (f"Revealed: A (left) was run “quill, quick” (temperature {first}), B (right) was run “quill, quick” "
            f"(temperature {second_t}).") in count_text(page), count_text(page)
    assert {first, second_t} == {"0.7", "1"}
    page.screenshot(path="test-artifacts/blind-ab-two-temperatures.png", full_page=True)
