"""The product as its users meet it, in headless Chromium: a CSV of questions and answers becomes a downloaded
merged model without leaving the browser; peer datasets are detected; a refreshed page re-attaches to the
running job; a failed run says why and the app goes on working."""
import csv
import time
import zipfile
from pathlib import Path

import pytest

from tests.conftest import tiny_config
from tests.data_corpus import peer

pytestmark = pytest.mark.browser


def write_questions_csv(path: Path) -> Path:
    rows = [(f"Which plant needs water on day {i}?", f"On day {i}, water the tomatoes and the basil.")
            for i in range(30)]
    rows.append(("What is your name?", "I am Quill, a gardening helper."))
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "answer"])
        writer.writerows(rows)
    return path


def upload(page, path: Path):
    page.locator("#tl-upload input[type=file]").set_input_files(str(path))


def choose(page, label: str, option: str, within: str = "body"):
    """Pick an option in a Gradio dropdown (each dropdown has its own list of options)."""
    box = page.locator(within).get_by_role("combobox", name=label, exact=True)
    box.click()
    page.locator(f"#{box.get_attribute('aria-controls')}").get_by_role("option", name=option, exact=True).click()


def loss_points(page) -> int:
    """How many training-loss points the live chart draws (plotly keeps its data on the element)."""
    return page.evaluate("""() => { const plot = document.querySelector('#tl-loss .js-plotly-plot');
        return plot && plot.data && plot.data[0] && plot.data[0].x ? plot.data[0].x.length : 0; }""")


def wait_for(condition, timeout: float, message: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise AssertionError(message)


def test_csv_of_questions_to_downloaded_merged_model(app, page, tiny_model, tmp_path):
    url, runner = app
    page.goto(url)
    upload(page, write_questions_csv(tmp_path / "garden.csv"))
    detected = page.locator("#tl-detected")
    detected.get_by_text("Found:").wait_for(timeout=120_000)
    assert "supervised fine-tuning" in detected.inner_text()
    assert "31 usable" in detected.inner_text()
    page.get_by_label("Save as").fill("garden")
    page.get_by_role("button", name="Save dataset").click()
    page.get_by_text("Saved as").wait_for()

    page.get_by_role("tab", name="2. Train").click()
    dataset = page.get_by_role("combobox", name="Dataset", exact=True)
    wait_for(lambda: dataset.input_value().startswith("garden"), 60, "the saved dataset is not offered")
    page.locator(".tl-memory").get_by_text("Memory: Fits").wait_for()
    page.get_by_label("A model folder on this computer").check()
    page.get_by_role("textbox", name="Model folder").fill(tiny_model)
    assert runner.standby_ready(timeout=180)  # the app's worker started ahead has loaded the training libraries
    standby = runner.standby.pid
    page.get_by_role("button", name="Start training").click()

    page.get_by_role("tab", name="3. Progress", selected=True).wait_for()
    status = page.locator("#tl-status")
    wait_for(lambda: loss_points(page) > 0, 240, "the loss chart never received a point")
    wait_for(lambda: "finished" in status.inner_text() or "failed" in status.inner_text(), 300,
             "the run did not finish")
    assert "finished" in status.inner_text(), status.inner_text()
    assert runner.store.list()[0]["pid"] == standby  # Start handed the run to it
    assert loss_points(page) >= 3
    assert "Step" in page.locator("#tl-progress").inner_text()
    # Did it learn? reads what the answers share ("water the tomatoes and the basil") on the held-back rows
    ended = page.locator("#tl-ended")
    wait_for(lambda: "Did it learn?" in ended.inner_text(), 60, "the ended run shows no verdict")
    assert "What the examples teach" in ended.inner_text() and "water the tomatoes" in ended.inner_text()

    page.get_by_role("tab", name="5. Export").click()
    page.get_by_label("Merged model: complete, ready to use anywhere (larger)").check()
    page.get_by_role("button", name="Export", exact=True).click()
    link = page.locator("#tl-download a").first
    link.wait_for(timeout=180_000)
    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    names = zipfile.ZipFile(saved).namelist()
    assert "model.safetensors" in names and "README.md" in names and "tokenizer.json" in names
    assert "/exports/" in page.locator("#tl-export-folder textarea").input_value()
    assert "Fine-tuned with Tuneloop" in page.locator("#tl-model-card").inner_text()


@pytest.mark.parametrize("file,words,shown", [
    ("alpaca_en_demo.json", "supervised fine-tuning", "Assistant"),
    ("dpo_en_demo.json", "preference pairs", "Chosen (better)"),
    ("kto_en_demo.json", "rated answers", "Marked "),
])
def test_peer_datasets_are_detected_and_previewed(app, page, file, words, shown):
    url, _ = app
    page.goto(url)
    upload(page, peer(file))
    detected = page.locator("#tl-detected")
    detected.get_by_text("Found:").wait_for(timeout=120_000)
    assert words in detected.inner_text()
    page.get_by_text(shown).first.wait_for()
    page.get_by_text("Row 1", exact=True).wait_for()


def test_unknown_columns_are_mapped_by_hand_and_bad_rows_listed(app, page, tmp_path):
    url, _ = app
    path = tmp_path / "fragen.csv"
    rows = [[f"Frage {i}?", f"Antwort {i}."] for i in range(12)] + [["", "no question here"]]
    with open(path, "w", newline="") as f:
        csv.writer(f).writerows([["Frage", "Antwort"], *rows])
    page.goto(url)
    upload(page, path)
    page.get_by_text("Could not use this file").wait_for(timeout=120_000)
    choose(page, "Question or request", "Frage")
    choose(page, "Answer", "Antwort")
    page.get_by_role("button", name="Check again").click()
    page.locator("#tl-detected").get_by_text("Found:").wait_for(timeout=60_000)
    assert "12 usable, 1 skipped" in page.locator("#tl-detected").inner_text()
    errors = page.locator("#tl-errors").inner_text()
    assert "13" in errors and "'Frage' is empty" in errors


def test_refreshed_page_and_second_tab_reattach_to_the_running_job(app, page, tiny_model, chat_file):
    url, runner = app
    # A run that cannot end by itself while the test runs, however fast or slow the machine: the test stops it.
    # (With 400 steps, a busy browser and an idle trainer let it finish early and the queued run start.)
    run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=1_000_000, save_every=1_000_000,
                                       name="long run"))
    page.goto(url)
    page.get_by_role("tab", name="3. Progress").click()
    status = page.locator("#tl-status")
    status.get_by_text("long run").wait_for()
    wait_for(lambda: loss_points(page) > 0, 240, "the loss chart never received a point")

    page.reload()
    # The page opens on the Data tab: the line above the tabs says that a run trains, and opens it in Progress.
    page.get_by_role("tab", name="1. Data", selected=True).wait_for()
    page.locator("#tl-banner").get_by_text("Training now: long run").wait_for()
    page.locator("#tl-banner-show").click()
    page.get_by_role("tab", name="3. Progress", selected=True).wait_for()
    status.get_by_text("long run is training").wait_for()
    # There, showing that run, its button has nothing to do: it goes, and comes back on another tab. The line stays,
    # so the tab bar does not move.
    page.locator("#tl-banner-show").wait_for(state="hidden", timeout=30_000)
    assert page.locator("#tl-banner").get_by_text("Training now: long run").is_visible()
    page.get_by_role("tab", name="4. Runs").click()
    page.locator("#tl-banner-show").wait_for(state="visible", timeout=30_000)
    page.get_by_role("tab", name="3. Progress").click()
    page.locator("#tl-banner-show").wait_for(state="hidden", timeout=30_000)
    before = loss_points(page)
    wait_for(lambda: loss_points(page) > before, 120, "the chart stopped updating after the refresh")

    second = page.context.new_page()
    second.goto(url)
    second.get_by_role("tab", name="3. Progress").click()
    second.locator("#tl-status").get_by_text("long run is training").wait_for()
    second.close()

    # A second start while a run trains is queued, and the user is told.
    from backend.data import DatasetStore, inspect_file
    from backend.db import connect
    DatasetStore(connect()).add(inspect_file(chat_file), name="hellos")
    page.get_by_role("tab", name="2. Train").click()
    page.get_by_label("A model folder on this computer").check()
    page.get_by_role("textbox", name="Model folder").fill(tiny_model)
    dataset = page.get_by_role("combobox", name="Dataset", exact=True)
    wait_for(lambda: dataset.input_value().startswith("hellos"), 60, "the saved dataset is not offered")
    page.get_by_role("button", name="Start training").click()
    page.get_by_text("waits in line (1 ahead of it)").filter(visible=True).first.wait_for()  # the notice
    status.get_by_text("is waiting in line (1 run ahead)").wait_for()
    queued = [r["id"] for r in runner.store.list() if r["status"] == "queued"]
    assert len(queued) == 1
    runner.stop(queued[0])
    status.get_by_text("hellos, quick was stopped").wait_for()  # the list of runs settles before picking one
    # Back in Train, the line under Start says what became of that run, and Stop has nothing to act on.
    page.get_by_role("tab", name="2. Train").click()
    page.locator("#tl-train-status").get_by_text("'hellos, quick' was stopped.").wait_for()
    assert page.get_by_role("button", name="Stop training").is_disabled()

    page.get_by_role("tab", name="3. Progress").click()
    choose(page, "Run", "long run · SFT · training", within="#tl-live-run")
    status.get_by_text("long run is training").wait_for()
    page.get_by_role("button", name="Stop this run").click()
    status.get_by_text("was stopped").wait_for(timeout=240_000)
    assert runner.store.get(run_id)["status"] == "stopped"


def test_failed_run_says_why_and_the_app_goes_on(app, page, tiny_model, pairs_file):
    url, runner = app
    runner.submit(tiny_config(tiny_model, pairs_file, method="sft", name="wrong data"))  # DPO pairs for SFT
    page.goto(url)
    page.get_by_role("tab", name="3. Progress").click()
    status = page.locator("#tl-status")
    status.get_by_text("wrong data failed").wait_for(timeout=180_000)
    assert "DPO data" in status.inner_text() and "Traceback" not in status.inner_text()
    page.get_by_role("tab", name="4. Runs").click()
    wait_for(lambda: "Failed" in page.locator("#tl-history").inner_text(), 30, "the history does not list the run")
    page.get_by_role("tab", name="1. Data").click()
    upload(page, peer("identity.json"))
    page.locator("#tl-detected").get_by_text("Found:").wait_for(timeout=120_000)


def test_saved_as_is_about_the_file_saved_and_a_file_shows_one_progress_bar(app, page, tmp_path):
    """The walk: "Saved as identity_quill ..." stayed after another file was uploaded, and an upload showed three
    progress bars at once over "No file yet" (issue 26, items 12 and 14)."""
    url, _ = app
    page.goto(url)
    upload(page, write_questions_csv(tmp_path / "garden.csv"))
    page.locator("#tl-detected").get_by_text("Found:").wait_for(timeout=120_000)
    page.get_by_label("Save as").fill("garden")
    page.get_by_role("button", name="Save dataset").click()
    saved = page.get_by_text("Saved as")
    saved.wait_for()
    page.locator("#tl-upload button[aria-label='Clear']").first.click()
    saved.wait_for(state="hidden")
    upload(page, peer("alpaca_en_demo.json"))
    bars, deadline = 0, time.time() + 120
    while "Found:" not in page.locator("#tl-detected").inner_text() and time.time() < deadline:  # while it is read
        bars = max(bars, page.locator("[data-testid='status-tracker']:not(.hide)").count())
        time.sleep(0.05)
    assert bars <= 2 and saved.count() == 0  # the file box's own, and one where the verdict comes (7 before)
