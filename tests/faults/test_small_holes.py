"""The issue's smaller holes, each shown closed: NaN and infinite settings through the command line and the web API's
handler, Gradio's cache cleaning and a removed dataset's upload, the Progress tab's reason without server paths, and
Stop acting only on the run the user watches."""
import json
import shutil
import subprocess
import sys

import gradio as gr
import pytest

from backend import workspace
from backend.db import connect
from backend.jobs.runner import JobRunner
from backend.runs import RunStore
from tests.conftest import ROOT, tiny_config
from ui import data_tab, live_tab, train_tab
from ui.common import Context


@pytest.fixture
def ctx(home):
    runner = JobRunner()  # never started: nothing trains in these tests
    yield Context(runner)


@pytest.mark.parametrize("value", ["nan", "inf", "-inf"])
def test_nan_and_infinite_settings_are_refused_by_the_command_line(chat_file, value):
    result = subprocess.run([sys.executable, "app.py", "train", "--data", str(chat_file), "--set",
                             f"learning_rate={value}"], cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert result.returncode == 1, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: "), result.stderr
    assert "learning_rate" in lines[0] or "Learning rate" in lines[0], lines[0]
    assert "finite" in lines[0] or "number" in lines[0], lines[0]
    assert RunStore(connect()).list() == []


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "nan"])
def test_nan_and_infinite_settings_are_refused_by_the_train_handler(ctx, tiny_model, chat_file, value):
    """What the web API's start event calls (ui.common.bind), so a NaN posted to the API is refused as on the page."""
    from backend.data import DatasetStore, inspect_file
    from tests.test_ui_handlers import train_form
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    for field in ("learning_rate", "lora_dropout"):
        with pytest.raises(gr.Error, match="finite|number"):
            train_tab.start_run(ctx, train_form("chats", tiny_model, **{field: value}))
    assert ctx.runs().list() == []


def test_gradio_cleans_its_cache_and_removing_a_dataset_removes_its_upload(ctx, chat_file):
    from ui.app import DELETE_CACHE, build_app
    demo = build_app(ctx.runner)
    assert demo.delete_cache == DELETE_CACHE and DELETE_CACHE[0] > 0 and DELETE_CACHE[1] > 0
    folder = workspace.uploads_dir() / "a1b2c3"  # where Gradio puts an upload (GRADIO_TEMP_DIR is the uploads folder)
    folder.mkdir(parents=True)
    upload = shutil.copy(chat_file, folder / "chat.jsonl")
    shown = data_tab.on_upload(ctx, {"upload": str(upload), "kind": "auto", "max_length": 512,
                                     "progress": lambda *a, **k: None})
    data_tab.save_dataset(ctx, {"checked": shown[0], "name": "chats"})
    assert ctx.datasets().exists("chats") and (folder / "chat.jsonl").exists()
    data_tab.do_remove(ctx, {"to_remove": "chats"})
    assert not ctx.datasets().exists("chats") and not folder.exists()
    assert chat_file.exists()  # a file given by its own path is never removed


def test_the_progress_tab_shows_the_reason_in_words_without_server_paths(ctx, tiny_model):
    store = ctx.runs()
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl"))
    where = workspace.run_dir(run_id)
    reason = (f"Training stopped with an error: [Errno 2] No such file: '{where}/checkpoints/x.bin' raised in "
              f"{sys.prefix}/lib/python3.11/site-packages/torch/serialization.py. The full details are in the run's log.")
    store.set_status(run_id, "failed", reason=reason)
    (where / "train.log").write_text(f'Traceback (most recent call last):\n  File "{ROOT}/backend/jobs/worker.py", line 3\n'
                                     f"OSError: {where}/checkpoints/x.bin\n")
    shown = live_tab.status_html(store.get(run_id))
    details = live_tab.log_tail(run_id)
    for text in (shown, details):
        assert str(workspace.home()) not in text and sys.prefix not in text and str(ROOT) not in text
    assert "failed: Training stopped with an error" in shown and "x.bin" in shown
    assert "workspace/runs/" in details and "tuneloop/backend/jobs/worker.py" in details


def test_stop_acts_only_on_the_watched_run(ctx, tiny_model):
    store = ctx.runs()
    mine = store.create(tiny_config(tiny_model, "fake.jsonl", name="mine"))
    theirs = store.create(tiny_config(tiny_model, "fake.jsonl", name="theirs"))
    train_tab.stop_run(ctx, {"watch": mine})
    assert store.get(mine)["status"] == "stopped" and store.get(theirs)["status"] == "queued"
    with pytest.raises(gr.Error, match="No run was started from this page"):
        train_tab.stop_run(ctx, {"watch": None})  # nothing watched: nothing stopped, not "the one training"
    live_tab.stop_run(ctx, {"run": theirs})  # the Progress tab stops the run it shows
    assert store.get(theirs)["status"] == "stopped"


@pytest.mark.parametrize("written", ["null", "[]", '{"answers": []}', '["Rome."]', "[1, 2, 3]"])
def test_an_everyday_answers_cache_of_the_wrong_shape_is_made_again(monkeypatch, written):
    """Valid JSON that is not one answer per prompt (null, an empty list, too few answers, numbers) is made again:
    read as it was, `null` failed every run and `[]` mixed in no answer at all, turning the forgetting guard off."""
    from backend.evaluation import rehearsal
    made = ["Rome.", "Tokyo.", "Berlin."]
    monkeypatch.setattr(rehearsal, "generate_answers", lambda model, tokenizer, prompts: made[:len(prompts)])
    path = rehearsal._cache_file("tiny|shape-test", rehearsal.REHEARSAL_PROMPTS[:3])
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(written)
    rows = rehearsal.rehearsal_examples(None, None, "tiny|shape-test", 3)
    assert [row["messages"][1]["content"] for row in rows] == made
    assert json.loads(path.read_text()) == made


def test_dataset_names_hold_no_dots_and_inspect_and_train_read_a_name_alike(tmp_path, monkeypatch, capsys):
    """A dataset name holds letters, digits, spaces, - or _, as the message says: `--name examples.jsonl` made a
    dataset that `train --data examples.jsonl` took instead of the file of that name beside it. One rule reads a
    name for both commands: a saved dataset's name wins, with a note when a file of that name is here too, and
    anything with a dot or a folder in it is a file."""
    import argparse

    from backend.cli.data import cmd_inspect
    from backend.data import DatasetStore, data_reference, sandbox
    from backend.errors import DataError
    from tests.faults import bombs
    monkeypatch.chdir(tmp_path)
    examples = bombs.normal_jsonl(tmp_path, "examples.jsonl")  # 30 rows
    refused = sandbox.add(examples, name="examples.jsonl")
    assert refused.stored is None
    assert refused.error == ("The dataset name 'examples.jsonl' holds '.'; use letters, digits, spaces, - or _ "
                             "(e.g. examples-jsonl).")
    assert sandbox.add(tmp_path / "examples.jsonl").raise_error().stored == "examples"
    dotted = tmp_path / "faq.v2.jsonl"
    dotted.write_text("".join(json.dumps(row) + "\n" for row in bombs.QA[:12]))
    assert sandbox.add(dotted).raise_error().stored == "faq-v2"  # the file's name, made a dataset name
    with pytest.raises(DataError, match="holds '.'"):
        DatasetStore(connect()).rename("faq-v2", "faq.v3")

    # A dataset kept from before (its name holds a dot) beside a file of that name: the file is meant.
    connect().execute("UPDATE datasets SET name = 'examples.jsonl' WHERE name = 'faq-v2'")
    assert data_reference("examples.jsonl")[:2] == ("file", str(examples))
    # A name that is both a dataset and a file: the dataset, with a note, for inspect as for train.
    DatasetStore(connect()).rename("examples.jsonl", "faq")
    shutil.copy(examples, tmp_path / "faq")
    what, ref, note = data_reference("faq")
    assert (what, ref) == ("dataset", "faq") and "write ./faq to use the file instead" in note
    args = argparse.Namespace(file="faq", json=False, map=None, kind=None, max_length=512)
    assert cmd_inspect(args) == 0
    shown = capsys.readouterr()
    assert "Using the saved dataset 'faq'" in shown.err and "write ./faq to use the file instead" in shown.err
    assert "12 usable" in shown.out or "12 valid" in shown.out or "12 examples" in shown.out, shown.out
    args.file = "./faq"
    assert cmd_inspect(args) == 0
    shown = capsys.readouterr()
    assert shown.err == "" and "30" in shown.out


def test_an_upload_handed_to_the_data_tab_leaves_no_temp_file(ctx, chat_file):
    """Gradio's gr.File made an empty temporary file in the uploads folder each time it handed an upload's path to a
    handler, and never removed it: one `uploads/tmpXXXXXXXX` per upload."""
    from gradio.data_classes import FileData

    from ui.app import build_app
    demo = build_app(ctx.runner)
    [upload] = [b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "tl-upload"]
    folder = workspace.uploads_dir() / "d4e5f6"  # where the upload route puts a file
    folder.mkdir(parents=True)
    path = shutil.copy(chat_file, folder / "chat.jsonl")
    before = sorted(workspace.uploads_dir().iterdir())
    for _ in range(3):
        assert upload.preprocess(FileData(path=str(path), orig_name="chat.jsonl")) == str(path)
    assert sorted(workspace.uploads_dir().iterdir()) == before


def test_temp_files_left_in_the_uploads_folder_are_removed_at_start(ctx):
    import os
    import time

    from ui.app import build_app
    uploads = workspace.uploads_dir()
    uploads.mkdir(parents=True, exist_ok=True)
    left = [uploads / "tmp4y8ipqaq", uploads / "tmpf1jqhxc9"]  # an empty one (gr.File), a partial upload
    left[0].touch()
    left[1].write_bytes(b"half an upload")
    an_hour_ago = time.time() - 3600
    for path in left:
        os.utime(path, (an_hour_ago, an_hour_ago))
    kept = [uploads / "tmpzxcvbnm1", uploads / "notes.txt", uploads / "abc123" / "tmp12345678"]
    kept[0].write_bytes(b"an upload being written now, by another app on this workspace")
    kept[1].touch()
    kept[2].parent.mkdir()
    kept[2].touch()
    for path in kept[1:]:
        os.utime(path, (an_hour_ago, an_hour_ago))
    build_app(ctx.runner)
    assert not any(path.exists() for path in left)
    assert all(path.exists() for path in kept)


def test_a_run_whose_everyday_answers_all_fail_their_check_says_the_guard_is_off(tiny_model, chat_file, tmp_path,
                                                                                 monkeypatch):
    """Every everyday answer of the base model can fail its check (cut off, a wrong fact): the run then mixes in
    none, and its log said "Mixing in 0 everyday answers ... so it keeps them", claiming a guard that was off."""
    from backend.evaluation import rehearsal
    from backend.train import run_training
    from tests.conftest import tiny_config
    monkeypatch.setattr(rehearsal, "rehearsal_examples", lambda *args, **kwargs: [])
    rows = [json.loads(line) for line in chat_file.read_text().splitlines() if line.strip()]
    said = []
    run_training(tiny_config(tiny_model, chat_file, max_steps=1, rehearsal=5), tmp_path / "run", rows, [],
                 on_metrics=lambda *a: None, on_total_steps=lambda *a: None, log=said.append)
    assert not any("Mixing in" in line for line in said)
    assert any("None of the 5 everyday answers" in line and "nothing guards against forgetting" in line
               for line in said)


def test_a_resumed_run_rehearses_the_everyday_answers_it_began_with(tiny_model, chat_file, tmp_path, monkeypatch):
    """A resumed SFT or KTO run trained without the everyday answers its first part mixed in: other rows than it began
    with, and the guard against forgetting off for the rest of the run, without a word."""
    from backend.evaluation import rehearsal
    from backend.train import run_training
    from tests.conftest import tiny_config
    rows = [json.loads(line) for line in chat_file.read_text().splitlines() if line.strip()]
    monkeypatch.setattr(rehearsal, "rehearsal_examples", lambda *args, **kwargs: rows[:3])
    said = []
    result = run_training(tiny_config(tiny_model, chat_file, max_steps=1, rehearsal=3), tmp_path / "run", rows,
                          [], on_metrics=lambda *a: None, on_total_steps=lambda *a: None, log=said.append, resume=True)
    assert any(line.startswith("Mixing in 3 everyday answers") for line in said)
    assert result["outcome"]["everyday_mixed"] == 3
