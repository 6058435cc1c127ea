"""The Export tab after one export (issue 26, item 12): the previous run's "Checked: 5 of 5" stayed while another
run was picked and exported. What an export showed (status, download, folder, model card) goes as soon as another
run or another kind of export is picked."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import open_tab, wait_for
from tests.fake_runs import fake_run

pytestmark = pytest.mark.browser


def shown(page) -> dict:
    return {"status": page.locator("#tl-export-status").inner_text().strip(),
            "downloads": page.locator("#tl-download a[download]").count(),
            "folder": page.locator("#tl-export-folder textarea").input_value(),
            "card": page.locator("#tl-model-card").inner_text().strip()}


def export_adapter(page):
    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("#tl-export-status").get_by_text("zipped").wait_for()
    page.locator("#tl-download a[download]").first.wait_for()


def test_another_run_or_kind_clears_what_the_last_export_showed(app, page, tiny_model):
    url, _ = app
    fake_run(tiny_model, name="first run")
    fake_run(tiny_model, seed=1, name="second run")
    page.goto(url)
    open_tab(page, "5. Export")
    run = page.get_by_role("combobox", name="Finished run")
    wait_for(lambda: run.input_value().startswith("second run"), 120, "the newest finished run is not picked")
    page.locator("#tl-export-sizes").get_by_text("Expected size").wait_for()
    page.get_by_label("Adapter only").check()
    export_adapter(page)

    def exported(now: dict) -> bool:
        return now["downloads"] == 1 and "/exports/" in now["folder"] and "Model card" in now["card"]
    # The status says "zipped" while the model card's box may still show the export's timer ("0.1s"): on a loaded
    # machine it was read then, so the test waits for the whole export to show.
    wait_for(lambda: exported(shown(page)), 60, f"the export does not show all it made: {shown(page)}")

    run.click()
    page.get_by_role("option").filter(has_text="first run").click()
    wait_for(lambda: shown(page) == {"status": "", "downloads": 0, "folder": "", "card": ""}, 60,
             f"the second run's export still shows beside the first run: {shown(page)}")

    export_adapter(page)
    page.get_by_label("Merged model").check()
    wait_for(lambda: shown(page)["status"] == "" and shown(page)["downloads"] == 0, 60,
             f"the adapter's export still shows with 'Merged model' picked: {shown(page)}")
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-cleared.png"), full_page=True)
