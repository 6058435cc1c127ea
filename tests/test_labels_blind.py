"""Issue 26 follow-ups: a win-rate counts only choices made blind (Chat's Blind A/B, the Label tab's Blind box), and
every place that shows one (Runs tab, Team tab, `labels stats` and its --json) says in the same words how many choices
were left out; choices from before the app recorded blindness count as unknown and are left out too."""
import json

import pytest

from backend import db as database
from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels import LabelStore
from backend.labels.winrate import win_rates
from tests.test_cli import app
from ui import chat_tab, team, verdict
from ui.common import BASE, Context

ASK = [{"role": "user", "content": "Who are you?"}]
LEFT_OUT = ("Left out of the win-rates, which count only blind votes: 1 A/B choice made with the models' names "
            "shown and 2 A/B choices with no record of whether the names were hidden (given before the app "
            "recorded it).")


def base(text="I am SmolLM.", **sampling):
    return Answer(text, Source("smollm2", None), Sampling(**sampling))


def tuned(text="I am Quill.", run_id="run-1", **sampling):
    return Answer(text, Source("smollm2", run_id), Sampling(**sampling))


def test_only_blind_choices_count_and_the_page_and_the_command_line_say_what_was_left_out():
    """A Chat choice made with Blind A/B unchecked showed in Runs as 'Blind A/B votes: 1 vote, 100%'."""
    store = LabelStore(connect())
    store.add_choice(ASK, base(), tuned(), "right", blind=True)
    store.add_choice(ASK, tuned(), base(), "right", blind=True)  # the base model wins this one
    store.add_choice(ASK, base(), tuned(), "right", blind=False)  # the names were shown: left out
    store.add_choice(ASK, base(), tuned(), "right")  # not recorded: left out
    store.add_choice(ASK, base(), tuned(), "tie")  # not recorded: left out
    assert [label["blind"] for label in store.list(kind="ab")] == [True, True, False, None, None]

    report = win_rates(store.db)
    (pair,) = report["pairs"]
    assert (pair["votes"], pair["a_wins"], pair["b_wins"]) == (2, 1, 1)
    assert (report["votes"], report["not_blind_votes"], report["blind_unknown_votes"]) == (2, 1, 2)
    assert report["left_out"] == LEFT_OUT

    runs_tab = verdict.winrate_markdown(report)
    assert "| run-1 | base model (smollm2) | 2 | 1 | 0 | 1 | 50% |" in runs_tab
    assert runs_tab.endswith(LEFT_OUT.replace("'", "&#x27;"))  # escaped for the page, read as the same words

    text = app("labels", "stats").stdout
    assert "over 2 blind A/B votes (0 ties)" in text and LEFT_OUT in text, text
    stats = json.loads(app("labels", "stats", "--json").stdout)
    assert (stats["win_rates"]["not_blind_votes"], stats["win_rates"]["blind_unknown_votes"]) == (1, 2)
    assert stats["win_rates"]["left_out"] == LEFT_OUT and stats["win_rates"]["votes"] == 2
    assert stats["win_rates_by_labeller"]["owner"]["left_out"] == LEFT_OUT


def test_with_no_blind_choice_the_runs_tab_shows_no_win_rate_and_says_why():
    store = LabelStore(connect())
    store.add_choice(ASK, base(), tuned(), "right", blind=False)
    shown = verdict.winrate_markdown(win_rates(store.db))
    assert "No blind A/B votes yet" in shown and "100%" not in shown and "| run-1 |" not in shown
    assert "1 A/B choice made with the models&#x27; names shown" in shown
    text = app("labels", "stats").stdout
    assert "Win-rate of" not in text and text.count("1 A/B choice made with the models' names shown") == 1, text


def test_the_team_tab_counts_each_labellers_blind_votes_only():
    store = LabelStore(connect())
    for name in ("bea", "sam"):
        store.add_choice(ASK, base(), tuned(), "right", labeller=name, blind=True)
    store.add_choice(ASK, base(), tuned(), "left", labeller="sam", blind=False)
    text = team.agreement_text(Context(None))
    assert "Blind A/B win-rates, everyone's and by labeller" in text
    assert "| run-1 | base model (smollm2) | 2 | 2 | 0 | 0 | 100% |" in text  # everyone: the two blind votes
    assert "| run-1 | base model (smollm2) | 1 | 1 | 0 | 0 | 100% |" in text  # bea's and sam's
    assert text.count("1 A/B choice made with the models&#x27; names shown") == 2  # everyone's and sam's


def test_an_older_database_keeps_its_choices_as_not_known_to_be_blind(tmp_path, monkeypatch):
    path = tmp_path / "old.db"
    before = [m for m in database.MIGRATIONS if m.__name__ != "add_label_blind"]
    monkeypatch.setattr(database, "MIGRATIONS", before)
    old = connect(path)
    assert "blind" not in old["labels"].columns_dict
    old["labels"].insert({"kind": "ab", "value": "right", "prompt": json.dumps(ASK), "answer": "I am SmolLM.",
                          "model": "smollm2", "answer_b": "I am Quill.", "model_b": "smollm2", "run_id_b": "run-1",
                          "created": "2026-11-30T10:00:00.000+00:00", "undone": 0})
    old.conn.close()
    monkeypatch.undo()

    db = connect(path)
    assert db["labels"].columns_dict["blind"] is int
    (label,) = LabelStore(db).list(kind="ab")
    assert label["blind"] is None
    report = win_rates(db)
    assert report["pairs"] == [] and report["blind_unknown_votes"] == 1
    assert "1 A/B choice with no record of whether the names were hidden" in report["left_out"]


def test_chat_records_whether_the_names_were_hidden(home):
    ctx = Context(None)
    shown = chat_tab.Conversation(prompts=[ASK, ASK], answers=[base(), tuned()])
    text = chat_tab.choose(ctx, {"conversation": shown}, value="right")
    assert "does not count in the win-rates" in text and "tick **Blind A/B**" in text
    hidden = chat_tab.Conversation(prompts=[ASK, ASK], answers=[base(), base("Hello.")], blind=True)
    text = chat_tab.choose(ctx, {"conversation": hidden}, value="left")
    assert "does not count" not in text and "**Revealed:**" in text
    assert [label["blind"] for label in LabelStore(ctx.db()).list(kind="ab")] == [False, True]


def test_a_later_turn_chosen_with_the_names_shown_is_not_said_to_count():
    ctx = Context(None)
    later = ASK + [{"role": "assistant", "content": "Hi."}, {"role": "user", "content": "And?"}]
    conv = chat_tab.Conversation(prompts=[later, ASK + [{"role": "assistant", "content": "Yo."}, later[-1]]],
                                 answers=[base(), tuned()])
    text = chat_tab.choose(ctx, {"conversation": conv}, value="left")
    assert "counts in the win-rates" not in text and "makes no DPO pair" in text


def test_the_label_tab_records_whether_the_names_were_hidden(tiny_model):
    from backend.models.pool import ModelPool
    from tests.fake_runs import fake_run
    from ui import label_tab

    ctx = Context(None, ModelPool())
    run_id = fake_run(tiny_model)
    setup = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": "Say hi.\nSay bye.", "mode": "ab",
             "source_a": run_id, "temperature_a": 0.7, "source_b": BASE, "temperature_b": 1.0, "system": "",
             "max_tokens": 4, "blind": True}
    hidden = label_tab.begin(ctx, setup)
    label_tab.judge(ctx, {"state": hidden[0], "shown": hidden[5]}, value="left")
    hidden[0].close()
    shown = label_tab.begin(ctx, {**setup, "pasted": "Say yes.\nSay no.", "blind": False})
    label_tab.judge(ctx, {"state": shown[0], "shown": shown[5]}, value="right")
    shown[0].close()
    assert [label["blind"] for label in LabelStore(ctx.db()).list(kind="ab")] == [True, False]
    assert win_rates(ctx.db())["not_blind_votes"] == 1
