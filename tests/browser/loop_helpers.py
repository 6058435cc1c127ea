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


def open_tab(page, name: str):
    page.get_by_role("tab", name=name).click()
    page.get_by_role("tab", name=name, selected=True).wait_for()


def start_labelling(page, prompts: list[str], mode: str | None = None, max_tokens: int | None = None):
    """Paste prompts in the Label tab and start; returns when the first answer is on screen. max_tokens: the
    longest answer, short for a tiny model (its random answers never end by themselves, so each would take
    the whole default length)."""
    page.locator("#tl-label-pasted textarea").fill("\n".join(prompts))
    if mode:
        page.get_by_label(mode).check()
    if max_tokens:
        longest = page.get_by_label("number input for Longest answer (tokens)")
        longest.fill(str(max_tokens))
        longest.press("Tab")
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
