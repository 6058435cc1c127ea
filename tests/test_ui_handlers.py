"""The tabs' handlers, called directly as plain functions of (context, values): what a click does, without a
browser. Tiny model and fake runs: seconds. The browser tests cover the same paths end to end."""
import gradio as gr
import pytest

from backend.data import DatasetStore, inspect_file
from backend.errors import DataError, RunStateError
from backend.labels import LabelStore
from backend.model_pool import ModelPool
from backend.runner import JobRunner
from tests.fake_runs import fake_run
from ui import chat_tab, data_tab, label_tab, runs_tab, train_tab
from ui.common import BASE, Context
from ui.settings_form import form_values


class Progress:
    def __call__(self, *args, **kwargs):
        pass


@pytest.fixture
def ctx(home):
    runner = JobRunner()
    yield Context(runner, ModelPool())
    runner.close(stop_current=True)


def train_form(dataset: str, model_folder: str, **changes) -> dict:
    values = form_values("quick", "sft")
    values.update(max_steps=1, batch_size=2, keep_everyday=0, probe=False, validation_split=0.0, max_length=64)
    values.update(dataset=dataset, method="sft", source="folder", folder=model_folder, base_run=None, run_name="",
                  preset="quick")
    values.update(changes)
    return values


def test_start_queues_the_run_the_form_describes_and_stop_acts_on_it(ctx, tiny_model, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    status, run_id, tabs, memory = train_tab.start_run(ctx, train_form("chats", tiny_model))
    assert "started" in status or "waits in line" in status
    assert tabs.selected == "live" and "Memory: Fits" in memory
    config = ctx.runs().config(run_id)
    assert (config.dataset, config.model, config.max_steps, config.name) == ("chats", tiny_model, 1, "chats, quick")
    assert "Stopping 'chats, quick'" in train_tab.stop_run(ctx, {"watch": run_id}) or \
        ctx.runs().get(run_id)["status"] == "done"  # a one-step run may finish before the click
    with pytest.raises(gr.Error, match="No run was started from this page"):
        train_tab.stop_run(ctx, {"watch": None})


def test_start_refuses_in_words_naming_the_box(ctx, tiny_model, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    with pytest.raises(gr.Error, match=r"Learning rate \(size of each step\): 5.0 is above"):
        train_tab.start_run(ctx, train_form("chats", tiny_model, learning_rate=5.0))
    with pytest.raises(DataError, match="'chats' holds conversations .SFT data., but DPO needs preference pairs"):
        train_tab.start_run(ctx, train_form("chats", tiny_model, method="dpo"))
    with pytest.raises(gr.Error, match="Pick a dataset first"):
        train_tab.start_run(ctx, train_form("", tiny_model))
    assert ctx.runs().list() == []


def test_a_memory_problem_is_shown_in_the_box_not_raised(ctx, chat_file):
    DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
    html = train_tab.check_memory(ctx, train_form("chats", "/no/such/folder"))
    assert "tl-too_big" in html and "No model folder at &#x27;/no/such/folder&#x27;" in html


def test_chat_streams_both_sides_then_every_judgement_is_saved(ctx, tiny_model):
    other, run_id = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)  # the random base says only newlines
    values = {"message": "Say hello.", "conversation": None, "left": other, "right": run_id, "system": "",
              "temperature": 0, "max_tokens": 6, "seed": 0}
    steps = list(chat_tab.respond(ctx, values))
    left, right, conv, _, note = steps[-1]
    assert len(steps) >= 3  # the user's turn, tokens, the end
    assert note.startswith("Both have answered (temperature 0, at most 6 tokens, seed ")  # what each label records
    assert left[-1]["role"] == right[-1]["role"] == "assistant" and left[-1]["content"] != right[-1]["content"]
    assert "👍 good for the right answer" in chat_tab.thumb(ctx, {"conversation": conv}, side=1, value="up")
    assert "left answer better" in chat_tab.choose(ctx, {"conversation": conv}, value="left")
    chat_tab.save_correction(ctx, {"conversation": conv, "editing": 0, "corrected": "Hello there."})
    with pytest.raises(gr.Error, match="You corrected an answer in this turn"):
        chat_tab.choose(ctx, {"conversation": conv}, value="right")
    labels = LabelStore(ctx.db()).list()
    assert [(label["kind"], label["run_id"]) for label in labels] == [("thumb", run_id), ("ab", other), ("edit", other)]
    assert labels[1]["run_id_b"] == run_id and labels[0]["settings"]["temperature"] == 0


def test_chat_refuses_to_judge_before_an_answer(ctx):
    with pytest.raises(gr.Error, match="Send a message first"):
        chat_tab.thumb(ctx, {"conversation": None}, side=0, value="up")


def test_label_session_judges_undoes_and_refuses_kto_with_one_side_only(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    setup = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": "Say hi.\nSay bye.\nSay yes.",
             "mode": "thumb", "source_a": run_id, "temperature_a": 0, "source_b": BASE, "temperature_b": 1.0,
             "system": "", "max_tokens": 4}
    shown = label_tab.begin(ctx, setup)
    session, count, prompt, answer, _, item_id = shown[:6]
    assert "Say hi." in prompt and item_id and "0 judged" in count
    after = label_tab.judge(ctx, {"state": session, "shown": item_id}, value="up")
    assert "1 judged" in after[1] and "Say bye." in after[2]
    assert label_tab.judge(ctx, {"state": session, "shown": item_id}, value="up") == label_tab.NOTHING  # twice
    undone = label_tab.undo_last(ctx, {"state": session, "shown": after[5]})
    assert "Took back your last judgement (👍 good)" in undone[1] and "Say hi." in undone[2]
    label_tab.judge(ctx, {"state": session, "shown": undone[5]}, value="up")
    with pytest.raises(DataError, match="KTO needs answers marked good and answers marked bad"):  # a sentence on screen
        label_tab.train(ctx, {"preset": "quick"}, kind="kto")
    assert ctx.runs().list()[0]["id"] == run_id  # nothing queued
    session.close()


def test_data_upload_save_and_remove(ctx, tmp_path):
    csv = tmp_path / "qa.csv"
    csv.write_text("question,answer\n" + "".join(f"What is {i}?,It is {i}.\n" for i in range(30)) + "Empty?,\n")
    shown = data_tab.on_upload(ctx, {"upload": str(csv), "kind": "auto", "max_length": 512, "progress": Progress()})
    checked = shown[0]  # the sandbox's Inspection: a report with a preview of the examples
    assert checked.report.valid_rows == 30 and checked.report.invalid_rows == 1
    assert "Found: supervised fine-tuning" in shown[1]
    saved = data_tab.save_dataset(ctx, {"checked": checked, "name": "qa"})
    assert "Saved as **qa**" in saved[0] and ctx.datasets().exists("qa")
    data_tab.do_remove(ctx, {"to_remove": "qa"})
    assert not ctx.datasets().exists("qa")


def test_runs_tab_reruns_and_will_not_delete_an_active_run(ctx, tiny_model):
    done = fake_run(tiny_model)
    waiting = fake_run(tiny_model, status="queued")
    with pytest.raises(RunStateError, match="training or waiting"):
        runs_tab.do_delete(ctx, {"run": waiting, "other": None})
    shown = runs_tab.show(ctx, {"run": done, "other": None, "log_y": False})
    assert shown[-1].startswith("python app.py train --data fake.jsonl")
    runs_tab.do_delete(ctx, {"run": done, "other": None})
    assert [r["id"] for r in ctx.runs().list()] == [waiting]
