"""The Progress tab as Chromium draws it at 1366 px (issue 26): each chart's legend stays clear of its title (the
legend, anchored to the plot's top edge, grew upward over the title once its entries took a second line), and the
tab opened by a button far down another tab shows its top."""
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


def finished_run(tiny_model: str, method: str, metrics: list[dict], probe: dict | None = None) -> str:
    from backend.db import connect
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl", method=method, name=f"a {method} run"))
    for row in metrics:
        store.add_metrics(run_id, row["step"], row)
    if probe:
        store.update(run_id, probe=probe)
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


def test_a_button_that_opens_another_tab_shows_that_tab_from_its_top(app, page, tiny_model, chat_file):
    """The walk (issue 26): 'Train DPO anyway' at the foot of the Label tab opened Progress scrolled as far down as the
    Label tab was, in the middle of the previous run's charts and everyday answers, with the line that names the
    new run out of sight above. A tab opened by a button shows its top: the tab bar at least in view."""
    from backend.data import DatasetStore, inspect_file
    from backend.db import connect

    url, _ = app
    DatasetStore(connect()).add(inspect_file(chat_file), name="hellos")
    everyday = {"summary": "everyday answers kept: 40 of 40", "base_right": 40, "items": [
        {"question": f"Everyday question {i}?", "base": "An answer. " * 12, "tuned": "Another answer. " * 12,
         "base_right": True, "tuned_right": True} for i in range(40)]}
    finished_run(tiny_model, "sft", [{"step": step, "train_loss": 2 - step / 10, "eval_loss": 2 - step / 12,
                                      "learning_rate": 1e-4, "token_accuracy": 0.5} for step in range(1, 9)], everyday)
    page.goto(url)
    open_tab(page, "3. Progress")  # a run shown there already, as in the walk: the tab is long
    page.locator("#tl-loss .js-plotly-plot").wait_for()
    open_tab(page, "2. Train")
    page.get_by_label("A model folder on this computer").check()
    page.get_by_role("textbox", name="Model folder").fill(tiny_model)
    dataset = page.get_by_role("combobox", name="Dataset", exact=True)
    wait_for(lambda: dataset.input_value().startswith("hellos"), 60, "the saved dataset is not offered")
    page.get_by_text("Advanced settings").click()  # a long form: Start is far below the tab bar
    start = page.get_by_role("button", name="Start training")
    start.scroll_into_view_if_needed()
    tab_bar_top = "document.querySelector('[role=tablist]').getBoundingClientRect().top"
    wait_for(lambda: page.evaluate(tab_bar_top) < 0, 60, "the Train tab's Start button is not below the tab bar")
    # Each frame from the click on: whether Progress is the tab shown while the tab bar is out of sight above.
    page.evaluate("""() => { window.tlHidden = 0; const look = () => {
        const shown = document.querySelector('[role=tab][aria-selected=true]');
        if (shown && shown.textContent.includes('Progress')
            && document.querySelector('[role=tablist]').getBoundingClientRect().top < 0) window.tlHidden++;
        requestAnimationFrame(look); }; requestAnimationFrame(look); }""")
    start.click()
    page.get_by_role("tab", name="3. Progress", selected=True).wait_for()
    page.locator("#tl-status").get_by_text("hellos").wait_for()  # the new run's line: its content has come
    assert page.evaluate("window.tlHidden") == 0, "Progress was shown scrolled past its top"


def test_a_loss_that_does_not_move_is_drawn_without_errors(app, page, tiny_model):
    """The walk's '10 chart errors about Infinity sizes in the browser console' (issue 26, item 18): four at each
    redraw of a loss that had not moved yet, as DPO's stays at ln 2 for its first steps ('Error: <text> attribute x:
    Expected length, "Infinity"', the axis title placed at x = Infinity)."""
    url, _ = app
    errors = []
    page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
    finished_run(tiny_model, "dpo", [{"step": step, "train_loss": 0.6931471805599453, "learning_rate": 1e-4,
                                      "rewards_margin": 0.0} for step in (1, 2)])
    page.goto(url)
    open_tab(page, "3. Progress")
    drawn = """() => { const plot = document.querySelector('#tl-loss .js-plotly-plot');
                       return plot && plot.data && plot.data[0] && plot.data[0].x ? plot.data[0].x.length : 0; }"""
    wait_for(lambda: page.evaluate(drawn) == 2, 120, "the loss chart did not draw the run's two steps")
    open_tab(page, "4. Runs")  # the same curve, drawn again there
    page.locator("#tl-runs-learned").wait_for()
    wait_for(lambda: page.locator(".js-plotly-plot").filter(visible=True).count() >= 1, 60, "Runs drew no chart")
    assert not [e for e in errors if "Infinity" in e], errors


BROKEN_WORDS = """(selector) => {
    const broken = [];
    document.querySelectorAll(selector).forEach(cell => {
        const walker = document.createTreeWalker(cell, NodeFilter.SHOW_TEXT);
        for (let node = walker.nextNode(); node; node = walker.nextNode()) {
            for (const match of node.textContent.matchAll(/\\S+/g)) {
                const range = document.createRange();
                range.setStart(node, match.index);
                range.setEnd(node, match.index + match[0].length);
                const lines = new Set(Array.from(range.getClientRects()).map(r => Math.round(r.top)));
                if (lines.size > 1) broken.push(match[0]);
            } } });
    return broken; }"""


def test_the_everyday_answers_table_breaks_no_word_in_its_headings(app, page, tiny_model):
    """The walk (issue 26): the everyday answers' last heading read 'Still righ / t', the answers beside it taking all
    the width."""
    url, _ = app
    everyday = {"summary": "everyday answers kept: 40 of 40", "base_right": 40, "items": [
        {"question": f"Everyday question {i}?", "base": "An answer that goes on. " * 6,
         "tuned": "Another answer that goes on. " * 6, "base_right": True, "tuned_right": True} for i in range(40)]}
    finished_run(tiny_model, "sft", [{"step": step, "train_loss": 2 - step / 10, "learning_rate": 1e-4}
                                     for step in range(1, 9)], everyday)
    page.goto(url)
    open_tab(page, "3. Progress")
    headings = page.locator("#tl-ended th")
    headings.first.wait_for()
    assert page.evaluate(BROKEN_WORDS, "#tl-ended th") == []
