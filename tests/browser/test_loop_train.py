"""From labels to runs in the browser: thumbs become a KTO run and A/B choices a DPO run, each built on the run
whose answers were judged, both finishing; the Chat tab then puts the newest run beside the one it was built on."""
import pytest

from tests.browser.loop_helpers import (TINY_ANSWER, ab_on_one_run, count_text, open_label_tab, open_tab,  # noqa: F401
                                        press_on_answer, served, start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser
PROMPTS = [f"Greet guest number {i}." for i in range(12)]


def label_all(page, keys: str):
    """Press the keys in turn, one per answer, each after the previous judgement has shown."""
    for n in range(len(PROMPTS)):
        press_on_answer(page, keys[n % len(keys)])
        wait_for(lambda: f"{n + 1} judged" in count_text(page), 60, f"judgement {n + 1} did not register")
    page.get_by_text("All prompts are judged.").wait_for()


def train(page, served, button: str, anyway: str) -> dict:
    """Click `button`; 12 labels are fewer than the quick preset learns from, so the tab asks again: click `anyway`."""
    page.get_by_role("button", name=button).click()
    page.get_by_role("button", name=anyway).click()
    page.get_by_role("tab", name="3. Progress", selected=True).wait_for()
    run = served.runner.store.list()[0]
    return served.runner.wait(run["id"], timeout=600)


def test_thumbs_train_kto_and_choices_train_dpo_on_the_judged_run(served, page, tiny_model):
    judged = fake_run(tiny_model)
    open_label_tab(page, served.url, judged)
    start_labelling(page, PROMPTS, max_tokens=TINY_ANSWER)
    label_all(page, "gb")
    assert "👍 6 good · 👎 6 bad" in count_text(page)

    kto = train(page, served, "Train KTO on the thumbs", "Train KTO anyway on 12 examples")
    assert kto["status"] == "done", kto.get("reason")
    assert (kto["method"], kto["base_run"]) == ("kto", judged)

    open_tab(page, "7. Label")
    page.get_by_text("1. What to label").click()  # folded away while labelling
    ab_on_one_run(page, judged)  # one run, two temperatures
    start_labelling(page, PROMPTS, max_tokens=TINY_ANSWER)
    assert page.locator("#tl-label-answer-b .tl-answer").is_visible()
    label_all(page, "12")
    dpo = train(page, served, "Train DPO on the A/B choices", "Train DPO anyway on 12 pairs")
    assert dpo["status"] == "done", dpo.get("reason")
    assert (dpo["method"], dpo["base_run"]) == ("dpo", judged)
    assert dpo["final_metrics"]["steps"] >= 1

    open_tab(page, "6. Chat")
    left = page.get_by_role("combobox", name="Left", exact=True)
    right = page.get_by_role("combobox", name="Right", exact=True)
    wait_for(lambda: right.input_value().startswith(dpo["name"]), 30, "the new run is not on the right")
    assert left.input_value().startswith(judged)  # beside the run it was built on
