"""The Export tab's handlers, called directly: expected sizes before starting, a checked GGUF offered for download
with its Modelfile and the Ollama commands, a file that fails its check not offered, an architecture GGUF cannot
hold refused before any work, and the Hub upload (local stand-in) whose token is found nowhere afterwards."""
import logging
import zipfile
from pathlib import Path

import gradio as gr
import pytest

from backend import workspace
from backend.export.plan import FORMAT_WORDS, expected_sizes, latest_export
from backend.export.hub_upload import UNREACHABLE
from backend.models.pool import ModelPool
from backend.jobs.runner import JobRunner
from tests.fake_runs import fake_run
from tests.learned_runs import learned_adapter, learned_run
from tests.test_hub_upload import TOKEN, StandInHub, _closed_port
from ui import export_tab
from ui.common import Context, plain_errors


class Progress:
    """Stands in for gr.Progress: records (fraction, text)."""

    def __init__(self):
        self.seen = []

    def __call__(self, fraction, desc=None, **kwargs):
        self.seen.append((fraction, desc))


@pytest.fixture
def ctx(home):
    runner = JobRunner()
    yield Context(runner, ModelPool())
    runner.close(stop_current=True)


@pytest.fixture(scope="module")
def adapter(model_cache, tiny_model):
    return learned_adapter(model_cache, tiny_model)


def call(handler, ctx, **values):
    """As the page calls it: backend errors become gr.Error with their sentence."""
    return plain_errors(handler)(ctx, values)


def files_holding(folder, secret: str) -> list:
    return [p for p in folder.rglob("*") if p.is_file() and secret.encode() in p.read_bytes()]


def test_gguf_q8_0_is_offered_after_its_check_with_modelfile_and_commands(ctx, tiny_model, adapter):
    run_id = learned_run(tiny_model, adapter, name="hello")
    sizes, formats = call(export_tab.describe, ctx, run=run_id, what="gguf", quant="q8_0")
    assert "**Expected size:** merged model" in sizes and "GGUF f16" in sizes and "q4_0" in sizes
    assert formats["visible"] is True and formats["value"] == "q8_0"
    labels = dict((value, label) for label, value in formats["choices"])
    assert labels["q8_0"].startswith("q8_0 · ") and labels["q8_0"].endswith(FORMAT_WORDS["q8_0"])

    progress = Progress()
    download, status, commands, folder, card, note, send = call(export_tab.do_export, ctx, run=run_id, what="gguf",
                                                          quant="q8_0", repo="me/hello", progress=progress)
    gguf, bundle = map(Path, download)
    assert gguf.parent.parent.parent == workspace.exports_dir() and str(gguf.parent) == folder
    assert gguf.name == "hello-q8_0.gguf" and gguf.read_bytes()[:4] == b"GGUF"
    assert zipfile.ZipFile(bundle).namelist() == ["Modelfile", "README.md"]
    assert "FROM ./hello-q8_0.gguf" in zipfile.ZipFile(bundle).read("Modelfile").decode()
    assert status.startswith("**Checked:** 5 of 5 answers the same as the merged model")
    assert commands["visible"] and commands["value"] == "ollama create hello -f Modelfile\nollama run hello"
    assert "## GGUF check" in card and "| q8_0 |" in card
    assert "**GGUF q8_0**" in note and send["interactive"] is True
    expected = expected_sizes(ctx.runs(), run_id).gguf["q8_0"]  # the size shown before starting
    assert abs(gguf.stat().st_size - expected) < 0.005 * expected
    fractions = [f for f, _ in progress.seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    words = " ".join(text for _, text in progress.seen)
    for step in ("Loading the base model", "Writing q8_0 tensors", "Comparing the q8_0 file", "Zipping"):
        assert step in words


def test_a_file_that_fails_its_check_is_not_offered(ctx, tiny_model, monkeypatch):
    import backend.export.gguf as gguf_export
    monkeypatch.setattr(gguf_export, "_permute", lambda weights, n_head, n_head_kv=None: weights)  # a converter bug
    run_id = fake_run(tiny_model)
    download, status, commands, folder, card, note, send = call(export_tab.do_export, ctx, run=run_id, what="gguf",
                                                                quant="f16", progress=Progress())
    assert download is None and folder == "" and not commands["visible"]
    assert status.startswith("**Not offered:** The f16 GGUF file was not kept: f16 logits differ")
    assert list(workspace.exports_dir().rglob("*.gguf")) == [] and latest_export(run_id) is None
    assert (note, send["interactive"]) == (export_tab.NOT_EXPORTED, False)  # nothing to upload


def gpt2_run(folder: Path) -> str:
    """A finished run on a tiny GPT-2 (an architecture GGUF export does not write), with a LoRA adapter."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import GPT2Config, GPT2LMHeadModel

    from backend.db import connect
    from backend.models.loading import load_tokenizer
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=32, n_layer=1, n_head=2, n_positions=128,
                                       bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    store = RunStore(connect())
    run_id = store.create(tiny_config(str(folder), "fake.jsonl"))
    store.set_status(run_id, "done")
    get_peft_model(model, LoraConfig(r=2, target_modules=["c_attn"], fan_in_fan_out=True)).save_pretrained(
        str(workspace.run_dir(run_id) / "adapter"))
    return run_id


def test_an_architecture_gguf_cannot_hold_is_refused_before_any_work(ctx, tmp_path, monkeypatch):
    import backend.export.merged

    run_id = gpt2_run(tmp_path / "tiny-gpt2")
    merged = []
    monkeypatch.setattr(backend.export.merged, "_merge", lambda *args: merged.append(args))

    sizes, formats = call(export_tab.describe, ctx, run=run_id, what="gguf", quant="q8_0")
    assert "GGUF: not possible for this run. GGUF export supports Llama, Mistral, Qwen2/Qwen2.5 and SmolLM" in sizes
    assert "GPT2LMHeadModel" in sizes and formats["visible"] is False
    with pytest.raises(gr.Error) as caught:
        call(export_tab.do_export, ctx, run=run_id, what="gguf", quant="q8_0", progress=Progress())
    assert caught.value.message.startswith("GGUF export supports Llama, Mistral, Qwen2/Qwen2.5 and SmolLM")
    assert "this model is GPT2LMHeadModel." in caught.value.message
    assert merged == [] and not any(workspace.exports_dir().iterdir())


def test_merged_and_adapter_exports_are_zipped_under_exports(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    download, status, commands, folder, card, note, send = call(export_tab.do_export, ctx, run=run_id,
                                                                what="adapter", repo="me/model", progress=Progress())
    assert len(download) == 1 and download[0].endswith(".zip") and download[0].startswith(str(workspace.exports_dir()))
    assert "adapter_model.safetensors" in zipfile.ZipFile(download[0]).namelist()
    assert status.startswith("Exported the adapter") and not commands["visible"]
    assert "Method: SFT" in card and "**adapter**" in note and send["interactive"] is True
    with pytest.raises(gr.Error, match="Pick a finished run first"):
        call(export_tab.do_export, ctx, run=None, what="merged", progress=Progress())


def test_the_run_list_offers_finished_runs_first_and_never_errs_on_its_choice(ctx, tiny_model):
    """Issue 26, item 6: a run stopped before it saved an adapter was listed first and picked, and its error
    toast met a user who had done nothing."""
    from tests.conftest import tiny_config
    older = fake_run(tiny_model, name="older done")
    stopped_with_adapter = fake_run(tiny_model, status="stopped", name="stopped later")
    newest = fake_run(tiny_model, name="newest done")
    store = ctx.runs()
    never_trained = store.create(tiny_config(tiny_model, "fake.jsonl", name="stopped early"))
    store.set_status(never_trained, "stopped")

    listed, button, sizes = call(export_tab.refresh, ctx, run=None)
    assert [value for _, value in listed["choices"]] == [newest, older, stopped_with_adapter]
    assert listed["value"] == newest and button["interactive"] is True
    # The walk: "Pick a finished run first" stayed beside the run just picked while its sizes were worked out.
    assert sizes == export_tab.SIZING
    kept, _, sizes = call(export_tab.refresh, ctx, run=stopped_with_adapter)
    assert kept["value"] == stopped_with_adapter and sizes == gr.skip()  # its sizes are shown already
    assert call(export_tab.refresh, ctx, run=never_trained)[0]["value"] == newest

    sizes, formats = call(export_tab.describe, ctx, run=never_trained, what="merged", quant="q8_0")
    assert "has no finished adapter yet" in sizes and formats["visible"] is False


@pytest.fixture
def hub():
    server = StandInHub(TOKEN)
    yield server
    server.close()


def test_upload_sends_the_newest_export_privately_and_the_token_is_kept_nowhere(ctx, tiny_model, hub, home,
                                                                                monkeypatch, caplog):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    run_id = fake_run(tiny_model)
    with pytest.raises(gr.Error, match="no export yet"):
        call(export_tab.upload, ctx, run=run_id, repo="me/hello", token=TOKEN, private=True, progress=Progress())
    call(export_tab.do_export, ctx, run=run_id, what="adapter", progress=Progress())

    progress = Progress()
    status, token_box = call(export_tab.upload, ctx, run=run_id, repo="me/hello", token=TOKEN, private=True,
                             progress=progress)
    assert f"({hub.endpoint}/me/hello)" in status and "private" in status
    assert token_box["value"] == ""  # the box is emptied once the upload is done
    repo = hub.repos["me/hello"]
    assert repo["private"] is True
    assert {"README.md", "adapter_model.safetensors", "adapter_config.json"} <= set(repo["files"])
    assert progress.seen[-1][0] == 1.0

    for place in (home, workspace.run_dir(run_id), workspace.exports_dir()):  # home: the database and all
        assert files_holding(place, TOKEN) == []
    assert TOKEN not in caplog.text and TOKEN not in status


def test_upload_offline_or_refused_is_one_sentence(ctx, tiny_model, hub, monkeypatch):
    run_id = fake_run(tiny_model)
    call(export_tab.do_export, ctx, run=run_id, what="adapter", progress=Progress())
    monkeypatch.setenv("HF_ENDPOINT", f"http://127.0.0.1:{_closed_port()}")
    with pytest.raises(gr.Error) as caught:
        call(export_tab.upload, ctx, run=run_id, repo="me/hello", token=TOKEN, private=True, progress=Progress())
    assert caught.value.message == UNREACHABLE
    monkeypatch.setenv("HF_ENDPOINT", hub.endpoint)
    with pytest.raises(gr.Error, match="refused the token") as caught:
        call(export_tab.upload, ctx, run=run_id, repo="me/hello", token="hf_not_the_right_one", private=True,
             progress=Progress())
    assert "hf_not_the_right_one" not in caught.value.message
    with pytest.raises(gr.Error, match="Give the repository"):
        call(export_tab.upload, ctx, run=run_id, repo=" ", token=TOKEN, private=True, progress=Progress())


def test_sizes_are_named_as_the_download_box_names_them():
    """Issue 26, item 20: "470 MB zipped" beside the download box's "448.7 MB", GGUF "145 MB" beside "138.1 MB".
    Gradio's file box divides by 1024 and keeps one decimal; so does every size the app names."""
    from backend.export.plan import size_text
    assert size_text(470_500_000) == "448.7 MB" and size_text(144_800_000) == "138.1 MB"
    assert (size_text(19_800), size_text(1_500_000_000), size_text(2**20), size_text(512)) == \
        ("19.3 KB", "1.4 GB", "1.0 MB", "512 B")


def test_with_no_finished_run_export_is_disabled_and_says_why(ctx):
    listed, button, sizes = call(export_tab.refresh, ctx, run=None)
    assert listed["choices"] == [] and listed["value"] is None and button["interactive"] is False
    assert sizes == export_tab.NO_RUN
    sizes, _ = call(export_tab.describe, ctx, run=None, what="merged", quant="q8_0")
    assert sizes == export_tab.NO_RUN


def test_what_an_export_showed_goes_when_another_run_or_format_is_picked(ctx):
    """Issue 26, item 12: the previous run's "Checked: 5 of 5" stayed on the page while another run was picked."""
    exported = ("run-a", "gguf", "q8_0")
    same = call(export_tab.clear_other, ctx, run="run-a", what="gguf", quant="q8_0", exported=exported)
    assert same == (gr.skip(),) * 5  # the export shown is the one picked: kept
    for picked in [dict(run="run-b", what="gguf", quant="q8_0"), dict(run="run-a", what="gguf", quant="q4_0"),
                   dict(run="run-a", what="merged", quant="q8_0")]:
        download, status, commands, folder, card = call(export_tab.clear_other, ctx, exported=exported, **picked)
        assert (download, status, folder, card) == (None, "", "", "") and commands["visible"] is False, picked
    # the format radio keeps its value while another kind is picked: the adapter exported is still the one shown
    assert call(export_tab.clear_other, ctx, run="r", what="adapter", quant="f16",
                exported=("r", "adapter", None))[1] == gr.skip()


def test_upload_is_greyed_until_the_run_picked_has_an_export(ctx, tiny_model):
    """The walk (issue 26 follow-up): Upload was enabled with nothing exported, and its click answered with an error.
    Where it is grey, the note above it says what to do first."""
    note, send = call(export_tab.upload_ready, ctx, run=None, repo="me/model")
    assert (note, send["interactive"]) == (export_tab.NOTHING_PICKED, False)
    run_id = fake_run(tiny_model)
    note, send = call(export_tab.upload_ready, ctx, run=run_id, repo="me/model")
    assert send["interactive"] is False and "export this run above first" in note
    *_, note, send = call(export_tab.do_export, ctx, run=run_id, what="adapter", repo="me/model", progress=Progress())
    assert send["interactive"] is True and "**adapter**" in note and export_tab.NO_REPO not in note
    assert call(export_tab.upload_ready, ctx, run=run_id, repo="me/model") == (note, send)  # as the run is picked again
    assert call(export_tab.upload_ready, ctx, run=fake_run(tiny_model, seed=1), repo="me/model")[1]["interactive"] is False


def test_upload_is_greyed_until_the_repository_is_given(ctx, tiny_model):
    """The walk's leftover: with an export and the Repository box empty, Upload was enabled and its click answered
    "Give the repository to upload to". It is grey now, and the note says to write it; blanks are not a name."""
    run_id = fake_run(tiny_model)
    *_, note, send = call(export_tab.do_export, ctx, run=run_id, what="adapter", repo="", progress=Progress())
    assert send["interactive"] is False and note.endswith(export_tab.NO_REPO) and "**adapter**" in note
    for blank in (None, "", "   "):
        note, send = call(export_tab.upload_ready, ctx, run=run_id, repo=blank)
        assert send["interactive"] is False and export_tab.NO_REPO in note
    note, send = call(export_tab.upload_ready, ctx, run=run_id, repo=" me/model ")
    assert send["interactive"] is True and export_tab.NO_REPO not in note
