"""The Progress tab's charts as Chromium draws them at 1366 px (issue 26): each chart's legend stays clear of its title
(the legend, anchored to the plot's top edge, grew upward over the title once its entries took a second line)."""
import pytest

from tests.browser.loop_helpers import open_tab, wait_for

pytestmark = pytest.mark.browser

BOXES = """() => Array.from(document.querySelectorAll(
    '#tl-loss .js-plotly-plot, #tl-live-measures .js-plotly-plot, #tl-live-lr .js-plotly-plot')).map(plot => {
    const box = (selector) => { const e = plot.querySelector(selector); if (!e) return null;
                                const b = e.getBoundingClientRect(); return [b.left, b.top, b.right, b.bottom]; };
    return {title: box('.gtitle'), legend: box('.legend'), text: plot.querySelector('.gtitle')?.textContent}; })"""


def overlap(a, b) -> bool:
    return a[0] < b[2] and b[0] < a[2] and a[1] < b[3] and b[1] < a[3]


def finished_run(tiny_model: str, method: str, metrics: list[dict]) -> str:
    from backend.db import connect
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl", method=method, name=f"a {method} run"))
    for row in metrics:
        store.add_metrics(run_id, row["step"], row)
    store.set_status(run_id, "done")
    return run_id


def test_each_charts_legend_stays_clear_of_its_title(app, page, tiny_model):
    url, _ = app
    # A DPO run draws five series in the half-width measures chart, the loss chart three.
    finished_run(tiny_model, "dpo", [
        {"step": step, "train_loss": 0.69 - step * 0.02, "eval_loss": 0.7 - step * 0.02, "learning_rate": 1e-4,
         "rewards_chosen": 0.1 * step, "rewards_rejected": -0.1 * step, "rewards_margin": 0.2 * step,
         "eval_rewards_margin": 0.15 * step, "rewards_accuracy": 0.5 + step / 20} for step in range(1, 9)])
    page.goto(url)
    open_tab(page, "3. Progress")
    wait_for(lambda: len([c for c in page.evaluate(BOXES) if c["legend"]]) == 2, 120,
             "the loss and measures charts did not draw their legends")
    for chart in page.evaluate(BOXES):
        if chart["legend"]:
            assert not overlap(chart["title"], chart["legend"]), chart
