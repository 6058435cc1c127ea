"""A model from the Hugging Face Hub as its users meet it, in headless Chromium: the catalogue judged for this
computer before anything downloads, a model picked from the list, its fit verdict read on the page, and "Use these
settings" changing the Advanced settings. Nothing is downloaded (the Hub cannot be reached from tests)."""
import re
import time

import pytest

from backend.models.catalogue import catalogue
from tests.browser.test_browser_flow import choose, wait_for
from ui.train_tab import entry_label

pytestmark = pytest.mark.browser
PICKED = "HuggingFaceTB/SmolLM2-360M-Instruct"


@pytest.fixture
def offline(monkeypatch):
    from tests.hub_standin import closed_port
    monkeypatch.setenv("HF_ENDPOINT", closed_port())


def test_pick_a_catalogue_model_read_its_verdict_and_use_the_settings_that_fit(offline, app, page):
    url, _ = app
    page.goto(url)
    page.get_by_role("tab", name="2. Train").click()
    page.get_by_label("A model from the Hugging Face Hub (downloaded once)").check()
    table = page.locator("#tl-models")
    table.locator("td.tl-verdict").first.wait_for()
    assert table.locator("td.tl-verdict").count() == len(catalogue())
    for entry in catalogue():
        assert entry.name in table.inner_text()
    cells = table.locator("td.tl-verdict").all_inner_texts()
    assert all(t.startswith(("Fits", "Cannot fit on this machine")) for t in cells)

    entry = next(e for e in catalogue() if e.id == PICKED)
    choose(page, "Model from the Hugging Face Hub", entry_label(entry))
    page.locator("#tl-hub-info").get_by_text("0.36 billion parameters").wait_for()
    assert "Chat template: chatml" in page.locator("#tl-hub-info").inner_text()
    page.get_by_role("button", name="Download").wait_for()  # not downloaded yet
    chosen = table.locator("tr.tl-chosen")
    chosen.wait_for()
    assert PICKED in chosen.inner_text() and chosen.locator("td.tl-verdict").inner_text().startswith("Fits")
    page.locator("#tl-memory").get_by_text("Memory: Fits").wait_for()

    # 512 examples per step cannot fit on this computer; the verdict names the settings that can.
    page.get_by_text("Advanced settings").click()
    batch = page.get_by_role("spinbutton", name="Examples per step (batch size)")
    batch.fill("512")
    batch.press("Tab")
    page.locator("#tl-memory").get_by_text("Memory: Too big").wait_for()
    advice = page.locator("#tl-fit-advice")
    advice.get_by_text("Fits with").wait_for()
    words = advice.inner_text()
    smaller = int(re.search(r"batch (\d+) \(accumulation (\d+)\)", words)[1])
    assert smaller < 512
    assert chosen.locator("td.tl-verdict").inner_text().startswith("Fits with")  # the table follows the form

    page.get_by_role("button", name="Use these settings").click()
    wait_for(lambda: batch.input_value() == str(smaller), 60, "the batch size was not changed")
    page.locator("#tl-memory").get_by_text(re.compile("Memory: (Fits|Tight)")).wait_for()
    if "4-bit QLoRA" in words:
        quantization = page.get_by_role("combobox", name="Compress the model to save memory (quantization)")
        assert quantization.input_value() == "4bit"
    page.get_by_role("button", name="Use these settings").wait_for(state="hidden")


@pytest.fixture
def slow_memory_box(monkeypatch):
    """The memory box answered as a busy machine answers it: each redraw takes seconds, so the redraws that the
    page's first load fires are still on their way when the person picks a method. (Before the redraws were put in
    order, the last to arrive was an old one, and the box showed a method that was no longer picked.)"""
    import ui.train_tab as train_tab
    quick = train_tab.refresh_fit

    def slow(ctx, v):
        time.sleep(3)
        return quick(ctx, v)
    monkeypatch.setattr(train_tab, "refresh_fit", slow)


def test_dpo_on_the_cpu_shows_checkpointing_that_costs_it_no_time(slow_memory_box, app, page):
    """Picking DPO turns gradient checkpointing on for a run on the CPU (backend/models/memory.checkpointing_is_free), and
    the memory box says why, not the "quarter longer" it costs elsewhere; back on SFT it is off again. The box
    shows the latest choice whatever order the slow redraws arrive in."""
    url, _ = app
    page.goto(url)
    page.get_by_role("tab", name="2. Train").click()
    box = page.locator("#tl-memory")
    page.get_by_label("DPO: prefer the better answer").check()
    box.get_by_text(re.compile("with gradient checkpointing .*for DPO on the CPU it is no slower")).wait_for()
    assert "quarter longer" not in box.inner_text()
    page.get_by_label("SFT: learn from examples").check()
    wait_for(lambda: "Memory: Fits" in box.inner_text() and "gradient checkpointing" not in box.inner_text(), 60,
             "the memory box still shows gradient checkpointing for SFT")


def test_a_learning_rate_out_of_range_is_named_in_the_memory_box_and_an_unusual_one_is_said(app, page):
    """A learning rate of 5 gave Gradio's own "Value 5 is greater than maximum value 0.01." naming no box, and an
    "Error" over the memory box; 0.01 passed without a word."""
    url, _ = app
    page.goto(url)
    page.get_by_role("tab", name="2. Train").click()
    page.locator("#tl-memory").get_by_text("Memory: Fits").wait_for()
    page.get_by_text("Advanced settings").click()
    rate = page.get_by_role("spinbutton", name="Learning rate (size of each step)")
    rate.fill("5")
    rate.press("Tab")
    page.locator("#tl-memory").get_by_text(
        "Learning rate (size of each step): 5.0 is above the largest allowed value, 0.01.").wait_for()
    assert page.get_by_text("greater than maximum value").count() == 0
    rate.fill("0.01")
    rate.press("Tab")
    page.locator("#tl-fit-advice").get_by_text("is 0.01, above the usual range (up to 0.001)").wait_for()
    page.locator("#tl-memory").get_by_text("Memory: Fits").wait_for()
