"""Fifty answers of the real embedded model judged in the browser within a few minutes: a person who reads each
answer for two seconds and presses G or B rarely waits for the next one, since answers are generated ahead."""
import statistics
import time

import pytest

from tests.browser.loop_helpers import count_text, open_tab, served, start_labelling, wait_for  # noqa: F401

pytestmark = [pytest.mark.browser, pytest.mark.slow]
READING_SECONDS = 2.0
TOPICS = ["apples", "rain", "bicycles", "the moon", "coffee", "dogs", "libraries", "mountains", "trains", "gardens"]
QUESTIONS = ["What is special about {}?", "Give me one fact about {}.", "Why do people like {}?",
             "How would you describe {} to a child?", "What is a common mistake about {}?"]


def test_fifty_judgements_in_a_few_minutes(served, page, capsys):
    prompts = [q.format(t) for t in TOPICS for q in QUESTIONS]
    page.goto(served.url)
    open_tab(page, "7. Label")
    started = time.time()
    start_labelling(page, prompts)
    first = time.time() - started
    waits = []
    for n in range(1, len(prompts) + 1):
        time.sleep(READING_SECONDS)
        pressed = time.time()
        page.keyboard.press("g" if n % 3 else "b")
        wait_for(lambda: f"{n} judged" in count_text(page), 300, f"judgement {n} did not register")
        waits.append(time.time() - pressed)
    total = time.time() - started
    with capsys.disabled():
        print(f"\n50 judgements: {total:.0f} s in all, first answer after {first:.0f} s; wait after a key: "
              f"median {statistics.median(waits):.2f} s, longest {max(waits):.1f} s, "
              f"{sum(w > 1 for w in waits)} waits over 1 s")
    assert "👍 34 good · 👎 16 bad" in count_text(page)
    assert total < 5 * 60
    assert statistics.median(waits) < 1.0
