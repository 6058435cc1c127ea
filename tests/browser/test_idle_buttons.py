"""Buttons that can do nothing are not offered (issue 26 follow-up, found in the last walk): the Data tab's Remove with
nothing saved, the Label tab's judging buttons under "All prompts are judged", and the Export tab's Upload for a run
with no export or with its Repository box empty."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import (TINY_ANSWER, ab_on_one_run, count_text, fill_held,  # noqa: F401
                                        open_label_tab, open_tab, press_on_answer, served, start_labelling, wait_for)
from tests.conftest import write_jsonl
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser


def test_remove_is_grey_until_a_saved_dataset_is_picked(app, page, tmp_path):
    url, _ = app
    page.goto(url)
    open_tab(page, "1. Data")
    remove = page.get_by_role("button", name="Remove...")
    listing = page.get_by_role("combobox", name="Dataset to remove", exact=True)
    wait_for(lambda: remove.is_disabled() and listing.is_disabled(), 60, "Remove is offered with nothing saved")

    from backend.data import DatasetStore, inspect_file
    from backend.db import connect
    rows = [{"prompt": f"What is {i}?", "completion": f"It is {i}."} for i in range(12)]
    DatasetStore(connect()).add(inspect_file(write_jsonl(tmp_path / "numbers.jsonl", rows)), name="numbers")
    open_tab(page, "2. Train")
    open_tab(page, "1. Data")  # the saved list is read again when the tab opens
    wait_for(listing.is_enabled, 60, "the saved dataset cannot be picked")
    assert remove.is_disabled()  # nothing picked yet
    listing.click()
    page.locator(f"#{listing.get_attribute('aria-controls')}").get_by_role("option", name="numbers").click()
    wait_for(remove.is_enabled, 60, "Remove stays grey with a dataset picked")
    remove.click()
    page.get_by_role("button", name="Yes, remove it").click()
    wait_for(lambda: remove.is_disabled() and listing.is_disabled(), 60, "Remove is offered after the last went")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "data-remove-nothing-saved.png"), full_page=True)


def test_the_judging_buttons_go_once_every_prompt_is_judged(served, page, tiny_model):
    judged = fake_run(tiny_model)
    open_label_tab(page, served.url, judged)
    ab_on_one_run(page, judged)  # one run, two temperatures
    start_labelling(page, ["Say hello.", "Say goodbye."], max_tokens=TINY_ANSWER)
    left, skip = page.locator("#tl-key-left"), page.locator("#tl-key-skip")
    assert left.is_visible() and skip.is_visible()
    for n in (1, 2):
        press_on_answer(page, "1")
        wait_for(lambda: f"{n} judged" in count_text(page), 60, f"judgement {n} did not register")
    page.get_by_text("All prompts are judged.").wait_for()
    for button in (left, page.locator("#tl-key-both-bad"), skip):
        button.wait_for(state="hidden")
    assert page.locator("#tl-key-undo").is_visible()  # the last judgement can still be taken back
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "label-all-judged.png"), full_page=True)
    page.locator("body").click(position={"x": 5, "y": 5})
    page.keyboard.press("u")
    left.wait_for(state="visible")
    assert "Took back your last judgement" in count_text(page) and skip.is_visible()


def test_upload_is_grey_until_the_run_has_an_export(app, page, tiny_model):
    """The walk: Upload was enabled for a run with no export, and its click answered with an error toast."""
    from tests.browser.test_export_choice import open_upload
    url, _ = app
    fake_run(tiny_model, name="not exported")
    page.goto(url)
    open_tab(page, "5. Export")
    page.locator("#tl-export-sizes").get_by_text("Expected size").wait_for()  # the run is picked
    open_upload(page)
    send, note = page.get_by_role("button", name="Upload", exact=True), page.locator("#tl-hub-note")
    wait_for(lambda: "xport this run" in note.inner_text(), 60, "the note says nothing of this run")
    assert send.is_disabled(), "Upload is offered with nothing exported"
    assert "Nothing to upload yet: export this run above first" in note.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-upload-nothing-exported.png"), full_page=True)
    page.get_by_label("Adapter only").check()
    page.get_by_role("button", name="Export", exact=True).click()
    # Exported, with the Repository box still empty: grey, and the note says to write it (it was enabled there, and
    # its click answered "Give the repository to upload to").
    wait_for(lambda: "newest export: the adapter" in note.inner_text(), 120, "the note does not name the export")
    assert send.is_disabled() and "Write the repository to upload to below" in note.inner_text()
    fill_held(page, {page.locator("#tl-hub-repo textarea, #tl-hub-repo input").first: "me/model"})
    wait_for(send.is_enabled, 60, "Upload stays grey with an export and a repository")
    assert "Write the repository" not in note.inner_text()
    page.screenshot(path=str(ARTIFACTS / "export-upload-ready.png"), full_page=True)


def test_upload_follows_an_export_made_while_the_tab_was_open(app, page, tiny_model):
    """The walk's leftover: a run exported from the command line while the Export tab was open left its note saying
    "Nothing to upload yet" and Upload grey, after the tab was opened again (the run picked stayed the same, so
    nothing read the exports again)."""
    from backend.db import connect
    from backend.export.merged import export_run
    from backend.export.plan import export_folder
    from backend.runs import RunStore
    from tests.browser.test_export_choice import open_upload
    url, _ = app
    run_id = fake_run(tiny_model, name="exported elsewhere")
    page.goto(url)
    open_tab(page, "5. Export")
    open_upload(page)
    fill_held(page, {page.locator("#tl-hub-repo textarea, #tl-hub-repo input").first: "me/model"})
    send, note = page.get_by_role("button", name="Upload", exact=True), page.locator("#tl-hub-note")
    wait_for(lambda: "xport this run above first" in note.inner_text(), 60, "the note says nothing of this run")
    store = RunStore(connect())
    export_run(store, run_id, export_folder(store.get(run_id), "adapter"), adapter_only=True)  # as `app.py export`
    open_tab(page, "4. Runs")
    open_tab(page, "5. Export")
    wait_for(lambda: "newest export: the adapter" in note.inner_text(), 60, "the note still says nothing is exported")
    wait_for(send.is_enabled, 60, "Upload stays grey for a run exported elsewhere")
