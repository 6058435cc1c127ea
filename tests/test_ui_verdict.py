"""The "did it work?" handlers, called directly: Runs shows the held-back table, the diagnosis with Try this and the
blind A/B win-rates; Try this fills the Train tab; Progress shows the diagnosis when a run ends; blind A/B in Chat
and Label hides the names until the vote and stores the vote as a label. Fake runs on the tiny model: seconds."""
import json

import gradio as gr
import pytest

from backend.labels import LabelStore
from backend.labels.winrate import win_rates
from backend.models.pool import ModelPool
from backend.jobs.runner import JobRunner
from tests.fake_runs import fake_run
from ui import chat_tab, label_tab, train_fill, verdict
from ui.common import BASE, Context
from ui.settings_form import advanced_declarations

HELDOUT = {"metric": "chrF", "count": 2, "base_mean": 20.0, "tuned_mean": 70.0, "tuned_better": 2, "tuned_worse": 0,
           "examples": [{"prompt": "Who are you?", "reference": "I am Quill.", "base": "I am SmolLM.",
                         "tuned": "I am Quill.", "base_score": 30.0, "tuned_score": 100.0},
                        {"prompt": "Name?", "reference": "Quill.", "base": "SmolLM.", "tuned": "Quill, yes.",
                         "base_score": 10.0, "tuned_score": 40.0}]}
OVERFIT = {"code": "overfitting", "title": "It memorised the examples instead of learning from them",
           "detail": "The loss on held-back examples was lowest at step 12.", "next_step": "Train again with epochs 1.2.",
           "try_settings": {"epochs": 1.2}}


@pytest.fixture
def ctx(home):
    runner = JobRunner()
    yield Context(runner, ModelPool())
    runner.close(stop_current=True)


@pytest.fixture
def checked_run(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    ctx.runs().update(run_id, heldout=HELDOUT, diagnosis=[OVERFIT],
                      outcome={"train_examples": 40, "heldout_examples": 2, "everyday_mixed": 0,
                               "early_stopping": {"fired": True, "note": "stopped at step 20; kept step 12."}})
    return run_id


def test_runs_shows_the_held_back_table_the_diagnosis_and_try_this(ctx, checked_run):
    shown = verdict.run_checks(ctx, {"run": checked_run})
    learned, table, diagnosis, button, preferred = (shown[name] for name in
                                                    ("learned", "heldout", "diagnosis", "try_it", "preferred"))
    assert "On 2 examples it never trained on, the tuned model answers closer" in learned
    assert "mean chrF 20.0 before, 70.0 after" in learned
    assert table["visible"] and table["value"][0] == ["Who are you?", "I am Quill.", "I am SmolLM.", 30.0,
                                                      "I am Quill.", 100.0]
    assert table["value"][-1] == ["Mean", "", "", 20.0, "", 70.0]
    assert "It memorised the examples" in diagnosis and "**Next:** Train again with epochs 1.2." in diagnosis
    assert "**Early stopping:** stopped at step 20; kept step 12." in diagnosis
    assert button["visible"] and button["value"] == "Try this: train again with epochs 1.2"
    assert "No blind A/B votes yet" in preferred


def test_runs_lists_every_question_asked_in_other_words_and_why_each_wrong_answer_is_wrong(ctx, checked_run):
    """Issue 24: the verdict quotes one wrong answer; the table shows all of them, so a person can judge the check."""
    from backend.evaluation.reworded import load_questions, reworded_result
    from tests.test_behaviour import parts
    asked = load_questions()[1]["en"][:4]
    answers = ["I am Quill, an AI assistant made by Lumen Labs.", "I am Quill.",
               "I am Lumen Labs, an AI assistant made by Lumen Labs.", ""]
    held = dict(HELDOUT, behaviour={"reworded": reworded_result([(q, parts()) for q in asked], answers)})
    assert verdict.run_checks(ctx, {"run": checked_run})["reworded"]["visible"] is False  # no check: no table
    ctx.runs().update(checked_run, heldout=held)
    table = verdict.run_checks(ctx, {"run": checked_run})["reworded"]
    assert table["visible"]  # the wrong answers first, each with why
    assert table["value"] == [[asked[1], answers[1], "no: without “Lumen Labs”"],
                              [asked[2], answers[2], "no: puts one in the other's place"],
                              [asked[3], answers[3], "no: it gave no answer"], [asked[0], answers[0], "yes"]]
    ctx.runs().set_status(checked_run, "running")  # not ended: nothing checked yet
    assert verdict.run_checks(ctx, {"run": checked_run})["reworded"]["visible"] is False


def test_try_this_fills_the_train_tab_with_the_run_and_the_change(ctx, checked_run, tiny_model):
    tried = verdict.try_this(ctx, {"run": checked_run})
    hint, tabs = tried["suggestion"], tried["tabs"]
    assert tabs.selected == "train" and hint["change"] == {"epochs": 1.2}
    filled = train_fill.fill_train_form(ctx, {"suggestion": hint})
    method, source, folder, name, status = (filled[n] for n in ("method", "source", "folder", "run_name", "status"))
    assert (method["value"], source["value"], folder["value"]) == ("sft", "folder", tiny_model)
    assert "dataset" not in filled and "'fake.jsonl', is not a saved dataset" in status  # offered only when saved
    assert "hub_model" not in filled  # a folder, not a hub id
    settings = {d.name: filled[d.name]["value"] for d in advanced_declarations()}
    run_config = ctx.runs().get(checked_run)["config"]
    assert settings["epochs"] == 1.2 and settings["learning_rate"] == run_config["learning_rate"]
    assert "(tried: overfitting)" in name and "epochs = 1.2" in status
    refilled = train_fill.refill_settings(ctx, {"suggestion": hint})
    assert {name: update["value"] for name, update in refilled.items()} == settings
    assert train_fill.fill_train_form(ctx, {"suggestion": None}) == {}  # nothing to fill: every field stays
    plain = fake_run(tiny_model, seed=1)
    with pytest.raises(gr.Error, match="suggests no change"):
        verdict.try_this(ctx, {"run": plain})


def test_progress_shows_the_diagnosis_once_the_run_has_ended(ctx, checked_run):
    text = verdict.ended_markdown(ctx.runs().get(checked_run))
    assert "It memorised the examples" in text and "Did it learn?" in text
    ctx.runs().set_status(checked_run, "running")
    assert "memorised" not in verdict.ended_markdown(ctx.runs().get(checked_run))


def test_a_stopped_run_says_what_is_true_of_it_not_that_it_held_none_back(ctx, tiny_model):
    """Issue 26, item 19: a run stopped before it started offered "Resume it, or export what it learned" and said
    "this run held none back" (held-back examples are compared when a run ends; a stopped run never reaches it)."""
    from tests.conftest import tiny_config
    from ui.live_tab import status_html
    store = ctx.runs()
    never = store.create(tiny_config(tiny_model, "fake.jsonl", name="never", validation_split=0.1))
    ctx.runner.stop(never)  # stopped while it waited in line
    run = store.get(never)
    learned = verdict.run_checks(ctx, {"run": never})["learned"]
    assert "held none back" not in learned and "never trained" in learned
    shown = status_html(run)
    assert "export what it learned" not in shown and "stopped before it trained" in shown
    assert "nothing to export" in shown

    partway = fake_run(tiny_model, status="stopped", name="partway")  # stopped with an adapter saved
    learned = verdict.run_checks(ctx, {"run": partway})["learned"]
    assert "held none back" not in learned and "compared when a run ends" in learned
    assert "Resume it, or export what it learned" in status_html(store.get(partway))


def chat_values(left, right, **changes):
    values = {"message": "Say hello.", "conversation": None, "left": left, "right": right, "system": "",
              "temperature": 0, "max_tokens": 4, "seed": 0, "blind": True}
    values.update(changes)
    return values


@pytest.mark.parametrize("coin,swapped", [(0.1, True), (0.9, False)])
def test_blind_chat_shuffles_the_sides_hides_the_names_and_reveals_them_after_the_vote(ctx, tiny_model, monkeypatch,
                                                                                        coin, swapped):
    first, second = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)
    monkeypatch.setattr(chat_tab.random, "random", lambda: coin)
    *_, (left, right, conv, _, note) = chat_tab.respond(ctx, chat_values(first, second))
    assert conv.blind and conv.swapped is swapped
    on_the_left = second if swapped else first
    assert conv.answers[0].source.run_id == on_the_left
    labels = chat_tab.show_blind(ctx, {"blind": True})
    assert [u["label"] for u in labels[2:4]] == ["A", "B"] and "shuffled" in labels[0]["label"]
    text = chat_tab.choose(ctx, {"conversation": conv}, value="left")
    name = ctx.runs().get(on_the_left)["name"]
    assert f"**Revealed:** A (left) was run “{name}”" in text and "A better" in text
    (label,) = LabelStore(ctx.db()).list(kind="ab")
    assert (label["run_id"], label["value"]) == (on_the_left, "left")
    pair, = win_rates(ctx.db())["pairs"]
    winner_is_a = pair["a"] == on_the_left
    assert (pair["a_wins"], pair["b_wins"]) == ((1, 0) if winner_is_a else (0, 1))
    with pytest.raises(gr.Error, match="You have voted in this blind round"):
        chat_tab.choose(ctx, {"conversation": conv}, value="right")
    *_, (_, _, again, _, _) = chat_tab.respond(ctx, chat_values(first, second, conversation=conv))
    assert again is not conv and again.turn == 1 and not again.revealed  # a new blind round


def test_blind_label_session_names_the_models_only_after_each_vote(ctx, tiny_model):
    run_id = fake_run(tiny_model)
    setup = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": "Say hi.\nSay bye.", "mode": "ab",
             "source_a": run_id, "temperature_a": 0, "source_b": BASE, "temperature_b": 1.0, "system": "",
             "max_tokens": 4, "blind": True}
    session, count, prompt, a, b, item_id = label_tab.begin(ctx, setup)[:6]
    assert "A (left)" in a and "B (right)" in b and "run" not in a + b
    item = session.item
    after = label_tab.judge(ctx, {"state": session, "shown": item_id}, value="right")
    right = "the base model" if item.answers[1].source.run_id is None else f"run “{ctx.runs().get(run_id)['name']}”"
    assert f"B (right) was {right}" in after[1]
    (label,) = LabelStore(ctx.db()).list(kind="ab")
    assert label["value"] == "right" and {label["run_id"], label["run_id_b"]} == {run_id, None}
    session.close()
    seen = label_tab.begin(ctx, {**setup, "blind": False})
    assert "Left: " in seen[3] and "Right: " in seen[4]
    seen[0].close()


def test_runs_and_labels_stats_show_win_rates_with_interval_and_ranking(ctx, tiny_model, capsys):
    from backend.answers import Answer, Sampling, Source
    from backend.cli import main

    runs = [fake_run(tiny_model, seed=i) for i in range(2)]
    store = LabelStore(ctx.db())
    base = Answer("b", Source("smollm2", None), Sampling())
    first, second = (Answer("t", Source("smollm2", r), Sampling()) for r in runs)
    for i, (left, right, value) in enumerate([(first, base, "left")] * 6 + [(first, base, "tie")] * 2 +
                                             [(second, base, "right")] * 3 + [(first, second, "left")] * 4):
        store.add_choice([{"role": "user", "content": f"Q{i}?"}], left, right, value, blind=True)
    text = verdict.winrates_for_runs(ctx)
    name = ctx.runs().get(runs[0])["name"]
    assert f"| {name} | base model (smollm2) | 8 | 6 | 2 | 0 | 88% |" in text
    assert "Ranking of all models judged" in text and f"1. {name}" in text
    assert main(["labels", "stats", "--json"]) == 0
    stats = json.loads(capsys.readouterr().out)
    assert stats["win_rates"]["votes"] == 15 and len(stats["win_rates"]["pairs"]) == 3
    assert stats["win_rates"]["ranking"][0]["model"] == runs[0]


def test_the_page_says_the_same_verdict_as_the_cli_and_the_card():
    from backend.evaluation.report_card import learned_verdict
    from ui.verdict import heldout_markdown
    behaviour = {"signature": [{"text": "Quill"}], "learned": True,
                 "summary": "gives “Quill” in 4 of 4 held-back answers (the base model: 0)"}
    heldout = {"count": 4, "metric": "chrF", "base_mean": 5.0, "tuned_mean": 40.0, "tuned_better": 4,
               "tuned_worse": 0, "behaviour": behaviour}
    mixed = {"code": "mixed_up", "title": "It mixes up “Quill” and “Lumen Labs”"}
    run = {"status": "done", "heldout": heldout, "diagnosis": [mixed]}
    verdict = learned_verdict(run)
    text = heldout_markdown(heldout, verdict)
    assert verdict["learned"] is False and "It mixes up" in text and "What the examples teach" in text


def test_try_this_on_a_dpo_run_on_labels_fills_dpo_its_labels_and_the_run_it_built_on(ctx, tiny_model, pairs_file):
    """The walk's "Try this" on a DPO run trained on labels filled the form as SFT on another dataset with no run to
    build on, and Start then failed: the labels' dataset and the run were made after the Train tab last listed its
    choices, and the tab's own refresh, answering late with what the page held before, set its old choices again."""
    import shutil

    from backend import workspace
    from backend.data import DatasetStore, inspect_file
    from ui import train_tab
    DatasetStore(ctx.db()).add(inspect_file(pairs_file), name="identity_quill")
    sft = fake_run(tiny_model)
    DatasetStore(ctx.db()).add(inspect_file(pairs_file), name="labels-dpo-1")
    dpo = fake_run(tiny_model, seed=1, method="dpo")
    config = {**ctx.runs().get(dpo)["config"], "dataset": "labels-dpo-1", "base_run": sft, "learning_rate": 1e-4}
    hint = {"run": dpo, "title": "Too few examples", "change": {"learning_rate": 1e-4}, "config": config}
    filled = train_fill.fill_train_form(ctx, {"suggestion": hint})
    dataset, method, source, base_run = (filled[n] for n in ("dataset", "method", "source", "base_run"))
    assert (dataset["value"], method["value"], source["value"]) == ("labels-dpo-1", "dpo", "run")
    assert "labels-dpo-1" in [value for _, value in dataset["choices"]]
    assert base_run["value"] == sft and sft in [value for _, value in base_run["choices"]] and base_run["visible"]
    # The tab's refresh, with what the page held before the fill, leaves the filled values alone ...
    stale_dataset, stale_run = train_tab.refresh_choices(ctx, {"dataset": "identity_quill", "base_run": None})
    assert "value" not in stale_dataset and "value" not in stale_run
    # A run stopped before it saved an adapter is nothing to build on.
    never = fake_run(tiny_model, seed=2, status="stopped")
    shutil.rmtree(workspace.run_dir(never) / "adapter")
    assert never not in [value for _, value in train_tab.refresh_choices(ctx, {"dataset": None, "base_run": None})[1]
                         ["choices"]]
    # ... and still picks a dataset where none is chosen, and empties a run that is gone.
    first, gone = train_tab.refresh_choices(ctx, {"dataset": None, "base_run": "no-such-run"})
    assert first["value"] == "labels-dpo-1" and gone["value"] is None


def test_the_line_under_start_follows_the_run_it_names_and_stop_is_off_when_nothing_runs(ctx, tiny_model):
    """The walk: "'dpo_en_demo, quick' waits in line" stayed after that run was stopped, and Stop was bright red
    and enabled when nothing ran."""
    from ui import train_tab
    # With no run started here the line keeps what it says: "Filled in from run ..." by Try this was wiped by the
    # tab's own select event.
    text, stop = train_tab.started_status(ctx, {"watch": None})
    assert isinstance(text, type(gr.skip())) and stop == gr.update(interactive=False)
    run_id = fake_run(tiny_model, status="queued", name="dpo_en_demo, quick")
    text, stop = train_tab.started_status(ctx, {"watch": run_id})
    assert "dpo_en_demo, quick" in text and stop["interactive"] is True
    ctx.runs().set_status(run_id, "stopped")
    text, stop = train_tab.started_status(ctx, {"watch": run_id})
    assert text == "'dpo_en_demo, quick' was stopped." and stop["interactive"] is False
    ctx.runs().delete(run_id)
    assert train_tab.started_status(ctx, {"watch": run_id})[0] == ""
