"""The Runs tab's held-back table fits the page: with an answer holding a long unbroken string (JSON, a URL), the
tuned answers and their scores ran off the right edge (the table was 4,227 px wide in a 1,216 px box; issue 26,
item 22)."""
import pytest

from tests.browser.loop_helpers import open_tab
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
