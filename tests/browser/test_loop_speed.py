"""Fifty judgements in a row by keyboard: every key registers, the queue keeps handing out answers well past the
ones generated ahead at the start, and the count adds up. Answers come from a tiny model, so the test is about
the labelling, not the model. How long a person waits on the real embedded model is measured by
benchmarks/label_speed.py (no run of it recorded yet in docs/benchmarks.md), never asserted here."""
import pytest

from tests.browser.loop_helpers import (TINY_ANSWER, count_text, open_label_tab, press_on_answer,  # noqa: F401
                                        served, start_labelling, wait_for)
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser
TOPICS = ["apples", "rain", "bicycles", "the moon", "coffee", "dogs", "libraries", "mountains", "trains", "gardens"]
QUESTIONS = ["What is special about {}?", "Give me one fact about {}.", "Why do people like {}?",
             "How would you describe {} to a child?", "What is a common mistake about {}?"]
PROMPTS = [q.format(t) for t in TOPICS for q in QUESTIONS]


def judge_all(page, prompts: list[str], wait_each: float = 300) -> None:
    """Press G, G, B, G, G, B, ... once per answer, each after the previous judgement has registered."""
    for n in range(1, len(prompts) + 1):
        press_on_answer(page, "g" if n % 3 else "b")
        wait_for(lambda: f"{n} judged" in count_text(page), wait_each, f"judgement {n} did not register")


def test_fifty_judgements_in_a_row(served, page, tiny_model):
    run_id = fake_run(tiny_model)
    open_label_tab(page, served.url, run_id)
    start_labelling(page, PROMPTS, max_tokens=TINY_ANSWER)
    judge_all(page, PROMPTS)
    assert "👍 34 good · 👎 16 bad" in count_text(page)
    page.get_by_text("All prompts are judged.").wait_for()
