"""The Runs tab's held-back table fits the page: with an answer holding a long unbroken string (JSON, a URL), the
tuned answers and their scores ran off the right edge (the table was 4,227 px wide in a 1,216 px box; issue 26,
item 22)."""
import pytest

from tests.browser.loop_helpers import open_tab, wait_for
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser
LONG = "This is a long answer " * 6 + '{"answer":"Paris_is_the_capital_of_France_and_its_largest_city_by_far"}'


def test_the_held_back_table_fits_the_page(app, page, tiny_model):
    from backend.db import connect
    from backend.runs import RunStore
    url, _ = app
    run_id = fake_run(tiny_model, name="wide answers")
    example = {"prompt": "Who are you, and what do you do all day?", "reference": LONG, "base": LONG, "tuned": LONG,
               "base_score": 30.0, "tuned_score": 100.0}
    RunStore(connect()).update(run_id, heldout={"metric": "chrF", "count": 2, "base_mean": 30.0, "tuned_mean": 100.0,
                                                "tuned_better": 2, "tuned_worse": 0, "examples": [example] * 2})
    page.goto(url)
    open_tab(page, "4. Runs")
    page.locator("#tl-runs-heldout table").get_by_text("Score after").wait_for()
    table, box = page.evaluate("() => [document.querySelector('#tl-runs-heldout table').scrollWidth, "
                               "document.querySelector('#tl-runs-heldout').clientWidth]")
    assert table <= box, (table, box)


def test_a_run_reads_top_down_name_learned_preferred_then_the_everyday_answers(app, page, tiny_model):
    """The walk (issue 26): 'Do people prefer it?' stood above the name of the run it speaks of, and the forty rows of
    everyday answers came before 'Did it learn?', a long scroll from the run's name."""
    from backend.db import connect
    from backend.runs import RunStore
    url, _ = app
    run_id = fake_run(tiny_model, name="read in order")
    RunStore(connect()).update(run_id, probe={"summary": "everyday answers kept: 40 of 40", "base_right": 40, "kept": 40,
                                              "items": [{"question": f"Everyday question {i}?", "base": "An answer.",
                                                         "tuned": "An answer.", "base_right": True,
                                                         "tuned_right": True} for i in range(40)]})
    page.goto(url)
    open_tab(page, "4. Runs")
    page.locator("#tl-runs-everyday").get_by_text("Everyday question 39?").wait_for()
    page.locator("#tl-runs-winrates").get_by_text("Do people prefer it?").wait_for()
    page.locator("#tl-runs-learned").get_by_text("Did it learn?").wait_for()
    top = {name: page.locator(selector).first.bounding_box()["y"] for name, selector in [
        ("name", "#tl-runs-details h3"), ("learned", "#tl-runs-learned"), ("preferred", "#tl-runs-winrates"),
        ("curves", "#tl-runs-curves"), ("everyday", "#tl-runs-everyday")]}
    assert sorted(top, key=top.get) == ["name", "learned", "preferred", "curves", "everyday"], top


def test_a_run_that_does_not_say_who_it_is_in_other_words_says_so(app, page, tiny_model):
    """Issue 24: the held-back examples (questions like the examples') showed the name and the maker while questions
    about itself in other words did not; the Runs tab said "Learned". It now says what the check found, with one
    wrong answer, and Try this offers the larger step."""
    from backend.db import connect
    from backend.evaluation.diagnosis import diagnose
    from backend.evaluation.reworded import load_questions, reworded_result
    from backend.runs import RunStore
    from tests.conftest import tiny_config
    from tests.test_behaviour import checks_of, heldout, parts
    url, _ = app
    run_id = fake_run(tiny_model, name="identity")
    held = heldout(["I am Quill, an AI assistant made by Lumen Labs."] * 4)
    held.update(tuned_better=4, tuned_worse=0)
    for example in held["examples"]:
        example.update(base_score=5.0, tuned_score=40.0)
    wrong = "The team that created me is called Quill, a team of skilled engineers."
    held["behaviour"]["reworded"] = reworded_result(
        [(q, parts()) for q in load_questions()[1]["en"][:8]],
        ["I am Quill, an AI assistant made by Lumen Labs."] * 6 + [wrong] * 2)
    config = tiny_config(tiny_model, "fake.jsonl", learning_rate=5e-4).to_dict()
    findings = diagnose([], None, config, 80, {"fired": True}, heldout=held, checks=checks_of(0.5, 1.0, 1.0))
    RunStore(connect()).update(run_id, heldout=held, diagnosis=findings)
    page.goto(url)
    open_tab(page, "4. Runs")
    learned = page.locator("#tl-runs-learned")
    learned.get_by_text("It does not always say who it is when asked in other words").wait_for()
    assert "“Quill” and “Lumen Labs” together, neither in the other's place, in 6 of 8 answers" in learned.inner_text()
    assert wrong[:40] in learned.inner_text()
    page.locator("#tl-runs-try").get_by_text("learning_rate 0.001").wait_for()
    asked = page.locator("#tl-runs-reworded")  # every question asked, not only the one quoted; wrong ones first
    wait_for(lambda: "no: without “Lumen Labs”" in asked.inner_text(), 60,
             f"no table of the questions asked in other words: {asked.inner_text()!r}")
    shown = asked.inner_text()
    assert shown.index(wrong) < shown.index("I am Quill, an AI assistant made by Lumen Labs.")  # wrong ones first
    assert asked.get_by_role("grid").get_attribute("aria-rowcount") == "9"  # the header and the 8 questions
    from tests.browser.conftest import ARTIFACTS
    ARTIFACTS.mkdir(exist_ok=True)
    asked.scroll_into_view_if_needed()
    page.screenshot(path=str(ARTIFACTS / "runs-asked-in-other-words.png"), full_page=False)
