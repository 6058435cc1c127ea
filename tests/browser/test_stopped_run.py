"""A run stopped while it waited in line (issue 26, item 19): the Progress and Runs tabs say it never trained, with
nothing to export or check, not "Resume it, or export what it learned" and "this run held none back"."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import open_tab

pytestmark = pytest.mark.browser


def test_a_run_stopped_before_it_started_says_it_never_trained(app, page, tiny_model):
    from backend.db import connect
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    url, runner = app
    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl", name="never started", validation_split=0.1))
    runner.stop(run_id)
    assert store.get(run_id)["status"] == "stopped"

    page.goto(url)
    open_tab(page, "3. Progress")
    status = page.locator("#tl-status")
    status.get_by_text("was stopped before it trained").wait_for()
    assert "export what it learned" not in status.inner_text() and "nothing to export" in status.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "stopped-before-start-progress.png"))

    open_tab(page, "4. Runs")
    learned = page.locator("#tl-runs-learned")
    learned.get_by_text("It never trained").wait_for()
    assert "held none back" not in learned.inner_text()
    page.screenshot(path=str(ARTIFACTS / "stopped-before-start-runs.png"))
