"""Training on what a team agrees on: every label, the majority label per item (ties dropped), only items everyone
agreed on, or leaving a labeller out; the numbers for each choice, and a queued run whose dataset says which."""
import pytest

from backend.answers import Answer, Sampling, Source
from backend.data import DatasetStore
from backend.db import connect
from backend.errors import DataError
from backend.labels import LabelStore, readiness, train_on_labels
from backend.labels.team_rules import rule_counts, rule_rows
from backend.jobs.runner import JobRunner
from tests.fake_runs import fake_run

TINY = dict(max_steps=3, batch_size=4, learning_rate=1e-3, probe=False, validation_split=0.0, max_length=128)


def ask(text):
    return [{"role": "user", "content": text}]


def said(text, source=Source("smollm2")):
    return Answer(text, source, Sampling(temperature=0.0, max_new_tokens=64, seed=None))


def vote(store, votes: dict[str, str], source=Source("smollm2")):
    """votes: labeller -> a string of u/d, one letter per question (or '.' for not judged)."""
    for name, letters in votes.items():
        for i, letter in enumerate(letters):
            if letter != ".":
                store.add_thumb(ask(f"Q{i}?"), said(f"A{i}.", source), "up" if letter == "u" else "down",
                                labeller=name)


def test_each_choice_counts_its_rows_and_the_majority_drops_ties():
    db = connect()
    # Q0 all up; Q1 2 up 1 down; Q2 1 up 1 down (a tie); Q3 judged by bea alone (down)
    vote(LabelStore(db), {"bea": "uuud", "sam": "uud.", "kim": "ud.."})
    assert rule_counts(db, "kto") == {"every": 9, "majority": 3, "all_agree": 2}
    majority = {row["prompt"][0]["content"]: row["label"] for row in rule_rows(db, "kto", "majority")}
    assert majority == {"Q0?": True, "Q1?": True, "Q3?": False}
    everyone = {row["prompt"][0]["content"] for row in rule_rows(db, "kto", "all_agree")}
    assert everyone == {"Q0?", "Q3?"}
    # without kim, Q1 is unanimous and Q2 (bea up, sam down) a tie
    assert rule_counts(db, "kto", leave_out="kim") == {"every": 7, "majority": 3, "all_agree": 3}
    assert readiness(db, "kto", rule="majority").rows == 3
    with pytest.raises(DataError, match="Unknown choice of labels"):
        rule_rows(db, "kto", "loudest")
    # a misspelt name left nobody out, under a run named 'without' them
    with pytest.raises(DataError, match="No labels from 'kym'. The labellers who gave labels: bea, kim, sam"):
        rule_counts(db, "kto", leave_out="kym")


def test_the_majority_of_ab_choices_is_the_answer_chosen_whichever_side_it_was_on():
    db = connect()
    store = LabelStore(db)
    store.add_choice(ask("Hi?"), said("Hello!"), said("Go away."), "left", labeller="bea")
    store.add_choice(ask("Hi?"), said("Go away."), said("Hello!"), "right", labeller="sam")
    store.add_choice(ask("Hi?"), said("Go away."), said("Hello!"), "left", labeller="kim")
    store.add_choice(ask("Bye?"), said("Bye!"), said("No."), "tie", labeller="bea")
    store.add_choice(ask("Bye?"), said("No."), said("Bye!"), "tie", labeller="sam")
    pairs = rule_rows(db, "dpo", "majority")
    assert pairs == [{"prompt": ask("Hi?"), "chosen": [{"role": "assistant", "content": "Hello!"}],
                      "rejected": [{"role": "assistant", "content": "Go away."}]}]  # the tie prefers neither
    assert rule_rows(db, "dpo", "all_agree") == []
    assert len(rule_rows(db, "dpo", "all_agree", leave_out="kim")) == 1


def test_a_run_on_the_majority_trains_on_the_expected_rows_and_says_so(tiny_model):
    run = fake_run(tiny_model)
    db = connect()
    source = Source(tiny_model, run)
    vote(LabelStore(db), {"bea": "uuud", "sam": "uud.", "kim": "ud.."}, source)
    runner = JobRunner()
    try:
        run_id, dataset = train_on_labels(runner.db, runner, "kto", rule="majority", overrides=TINY)
        info = DatasetStore(runner.db).get(dataset)
        assert info["valid_rows"] == 3
        assert "the majority label per item (more than half; ties dropped)" in info["source"]
        record = runner.store.get(run_id)
        assert "(majority)" in record["name"] and record["config"]["dataset"] == dataset
        run_id, dataset = train_on_labels(runner.db, runner, "kto", leave_out="kim", overrides=TINY)
        # every label of bea and sam: 7 rows, of which the dataset keeps 5 (two agreeing thumbs make one example
        # twice; Q2's disagreeing pair stays, one good and one bad)
        assert DatasetStore(runner.db).get(dataset)["valid_rows"] == 5
        assert "without kim" in runner.store.get(run_id)["name"]
    finally:
        runner.close()


def test_labels_stats_json_gives_the_rows_of_each_choice(home):
    from tests.test_cli import app, last_json
    vote(LabelStore(connect()), {"bea": "uuud", "sam": "uud.", "kim": "ud.."})
    result = app("labels", "stats", "--json", env={"TUNELOOP_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    assert last_json(result)["rows_by_choice"]["kto"] == {"every": 9, "majority": 3, "all_agree": 2}
    refused = app("labels", "train", "--kind", "kto", "--labels", "loudest", env={"TUNELOOP_HOME": str(home)})
    assert refused.returncode == 2 and "invalid choice" in refused.stderr
