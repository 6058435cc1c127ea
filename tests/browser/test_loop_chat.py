"""Side by side in the browser: one message goes to the base model (the embedded one) and a finished run on it (a
random adapter, not a trained one: what is tested is the chat, not learning), both answer, and the answers differ; each
judgement (thumbs, which side is better, a correction) is saved at once with the conversation, the answer, its
run and its settings."""
import pytest

from backend.db import connect
from backend.labels import LabelStore
from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import LATE_FRAMES, fill_numbers, open_tab, served, wait_for  # noqa: F401
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser


def answers(page) -> list[str]:
    return [page.locator(f"#tl-chat-{side} [data-testid='bot']").last.inner_text().strip()
            for side in ("left", "right")]


def set_answer_settings(page, temperature: str, tokens: str):
    """Opens the shared settings and types the temperature and the longest answer, once Gradio has drawn them."""
    page.get_by_text("Settings (shared by both sides)").click()
    fill_numbers(page, {"Temperature": temperature, "Longest answer (tokens)": tokens})


def send(page, text: str):
    page.locator("#tl-chat-message textarea").fill(text)
    page.keyboard.press("Enter")
    page.locator("#tl-chat-saved").get_by_text("Both have answered").wait_for(timeout=240_000)


def test_base_and_tuned_answer_side_by_side_and_every_click_is_saved(served, page, embedded_model):
    run = served.runner.store.get(fake_run(str(embedded_model), model="smollm2", name="quill"))
    page.goto(served.url)
    open_tab(page, "6. Chat")
    right = page.get_by_role("combobox", name="Right", exact=True)
    wait_for(lambda: right.input_value().startswith(run["name"]), 30, "the tuned run is not offered on the right")
    assert page.get_by_role("combobox", name="Left", exact=True).input_value() == "Base model (no tuning)"

    set_answer_settings(page, temperature="0", tokens="16")
    send(page, "What is your name?")
    page.locator("#tl-chat-saved").get_by_text("temperature 0, at most 16 tokens").wait_for()
    base, tuned = answers(page)
    assert base and tuned and base != tuned, (base, tuned)

    page.locator("#tl-chat-right-up").click()
    page.locator("#tl-chat-saved").get_by_text("👍 good for the right answer").wait_for()
    page.locator("#tl-chat-left-down").click()
    page.locator("#tl-chat-saved").get_by_text("👎 bad for the left answer").wait_for()
    page.get_by_role("button", name="Right is better ➡").click()
    page.locator("#tl-chat-saved").get_by_text("right answer better").wait_for()
    page.locator("#tl-chat-left-edit").click()
    page.locator("#tl-chat-corrected textarea").fill("My name is SmolLM.")
    page.locator("#tl-chat-save-edit").click()
    page.locator("#tl-chat-saved").get_by_text("your correction of the left answer").wait_for()
    assert answers(page)[0] == "My name is SmolLM."  # the conversation goes on from the correction
    page.locator("#tl-chat-saved").get_by_text("The left side now goes on from your correction").wait_for()
    page.locator("#tl-chat-left-up").click()  # the correction is no model answer: nothing to judge there
    page.get_by_text("The left answer shown is your correction").wait_for()
    # Issue 26, item 17: "Both bad" after a correction was refused with an error; it judges the models' answers
    page.get_by_role("button", name="Both bad").click()
    page.locator("#tl-chat-saved").get_by_text("as they gave them before your correction").wait_for()

    send(page, "And what can you do?")  # a second turn: each side goes on from its own answer
    assert all(answers(page))
    page.get_by_role("button", name="⬅ Left is better").click()  # was kept silently without a pair
    page.locator("#tl-chat-saved").get_by_text("makes no DPO pair").wait_for()
    page.screenshot(path=str(ARTIFACTS / "chat-second-turn-choice.png"), full_page=True)

    labels = LabelStore(connect()).list()  # "Both bad" replaced the turn's "right answer better"
    assert [(label["kind"], label["value"]) for label in labels] == \
        [("thumb", "up"), ("thumb", "down"), ("edit", "edit"), ("ab", "both_bad"), ("ab", "left")]
    thumb_up, thumb_down, edit, choice, _ = labels
    question = [{"role": "user", "content": "What is your name?"}]
    assert thumb_up["prompt"] == question and thumb_up["answer"] == tuned and thumb_up["run_id"] == run["id"]
    assert thumb_down["answer"] == base and thumb_down["run_id"] is None and thumb_down["model"] == "smollm2"
    assert (choice["answer"], choice["answer_b"], choice["run_id_b"]) == (base, tuned, run["id"])
    assert edit["corrected"] == "My name is SmolLM." and edit["origin"] == "chat"
    assert thumb_up["settings"]["temperature"] == 0 and thumb_up["settings"]["max_new_tokens"] == 16
    assert thumb_up["session"] == edit["session"] and thumb_up["created"] <= edit["created"]


def test_settings_typed_when_frames_come_late_are_the_ones_the_answers_and_labels_carry(served, page):
    """Issue 25, item 12b: a label stored temperature 0.7 after the page was set to 0, on a loaded machine. Here each
    frame comes 2 s late. Typed as soon as their boxes showed (before), the temperature and the longest answer were
    replaced by the page's first values (0.7, 128 tokens) a frame later, and the answers and the label had those."""
    page.add_init_script(LATE_FRAMES)
    page.goto(served.url)
    open_tab(page, "6. Chat")
    set_answer_settings(page, temperature="0", tokens="16")
    send(page, "What is your name?")
    page.locator("#tl-chat-saved").get_by_text("temperature 0, at most 16 tokens").wait_for()
    page.locator("#tl-chat-left-up").click()
    page.locator("#tl-chat-saved").get_by_text("👍 good for the left answer").wait_for()
    [label] = LabelStore(connect()).list()
    assert (label["settings"]["temperature"], label["settings"]["max_new_tokens"]) == (0, 16)
