"""The Train tab's own models, through its handlers (no browser): the catalogue judged for this machine before
anything downloads, "Use these settings", Start refusing what cannot fit, Download from a local stand-in for the
Hugging Face Hub (tests/hub_standin.py) with progress, and a downloaded hub model training end to end."""
import dataclasses
import html
import re
from pathlib import Path
from types import SimpleNamespace

import gradio as gr
import pytest

from backend.models import hub
from backend.models.catalogue import catalogue, find
from backend.models.chat_template import expected_note, family_name, training_template
from backend.data import DatasetStore, inspect_file
from backend.errors import ModelError
from backend.models.memory import GB, estimate_memory
from backend.models.fit import fit_verdict
from backend.models.loading import Hardware
from backend.jobs.runner import JobRunner
from tests.hub_standin import HubStandIn, closed_port
from ui import train_tab
from ui.common import Context
from ui.settings_form import form_values

CPU = Hardware("cpu", "bfloat16", "none")
TOKEN = "hf_TrainTabSeCrEt0123456789"
GATED = "google/gemma-3-1b-it"
TINY_SETTINGS = dict(max_steps=2, batch_size=2, rehearsal=0, probe=False, validation_split=0.0, max_length=64,
                     lora_r=4, lora_alpha=8)


class Progress:
    """Stands in for gr.Progress: records (fraction, description)."""

    def __init__(self):
        self.calls = []

    def __call__(self, fraction=None, desc=None, **kwargs):
        self.calls.append((fraction, desc))


@pytest.fixture
def ctx(home):
    runner = JobRunner()
    yield Context(runner)
    runner.close(stop_current=True)


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Downloads go to a fresh model cache, from nowhere unless a test serves a stand-in; no token from the machine."""
    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "PROGRESS_EVERY_S", 0.0)
    return tmp_path / "models"


@pytest.fixture
def machine(monkeypatch, cache):
    """This machine pinned to a CPU with `machine.free` bytes available, so verdicts do not depend on the host."""
    state = SimpleNamespace(free=16 * GB)
    monkeypatch.setattr("backend.models.loading.detect_hardware", lambda: CPU)
    monkeypatch.setattr("backend.models.memory.free_memory", lambda device: state.free)
    return state


@pytest.fixture
def tiny_files(tiny_model):
    return {p.name: p.read_bytes() for p in Path(tiny_model).iterdir() if p.is_file()}


def form(**changes) -> dict:
    values = form_values("quick", "sft")
    values.update(dataset=None, method="sft", source="hub", hub_model=None, folder="", base_run=None, run_name="",
                  preset="quick")
    values.update(changes)
    return values


def saved(ctx, chat_file) -> str:
    return DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")


def verdict_cells(table: str) -> dict[str, str]:
    """The verdict column of the catalogue table, by model id."""
    rows = re.findall(r'<span class="tl-id">([^<]+)</span>.*?<td class="tl-verdict [^"]+">([^<]+)</td>', table)
    return dict(rows)


def as_set_need(ctx, entry, values) -> int:
    """What a catalogue model needs with the form's settings as set (checkpointing on, as 'auto' would when short)."""
    info = train_tab.dataset_info(ctx, values["dataset"])
    config = dataclasses.replace(train_tab.form_config(values, info), model=entry.id)
    return estimate_memory(config, CPU, available=1, seq_length=train_tab.longest(info), model_cfg=entry.config).total


def test_the_catalogue_table_judges_every_model_before_anything_downloads(ctx, machine):
    machine.free = 4 * GB
    table = train_tab.catalogue_html(ctx, form())
    cells = verdict_cells(table)
    assert list(cells) == [entry.id for entry in catalogue()]
    assert all(cell.startswith(("Fits", "Cannot fit on this machine: needs about")) for cell in cells.values())
    assert cells["meta-llama/Llama-3.1-8B-Instruct"].startswith("Cannot fit on this machine")  # said in words
    assert cells["HuggingFaceTB/SmolLM2-360M-Instruct"].startswith("Fits")
    for entry in catalogue():
        assert entry.name in table and family_name(entry.template) in table
    assert table.count("not downloaded") == len(catalogue())
    assert table.count("gated: needs a token") == sum(e.gated for e in catalogue())
    assert not any(Path(hub.model_folder(e.id)).exists() for e in catalogue())


def test_the_table_follows_the_form_settings(ctx, machine):
    machine.free = 6 * GB
    entry = find("Qwen/Qwen2.5-1.5B-Instruct")
    verdicts = {}
    for quantization in ("none", "4bit"):
        values = form(quantization=quantization)
        cell = html.unescape(verdict_cells(train_tab.catalogue_html(ctx, values))[entry.id])
        verdicts[quantization] = fit_verdict(entry, train_tab.form_config(values, None), CPU, available=machine.free)
        assert cell == verdicts[quantization].message and "4-bit QLoRA" in cell  # the figure assumes it: said
    assert "quantization" in verdicts["none"].changes and "quantization" not in verdicts["4bit"].changes


def test_a_model_that_fits_only_with_changes_offers_use_these_settings(ctx, machine):
    entry = find("Qwen/Qwen2.5-1.5B-Instruct")
    values = form(hub_model=entry.id)
    machine.free = int(0.9 * as_set_need(ctx, entry, values))
    memory, advice, button, table = train_tab.refresh_fit(ctx, values)
    expected = fit_verdict(entry, train_tab.form_config(values, None), CPU, available=machine.free)
    assert expected.fits and expected.changes
    assert "Memory: Too big" in memory and button["visible"] is True
    assert expected.message.split(":")[0] in advice and 'class="tl-chosen"' in table

    *updates, accordion, memory, advice, button, _ = train_tab.use_fit_settings(ctx, values)
    applied = dict(zip(train_tab.WHAT_CHANGES, (u["value"] for u in updates)))
    assert applied == {name: getattr(expected.config, name) for name in train_tab.WHAT_CHANGES}
    assert accordion.open is True  # the Advanced settings open, showing what changed
    assert "Memory: Too big" not in memory and button["visible"] is False and advice == ""


def test_start_refuses_a_model_that_cannot_fit_with_the_reason(ctx, machine, chat_file):
    saved(ctx, chat_file)
    machine.free = 1 * GB
    with pytest.raises(ModelError, match=r"^Not started: Cannot fit on this machine: needs about .*, 1.0 GB free\."):
        train_tab.start_run(ctx, form(dataset="chats", hub_model="meta-llama/Llama-3.1-8B-Instruct"))
    entry = find("Qwen/Qwen2.5-1.5B-Instruct")
    values = form(dataset="chats", hub_model=entry.id)
    machine.free = int(0.9 * as_set_need(ctx, entry, values))
    with pytest.raises(ModelError, match=r"^Not started: as set, it needs about .* Fits with .*Use these settings"):
        train_tab.start_run(ctx, values)
    assert ctx.runs().list() == [] and not hub.model_folder(entry.id).exists()  # nothing queued, nothing fetched


def test_a_folder_too_big_as_set_is_refused_the_same_way(ctx, machine, chat_file, tiny_model):
    saved(ctx, chat_file)
    machine.free = 2 * GB
    values = form(dataset="chats", source="folder", folder=tiny_model, batch_size=512, max_length=32768)
    memory, advice, button, _ = train_tab.refresh_fit(ctx, values)
    assert "Memory: Too big" in memory and button["visible"] is True and "Fits with" in advice
    with pytest.raises(ModelError, match="Use these settings"):
        train_tab.start_run(ctx, values)


def test_the_chat_template_note_is_told_before_download_and_matches_what_training_says(ctx, machine, embedded_model):
    from tests.test_chat_templates import FAMILIES, family_tokenizer
    for family in FAMILIES:  # what the Train tab says before the download = what the run log says after it
        assert expected_note(family) == training_template(family_tokenizer(embedded_model, family)).note, family
    for entry in catalogue():
        token_box, download_button = train_tab.on_hub_model(ctx, form(hub_model=entry.id))[1:3]
        assert token_box["visible"] is entry.gated and download_button["visible"] is True
        described = html.unescape(train_tab.describe_model(ctx, form(hub_model=entry.id)))
        assert expected_note(entry.template) in described and "Not downloaded yet" in described
        assert ("Gated: accept its licence" in described) == entry.gated and f"{entry.params_b:g} billion parameters" in described
    from backend.models.loading import load_tokenizer
    builtin = train_tab.describe_model(ctx, form(source="builtin"))
    assert builtin.startswith(html.escape(training_template(load_tokenizer()).note))
    # the system prompt every example without one is trained under is said too (not hidden)
    assert "“You are a helpful AI assistant named SmolLM, trained by Hugging Face”" in html.unescape(builtin)


def test_a_gated_catalogue_model_downloads_with_a_token_then_trains_and_the_token_is_kept_nowhere(
        ctx, machine, cache, monkeypatch, tiny_files, chat_file, home):
    saved(ctx, chat_file)
    values = form(hub_model=GATED, dataset="chats", **TINY_SETTINGS)
    with HubStandIn() as standin:
        standin.add_repo(GATED, tiny_files, gated=True, token=TOKEN)
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        described, token_box, download_button, _ = train_tab.on_hub_model(ctx, values)
        assert token_box["visible"] is True and download_button["visible"] is True
        assert "Gated: accept its licence" in described
        with pytest.raises(gr.Error, match=r"not downloaded yet: press Download \(1.9 GB\) first"):
            train_tab.start_run(ctx, values)
        refused = train_tab.download(ctx, {**values, "token": "", "progress": Progress()})
        assert refused[0].startswith("**Not downloaded.** ") and "gated model: accept its licence" in refused[0]

        progress = Progress()
        status, token_box, download_button, described = train_tab.download(
            ctx, {**values, "token": f" {TOKEN} ", "progress": progress})
    total = sum(len(data) for data in tiny_files.values())
    assert re.search(r"Downloaded \*\*google/gemma-3-1b-it\*\* \(\d+ MB of \d+ MB, [\d.]+ MB/s\)", status)
    texts = [desc for _, desc in progress.calls[1:]]
    assert texts and all(re.fullmatch(r"\d+ MB of \d+ MB, [\d.]+ MB/s", t) for t in texts)
    assert progress.calls[-1][0] == 1.0 and f"of {total / 1024 ** 2:,.0f} MB" in texts[-1]
    assert token_box == {"__type__": "update", "value": "", "visible": False}  # the box is emptied
    assert hub.pulled(GATED) == cache / "google--gemma-3-1b-it"
    assert "Downloaded: it lies in" in described and "Chat template: chatml" in described  # from the tokenizer now
    assert verdict_cells(train_tab.catalogue_html(ctx, values))  # still judged
    assert "<td>downloaded</td>" in train_tab.catalogue_html(ctx, values)
    assert train_tab.on_hub_model(ctx, values)[2]["visible"] is False  # no Download button any more

    monkeypatch.setenv("HF_ENDPOINT", closed_port())  # training needs no network: the model is in the cache
    _, run_id, _, memory = train_tab.start_run(ctx, values)
    run = ctx.runner.wait(run_id, timeout=600)
    assert run["status"] == "done", run.get("reason")
    assert ctx.runs().config(run_id).model == GATED and run["final_metrics"]["steps"] == 2
    log = (home / "runs" / run_id / "train.log").read_text()
    assert "Chat template: chatml" in log  # the run log says what it did with the template
    written = [p for root in (home, cache) for p in root.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]


def test_a_typed_hub_id_is_downloaded_before_it_is_judged_and_started(ctx, cache, monkeypatch, tiny_files, chat_file):
    saved(ctx, chat_file)
    values = form(hub_model=" org/tiny ", dataset="chats", **TINY_SETTINGS)
    assert "not in Tuneloop's list" in train_tab.describe_model(ctx, values)
    assert "known once it is downloaded" in train_tab.refresh_fit(ctx, values)[0]
    with pytest.raises(gr.Error, match="'org/tiny' is not downloaded yet: press Download first"):
        train_tab.start_run(ctx, values)
    offline = train_tab.download(ctx, {**values, "token": "", "progress": Progress()})  # said next to the button
    assert offline[0] == "**Not downloaded.** Cannot reach the Hugging Face Hub: give a model folder instead."
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        assert train_tab.on_hub_model(ctx, values)[1]["visible"] is True  # an id not in the list may be gated
        train_tab.download(ctx, {**values, "token": "", "progress": Progress()})
    assert "Memory: Fits" in train_tab.refresh_fit(ctx, values)[0]  # judged by its own config.json now
    assert "not a Hugging Face model id" in train_tab.refresh_fit(ctx, form(hub_model="tiny"))[0]
    with pytest.raises(ModelError, match="'tiny' is not a Hugging Face model id"):
        train_tab.start_run(ctx, form(hub_model="tiny", dataset="chats"))
