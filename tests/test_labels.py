"""Labels: stored the moment they are given (and still there after a crash), undone, counted, exported in
TRL's formats, and turned into a stored dataset and a KTO or DPO run on top of the judged run."""
import json
import subprocess
import sys

import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.errors import DataError
from backend.labels import LabelError, LabelStore, dpo_rows, kto_rows, label_stats, new_session, sft_rows
from tests.conftest import ROOT
from tests.test_cli import app, last_json

BASE = Source("smollm2")
TUNED = Source("smollm2", "sft-20261125-101500-ab12")


def ask(text):
    return [{"role": "user", "content": text}]


def said(text, source=BASE, **sampling):
    return Answer(text, source, Sampling(**{"temperature": 0.7, "max_new_tokens": 64, "seed": 3, **sampling}))


def test_each_kind_of_label_is_stored_with_how_the_answer_was_made():
    store = LabelStore(connect())
    session = new_session()
    thumb = store.add_thumb(ask("Hi"), said("Hello!", TUNED, system="Be brief."), "up", session=session, origin="chat")
    choice = store.add_choice(ask("Hi"), said("Hello!"), said("Go away.", TUNED), "left", session=session)
    edit = store.add_edit(ask("Hi"), said("Go away."), "  Hello, how can I help?  ", session=session)

    row = store.get(thumb)
    assert (row["kind"], row["value"], row["answer"], row["run_id"], row["origin"]) == \
        ("thumb", "up", "Hello!", TUNED.run_id, "chat")
    assert row["prompt"] == ask("Hi")
    assert row["settings"] == {"temperature": 0.7, "max_new_tokens": 64, "seed": 3, "system": "Be brief.",
                               "ended": True}
    assert row["created"] and row["session"] == session and row["undone"] == 0
    assert (store.get(choice)["model_b"], store.get(choice)["run_id_b"]) == ("smollm2", TUNED.run_id)
    assert store.get(edit)["corrected"] == "Hello, how can I help?"


def test_bad_labels_are_refused_in_words():
    store = LabelStore(connect())
    with pytest.raises(LabelError, match="not a thumb label"):
        store.add_thumb(ask("Hi"), said("Hello"), "sideways")
    with pytest.raises(LabelError, match="empty"):
        store.add_thumb(ask("Hi"), said("   "), "up")
    with pytest.raises(LabelError, match="end with the user"):
        store.add_thumb([{"role": "assistant", "content": "x"}], said("Hello"), "up")
    with pytest.raises(LabelError, match="corrected answer is empty"):
        store.add_edit(ask("Hi"), said("Hello"), " ")
    assert store.list() == []


def test_undo_takes_back_the_sessions_last_label_and_a_new_judgement_replaces_the_old():
    store = LabelStore(connect())
    mine, theirs = new_session(), new_session()
    first = store.add_thumb(ask("a"), said("A"), "up", session=mine)
    store.add_thumb(ask("b"), said("B"), "down", session=theirs)
    second = store.add_thumb(ask("c"), said("C"), "down", session=mine)
    assert store.undo(mine)["id"] == second
    assert store.undo(mine)["id"] == first
    assert store.undo(mine) is None
    assert [label["answer"] for label in store.list()] == ["B"]

    store.add_thumb(ask("d"), said("D"), "up", target="answer-7")
    store.add_thumb(ask("d"), said("D"), "down", target="answer-7")  # changed my mind
    assert [(label["answer"], label["value"]) for label in store.list()] == [("B", "down"), ("D", "down")]
    stats = label_stats(connect())
    assert stats["thumbs"] == {"up": 0, "down": 2} and stats["undone"] == 3

    undone = store.undo()  # take back the change of mind: the first judgement of answer-7 stands again
    assert (undone["answer"], undone["value"]) == ("D", "down")
    assert [(label["answer"], label["value"]) for label in store.list()] == [("B", "down"), ("D", "up")]
    assert store.undo()["value"] == "up" and [label["answer"] for label in store.list()] == ["B"]


def test_labels_survive_a_killed_process():
    """The writer is killed (SIGKILL) right after add_* returns; a new connection sees every label."""
    script = (
        "import os, signal\n"
        "from backend.answers import Answer, Sampling, Source\n"
        "from backend.db import connect\n"
        "from backend.labels import LabelStore\n"
        "store = LabelStore(connect())\n"
        "for i in range(5):\n"
        "    store.add_thumb([{'role': 'user', 'content': f'q{i}'}], Answer(f'a{i}', Source(), Sampling()), 'up')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    result = subprocess.run([sys.executable, "-c", script], cwd=ROOT)
    assert result.returncode == -9
    assert [label["answer"] for label in LabelStore(connect()).list()] == [f"a{i}" for i in range(5)]


def test_export_rows_follow_trls_formats_and_skip_ties():
    store = LabelStore(connect())
    store.add_thumb(ask("Hi"), said("Hello!", system="Be warm."), "up")
    store.add_thumb(ask("Hi"), said("Go away."), "down")
    store.add_choice(ask("Q1"), said("good"), said("bad"), "left")
    store.add_choice(ask("Q2"), said("bad", system="Be curt."), said("good"), "right")  # systems differ: left out
    store.add_choice(ask("Q3"), said("x"), said("y"), "tie")
    store.add_choice(ask("Q4"), said("x"), said("y"), "both_bad")
    store.add_edit(ask("Hi"), said("Go away."), "Hello, friend.")
    db = connect()

    assert kto_rows(db) == [
        {"prompt": [{"role": "system", "content": "Be warm."}] + ask("Hi"),
         "completion": [{"role": "assistant", "content": "Hello!"}], "label": True},
        {"prompt": ask("Hi"), "completion": [{"role": "assistant", "content": "Go away."}], "label": False},
    ]
    assert dpo_rows(db) == [
        {"prompt": ask("Q1"), "chosen": [{"role": "assistant", "content": "good"}],
         "rejected": [{"role": "assistant", "content": "bad"}]},
        {"prompt": ask("Q2"), "chosen": [{"role": "assistant", "content": "good"}],
         "rejected": [{"role": "assistant", "content": "bad"}]},
    ]
    assert sft_rows(db) == [{"messages": ask("Hi") + [{"role": "assistant", "content": "Hello, friend."}]}]
    stats = label_stats(db)
    assert (stats["kto_examples"], stats["dpo_pairs"], stats["not_trained"], stats["sft_examples"]) == (2, 2, 2, 1)


def test_cli_stats_and_export_with_and_without_labels(tmp_path):
    empty = app("labels", "export", "--kind", "dpo", "--out", str(tmp_path / "none.jsonl"))
    assert empty.returncode == 0, empty.stderr
    assert (tmp_path / "none.jsonl").read_text() == ""
    assert last_json(app("labels", "stats", "--json"))["dpo_pairs"] == 0

    store = LabelStore(connect())
    for i in range(3):
        store.add_thumb(ask(f"q{i}"), said(f"a{i}"), "up" if i else "down")
    store.add_choice(ask("q"), said("a"), said("b"), "tie")
    exported = app("labels", "export", "--kind", "kto", "--out", str(tmp_path / "kto.jsonl"))
    assert exported.returncode == 0 and "3 KTO examples" in exported.stdout
    rows = [json.loads(line) for line in (tmp_path / "kto.jsonl").read_text().splitlines()]
    assert [r["label"] for r in rows] == [False, True, True]
    text = app("labels", "stats").stdout
    assert "2 good, 1 bad" in text and "1 tie," in text and "make no pair" in text
    stats = last_json(app("labels", "stats", "--json"))
    assert stats["thumbs"] == {"up": 2, "down": 1} and stats["choices"]["tie"] == 1

    refused = app("labels", "train", "--kind", "dpo")
    assert refused.returncode == 1 and refused.stderr.startswith("Error: There are no A/B choices")
    assert "Traceback" not in refused.stderr


def test_kto_needs_good_and_bad_before_anything_is_stored():
    from backend.labels import labels_to_dataset
    store = LabelStore(connect())
    store.add_thumb(ask("q"), said("a"), "up")
    with pytest.raises(DataError, match="none is marked bad"):
        labels_to_dataset(connect(), "kto")
    assert not list(connect().query("select * from datasets"))


def test_a_choice_between_two_different_conversations_is_kept_but_makes_no_pair():
    store = LabelStore(connect())
    first = ask("Hi") + [{"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "And?"}]
    other = ask("Hi") + [{"role": "assistant", "content": "Hey."}, {"role": "user", "content": "And?"}]
    store.add_choice(first, said("a"), said("b"), "left", right_prompt=other)
    store.add_choice(first, said("a"), said("b"), "right", right_prompt=first)  # the same: an ordinary pair
    assert store.list()[0]["prompt_b"] == other and store.list()[1]["prompt_b"] is None
    assert len(dpo_rows(connect())) == 1
    stats = label_stats(connect())
    assert (stats["dpo_pairs"], stats["not_trained"], stats["different_conversations"]) == (1, 1, 1)
