"""One check before a run starts (backend/models/fit.check_start), made by the Train tab's Start and by `app.py
train`, and one memory verdict said in the same words on the page (the catalogue table, the memory box and the advice
under it) and on the command line (`app.py models`, `app.py train`), for the same model, memory and settings. This
machine is pinned to a CPU with a chosen free memory (tests/test_models_ui.py's `machine`); nothing is downloaded."""
import html
import re

import pytest

from backend.models.catalogue import find
from backend.cli import main
from backend.data import DatasetStore, inspect_file
from backend.db import connect
from backend.errors import DataError, ModelError
from backend.models.memory import GB
from backend.runs import RunStore
from tests.test_models_ui import as_set_need, cache, ctx, form, machine, saved, verdict_cells  # noqa: F401
from ui import train_tab

MODELS = ["Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen2.5-1.5B-Instruct", "microsoft/Phi-3.5-mini-instruct"]
SET_HOW = " To train with them, add: "


def text(fragment: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", fragment)).strip()


def page_words(ctx, values) -> str:
    """What the Train tab says about the chosen model's memory: the box's sentence, then the advice's verdict."""
    memory, advice, _, _ = train_tab.refresh_fit(ctx, values)
    box = re.search(r"<b>Memory: [^<]+</b> (.*?)<div class=\"tl-layout\">", memory)[1]
    verdict = re.search(r"<b>(.*?)</b>", advice)
    return text(box) + (" " + text(verdict[1]) if verdict else "")


def models_command(capsys) -> dict[str, str]:
    """`app.py models`: each model's verdict line, by id."""
    assert main(["models"]) == 0
    lines = capsys.readouterr().out.splitlines()
    return {m[1]: lines[n + 2].strip() for n, line in enumerate(lines) if (m := re.match(r"^(\S+/\S+)  \(", line))}


@pytest.mark.parametrize("free_gb", [6, 12, 24])
def test_the_train_tab_and_app_py_models_give_one_verdict_in_the_same_words(ctx, machine, capsys, free_gb):
    machine.free = free_gb * GB
    listed = models_command(capsys)
    cells = {model: html.unescape(cell) for model, cell in verdict_cells(train_tab.catalogue_html(ctx, form())).items()}
    for model in MODELS:
        assert cells[model] == listed[model], model  # the table's verdict column, and `app.py models`
        chosen = page_words(ctx, form(hub_model=model))
        assert chosen.endswith(listed[model]), model  # the memory box and its advice, for the model picked
        if "gradient checkpointing" in chosen or "4-bit" in chosen:
            continue
        assert chosen.startswith("Fits as set"), model  # nothing assumed: said so


@pytest.mark.parametrize("model, free_gb", [("Qwen/Qwen2.5-0.5B-Instruct", 24), ("Qwen/Qwen2.5-1.5B-Instruct", 12),
                                            ("microsoft/Phi-3.5-mini-instruct", 12)])
def test_train_says_the_memory_box_words_before_it_downloads(ctx, machine, chat_file, capsys, model, free_gb):
    saved(ctx, chat_file)
    machine.free = free_gb * GB
    shown = page_words(ctx, form(dataset="chats", hub_model=model))
    code = main(["train", "--data", "chats", "--model", model])  # not downloaded; the Hub cannot be reached
    err = capsys.readouterr().err.strip().splitlines()
    said = next(line for line in err if line.startswith("Memory: "))
    assert said.removeprefix("Memory: ").split(SET_HOW)[0] == shown
    assert code == 1 and err[-1].startswith("Error: Cannot reach the Hugging Face Hub")
    assert RunStore(connect()).list() == []


def test_start_and_train_refuse_a_run_too_big_as_set_in_the_same_words(ctx, machine, chat_file, capsys):
    saved(ctx, chat_file)
    entry = find("Qwen/Qwen2.5-1.5B-Instruct")
    values = form(dataset="chats", hub_model=entry.id)
    machine.free = int(0.9 * as_set_need(ctx, entry, values))
    with pytest.raises(ModelError) as page:
        train_tab.start_run(ctx, values)
    assert main(["train", "--data", "chats", "--model", entry.id]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("Error: Not started: as set, it needs about ") and SET_HOW + "--set quantization=4bit" in err
    assert str(page.value) == err.removeprefix("Error: ").split(SET_HOW)[0] + " " + train_tab.USE_FIT_HOW
    assert RunStore(connect()).list() == [] and ctx.runs().list() == []


def test_train_refuses_data_the_method_cannot_read_before_anything_is_queued(ctx, chat_file, capsys):
    DatasetStore(connect()).add(inspect_file(chat_file), name="chats")
    assert main(["train", "--data", "chats", "--method", "dpo"]) == 1
    said = capsys.readouterr().err.strip()
    assert main(["train", "--data", str(chat_file), "--method", "kto"]) == 1
    err = capsys.readouterr().err.strip()
    assert RunStore(connect()).list() == []  # nothing queued
    assert err == (f"Error: '{chat_file}' holds conversations (SFT data), but KTO needs answers marked good or bad. "
                   "Choose SFT for this dataset, or pick a dataset of answers marked good or bad.")
    with pytest.raises(DataError) as page:
        train_tab.start_run(ctx, form(dataset="chats", source="builtin", method="dpo"))
    assert said == f"Error: {page.value}"  # the Train tab's words


def test_a_setting_out_of_range_is_named_and_one_out_of_the_usual_range_is_said_on_both_edges(ctx, machine,
                                                                                                chat_file, capsys):
    """The walk: a learning rate of 5 gave Gradio's "Value 5 is greater than maximum value 0.01." with no word of
    which box, under an "Error" over the memory box; 0.01, twenty times the usual, passed without a word."""
    saved(ctx, chat_file)
    machine.free = 24 * GB
    memory, advice, _, _ = train_tab.refresh_fit(ctx, form(dataset="chats", source="builtin", learning_rate=5.0))
    assert "Learning rate (size of each step): 5.0 is above the largest allowed value, 0.01." in text(memory)
    memory, advice, _, _ = train_tab.refresh_fit(ctx, form(dataset="chats", source="builtin", learning_rate=0.01))
    note = ("Learning rate (size of each step) is 0.01, above the usual range (up to 0.001): the loss may jump and "
            "the model forget what it knew. Lower it unless you mean it.")
    assert "Memory: Fits" in memory and note in text(advice)
    assert note not in text(train_tab.refresh_fit(ctx, form(dataset="chats", source="builtin"))[1])
    # The command line says it beside its memory line (then stops at the download: the Hub cannot be reached).
    assert main(["train", "--data", "chats", "--model", MODELS[0], "--set", "learning_rate=0.01"]) == 1
    assert f"Note: {note}" in capsys.readouterr().err.splitlines()
