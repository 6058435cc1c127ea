"""Words the page itself shows or reads out, in headless Chromium (issue 26, item 18): "common.complete", an
untranslated Gradio key, was the status line's word each time an event ended (the status line that screen readers
read out; Gradio's English words lack the key)."""
import pytest

from tests.browser.loop_helpers import open_tab, wait_for

pytestmark = pytest.mark.browser

# Every text the page's status lines (class sr-only) take, as they change.
RECORD = """() => { window.tlSaid = [];
  new MutationObserver(() => document.querySelectorAll('.sr-only').forEach(el => {
      const text = el.textContent.trim(); if (text) window.tlSaid.push(text); }))
    .observe(document.body, {subtree: true, childList: true, characterData: true}); }"""


def test_an_event_that_ends_is_said_in_words_not_as_a_gradio_key(app, page):
    url, _ = app
    page.goto(url)
    open_tab(page, "1. Data")
    page.evaluate(RECORD)
    open_tab(page, "4. Runs")  # its list and details are redrawn: events that end
    open_tab(page, "5. Export")
    said = lambda: page.evaluate("window.tlSaid")  # noqa: E731
    wait_for(lambda: "Done" in said() or any("common." in s for s in said()), 120,
             f"no event was said to have ended: {said()}")
    assert not [s for s in said() if "common." in s or "status." in s], said()


RED = """(button) => { const style = getComputedStyle(button);
  const [r, g, b] = style.backgroundColor.match(/[\\d.]+/g).map(Number);
  return {red: r > g + 60 && r > b + 60, background: style.backgroundColor, opacity: style.opacity}; }"""


def test_a_stop_button_with_nothing_to_stop_is_grey_not_red(app, page):
    """Issue 26, item 18: "Stop training" was bright red with nothing running; disabled, it stayed a pale red, a
    warning colour on a button that can do nothing. Disabled, it is grey like the other disabled buttons."""
    url, _ = app
    page.goto(url)
    open_tab(page, "2. Train")
    for tab, name in (("2. Train", "Stop training"), ("3. Progress", "Stop this run")):
        open_tab(page, tab)
        stop = page.get_by_role("button", name=name)
        wait_for(stop.is_disabled, 60, f"{name} is enabled with nothing running")
        look = stop.evaluate(RED)
        assert not look["red"], (name, look)
