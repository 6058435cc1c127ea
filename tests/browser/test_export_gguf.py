"""The Export tab in headless Chromium: a finished run becomes a checked q8_0 GGUF file, its expected size shown
before starting, the check and the Ollama commands shown after; the downloaded file is a GGUF that loads back with
transformers and gives the run's own answer."""
import pytest

from tests.browser.conftest import ARTIFACTS
from tests.browser.loop_helpers import wait_for
from tests.learned_runs import learned_adapter, learned_run

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def adapter(model_cache, tiny_model):
    return learned_adapter(model_cache, tiny_model)


def test_gguf_q8_0_is_exported_checked_and_downloaded(app, page, tiny_model, adapter, tmp_path):
    url, _ = app
    learned_run(tiny_model, adapter, name="hello")
    page.goto(url)
    page.get_by_role("tab", name="5. Export").click()
    run = page.get_by_role("combobox", name="Finished run")
    wait_for(lambda: run.input_value().startswith("hello"), 60, "the finished run is not offered")
    page.get_by_label("GGUF for llama.cpp and Ollama").check()
    formats = page.locator("#tl-gguf-format")
    formats.get_by_text("q8_0 · ").wait_for()
    assert "about half the size of f16, answers almost the same" in formats.inner_text()
    page.locator("#tl-export-sizes").get_by_text("Expected size").wait_for()
    formats.get_by_label("q8_0").check()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "export-gguf-before.png"))

    page.get_by_role("button", name="Export", exact=True).click()
    page.locator("#tl-export-status").get_by_text("Checked:").wait_for(timeout=600_000)
    assert "5 of 5 answers the same as the merged model" in page.locator("#tl-export-status").inner_text()
    commands = page.locator("#tl-ollama-commands textarea").input_value()
    assert commands == "ollama create hello -f Modelfile\nollama run hello"
    link = page.locator("#tl-download a[download=\"hello-q8_0.gguf\"]")  # its text is the size, the name is beside it
    link.wait_for()
    page.screenshot(path=str(ARTIFACTS / "export-gguf-done.png"))
    page.screenshot(path=str(ARTIFACTS / "export-gguf-done-full.png"), full_page=True)

    with page.expect_download() as download:
        link.click()
    saved = tmp_path / download.value.suggested_filename
    download.value.save_as(saved)
    data = saved.read_bytes()
    assert saved.suffix == ".gguf" and len(data) > 0 and data[:4] == b"GGUF"

    # the downloaded file loads back and answers as the run's own model (base + adapter) does
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from tests.conftest import greedy
    from tests.learned_runs import run_model
    loaded = AutoModelForCausalLM.from_pretrained(saved.parent, gguf_file=saved.name, dtype=torch.float32).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(saved.parent, gguf_file=saved.name)
    tuned, tokenizer = run_model(tiny_model, adapter)
    prompts = ["Say hello number 7."]
    assert greedy(loaded, loaded_tokenizer, prompts, 12) == greedy(tuned, tokenizer, prompts, 12)
