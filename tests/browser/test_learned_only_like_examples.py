"""The Runs tab says a format given to every kind of question was learned only for questions like the examples, and
Try this offers rehearsal 0 (issue 24: the held-back answers alone said "Learned" for format_json at learning rate
1e-3, seed 7, whose answers to everyday questions came out plain). The diagnosis is made as the worker makes it."""
import pytest

from tests.browser.loop_helpers import open_tab, wait_for
from tests.fake_runs import fake_run
from tests.test_learned_everywhere import heldout_learned, probe

pytestmark = pytest.mark.browser
SCREENSHOT = "test-artifacts/learned-only-like-examples.png"


def diagnosed_run(tiny_model, name: str, held: dict, everyday: dict, checks: dict, **outcome) -> list[dict]:
    """A finished run whose held-back answers, probe and checks are these, diagnosed as the worker diagnoses it, shown
    as the Runs tab shows it: its findings."""
    from backend.db import connect
    from backend.evaluation.diagnosis import diagnose
    from backend.runs import RunStore
    run_id = fake_run(tiny_model, name=name, rehearsal=60)
    store = RunStore(connect())
    findings = diagnose([], everyday, store.get(run_id)["config"], 80, {"fired": True}, heldout=held, checks=checks)
    store.update(run_id, heldout=held, probe=everyday, diagnosis=findings,
                 outcome={"train_examples": 80, "heldout_examples": held["count"], "everyday_mixed": 45,
                          "behaviour_checks": checks, **outcome})
    return findings


def test_the_runs_tab_says_a_format_was_learned_only_for_questions_like_the_examples(app, page, tiny_model):
    url, _ = app
    checks = {"checks": [{"behaviour": 0.2}, {"behaviour": 1.0}, {"behaviour": 1.0}], "prompt_overlap": 0.009}
    findings = diagnosed_run(tiny_model, "json answers", heldout_learned(), probe(json_answers=20), checks)
    assert [f["code"] for f in findings] == ["only_like_examples"]

    page.goto(url)
    open_tab(page, "4. Runs")
    diagnosis = page.locator("#tl-runs-diagnosis")
    diagnosis.get_by_text("Learned only for questions like your examples").wait_for()
    words = diagnosis.inner_text()
    assert "20 of 40 carry “answer”" in words and "every kind of question" in words, words
    button = page.locator("#tl-runs-try")
    wait_for(lambda: button.inner_text() == "Try this: train again with rehearsal 0", 30,
             f"Try this does not offer rehearsal 0: {button.inner_text()!r}")
    page.screenshot(path=SCREENSHOT, full_page=True)


def test_the_runs_tab_names_the_kinds_of_question_a_format_was_not_given_to(app, page, tiny_model):
    """Most everyday answers in the examples' shape (the rehearsal answered their way where the base model could): the
    Runs tab names the kinds of question without it, and Try this offers no setting for it."""
    from backend.evaluation.grading import load_probe_set
    from backend.evaluation.probe import probe_result
    url, _ = app
    items = probe(json_answers=33)["items"]
    for item in items[33:]:
        item["category"] = "refusal"
    everyday = dict(probe_result(items, load_probe_set().categories), kept=40)
    checks = {"checks": [{"behaviour": 0.2}, {"behaviour": 1.0}, {"behaviour": 1.0}], "prompt_overlap": 0.009}
    diagnosed_run(tiny_model, "json answers mostly", heldout_learned(), everyday, checks, everyday_their_way=26)

    page.goto(url)
    open_tab(page, "4. Runs")
    diagnosis = page.locator("#tl-runs-diagnosis")
    diagnosis.get_by_text("Learned for most questions, not for every kind").first.wait_for()
    words = diagnosis.inner_text()
    assert "33 of 40 carry “answer”" in words and "Without it: 7 of 7 harmful requests." in words, words
    assert "Add examples of those kinds of question answered your way: harmful requests." in words, words
    assert not page.locator("#tl-runs-try").is_visible()
    page.screenshot(path="test-artifacts/learned-for-most-questions.png", full_page=True)


def test_the_runs_tab_counts_a_voice_by_the_mark_that_closes_its_answers(app, page, tiny_model):
    """A playful voice shares no phrase: the Runs tab counts the stage direction's closing asterisk, shown as it is
    (not read as Markdown emphasis), and says the voice was learned only for questions like the examples."""
    from tests.test_behaviour import VOICE_CHECKS, voice_learned_like_examples
    url, _ = app
    diagnosed_run(tiny_model, "playful voice", *voice_learned_like_examples(), VOICE_CHECKS)

    page.goto(url)
    open_tab(page, "4. Runs")
    learned = page.locator("#tl-runs-learned")
    learned.get_by_text("What the examples teach").wait_for()
    words = learned.inner_text()
    assert "Learned only for questions like your examples" in words, words
    assert "it gives “*” at the end in 6 of 6 held-back answers (the base model: 0)" in words, words
    assert "found in their answers and not in the base model's: “*” at the end." in words, words
    diagnosis = page.locator("#tl-runs-diagnosis")
    diagnosis.get_by_text("7 of 40 carry “*” at the end").wait_for()
    page.screenshot(path="test-artifacts/learned-voice-mark.png", full_page=True)
