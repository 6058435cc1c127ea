"""What the feedback-loop browser tests share: an app that can be restarted on the same workspace, and small
steps a person takes (open a tab, paste prompts and start labelling, read the running count)."""
import time

import pytest

from tests.browser.conftest import free_port

TINY_ANSWER = 16  # tokens: the longest answer asked of a tiny model, whose random answers never end by themselves


class ServedApp:
    """The web app in this process, on a free port; restart() closes it and serves a fresh one (new runner,
    new model pool) on the same workspace, as closing and reopening the app would."""

    def __init__(self):
        self.start()

    def start(self):
        from backend.jobs.runner import JobRunner
        from ui.app import build_app, launch
        self.runner = JobRunner()
        self.demo = build_app(self.runner)
        port = free_port()
        launch(self.demo, port=port, prevent_thread_lock=True, quiet=True)
        self.url = f"http://127.0.0.1:{port}"

    def close(self):
        self.demo.close(verbose=False)
        self.runner.close(stop_current=True)

    def restart(self) -> str:
        self.close()
        self.start()
        return self.url


@pytest.fixture
def served(home, embedded_model):
    app = ServedApp()
    yield app
    app.close()


def wait_for(condition, timeout: float, message: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError(message)


# Gradio 6 draws what a tab (the first time it opens) or an accordion reveals, and one frame later sets every revealed
# component to the value the page was built with: a number typed in between is replaced (temperature 0 by 0.7, 16
# tokens by 128), and an accordion opened in between is closed again. Playwright types as soon as a box is visible, and
# on a loaded machine a frame can come 100 ms or more late (issue 25, item 12b). So the tests wait for two frames.
NEXT_FRAMES = "() => new Promise(done => requestAnimationFrame(() => requestAnimationFrame(done)))"
# A browser too busy to draw (page.add_init_script(LATE_FRAMES)): every frame's callbacks run 2 s late.
LATE_FRAMES = """(() => { const draw = window.requestAnimationFrame.bind(window);
    window.requestAnimationFrame = callback => draw(time => setTimeout(() => callback(time), 2000)); })()"""


def drawn(page):
    """Returns once the page has drawn two more frames."""
    page.evaluate(NEXT_FRAMES)


def open_tab(page, name: str):
    """Opens the tab and waits until Gradio has drawn it: what is typed next holds."""
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tab", name=name, selected=True).wait_for()
    drawn(page)


def fill_held(page, boxes: dict):
    """Types each value into its box (a Playwright locator) once Gradio has drawn the boxes, and checks two frames
    later that they still hold it (a box an accordion or a tab just revealed is reset one frame after it is drawn)."""
    for box in boxes:
        box.wait_for()
    drawn(page)
    for box, value in boxes.items():
        box.fill(value)
        box.press("Tab")
    drawn(page)
    assert [box.input_value() for box in boxes] == list(boxes.values())  # still there two frames later


def fill_numbers(page, values: dict[str, str]):
    """fill_held for the number boxes of settings, by their labels (a slider's box: "Longest answer (tokens)")."""
    fill_held(page, {page.get_by_label(f"number input for {label}"): value for label, value in values.items()})


def open_label_tab(page, url: str, run_id: str):
    """Opens the page on the Label tab once it offers `run_id`'s answers (a finished run)."""
    page.goto(url)
    open_tab(page, "7. Label")
    source = page.get_by_role("combobox", name="Answers from", exact=True)
    wait_for(lambda: source.input_value().startswith(run_id), 30, "the finished run is not offered")


def ab_on_one_run(page, run_id: str):
    """The Label tab in A/B mode with `run_id` on both sides: one run's answers at two temperatures."""
    page.get_by_label("A/B: which of two answers is better? (trains DPO)").check()
    for box in ("First model", "Second model (the sides are shuffled for each prompt)"):
        combo = page.get_by_role("combobox", name=box, exact=True)
        combo.click()
        page.locator(f"#{combo.get_attribute('aria-controls')}").get_by_role("option").filter(
            has_text=run_id).click()


def start_labelling(page, prompts: list[str], mode: str | None = None, max_tokens: int | None = None):
    """Paste prompts in the Label tab and start; returns when the first answer is on screen. max_tokens: the
    longest answer, short for a tiny model (its random answers never end by themselves, so each would take
    the whole default length)."""
    if mode:
        page.get_by_label(mode).check()
    boxes = {page.locator("#tl-label-pasted textarea"): "\n".join(prompts)}
    if max_tokens:
        boxes[page.get_by_label("number input for Longest answer (tokens)")] = str(max_tokens)
    fill_held(page, boxes)
    page.locator("#tl-label-start").click()
    page.locator("#tl-label-answer-a .tl-answer").wait_for(timeout=180_000)
    page.locator("body").click(position={"x": 5, "y": 5})  # keys go to the page, not a text box


def press_on_answer(page, key: str):
    """Press `key` once an answer is on screen, as a person does: a key pressed while the next answer is still being
    generated judges nothing."""
    page.locator("#tl-label-answer-a .tl-answer").wait_for()
    page.keyboard.press(key)


def count_text(page) -> str:
    return page.locator("#tl-label-count").inner_text()
