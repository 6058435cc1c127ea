"""Who gave each label, and how far labellers agree: kappa and alpha against hand-computed values on small
tables, the majority rule, the labeller in the counts and the export (anonymised on request), and `labels stats
--json`."""
import json

import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels import LabelStore, label_stats
from backend.labels.agreement import (agreement, agreement_lines, cohen_kappa, judgements, krippendorff_alpha,
                                      majority, seconds_per_label)
from backend.labels.export import export_rows, kto_rows
from tests.test_cli import app, last_json

BASE = Source("smollm2")


def ask(text):
    return [{"role": "user", "content": text}]


def said(text):
    return Answer(text, BASE, Sampling(temperature=0.0, max_new_tokens=64, seed=None))


def thumbs(store, labeller, votes):
    for i, value in enumerate(votes):
        if value is not None:
            store.add_thumb(ask(f"Question {i}?"), said(f"Answer {i}."), value, labeller=labeller, session=labeller)


def test_every_label_carries_its_labeller_in_the_store_the_counts_and_the_export():
    db = connect()
    store = LabelStore(db)
    thumbs(store, "bea", ["up", "down"])
    thumbs(store, "owner", ["up"])
    store.add_thumb(ask("Old?"), said("From before accounts."), "down")  # no labeller given: the owner's
    assert {label["labeller"] for label in store.list()} == {"bea", "owner"}
    assert [label["labeller"] for label in store.list(labeller="bea")] == ["bea", "bea"]
    stats = label_stats(db)
    assert stats["labellers"] == {"bea": {"thumbs": 2, "choices": 0, "edits": 0},
                                  "owner": {"thumbs": 2, "choices": 0, "edits": 0}}
    assert label_stats(db, labeller="bea")["kto_examples"] == 2

    named = export_rows(db, "kto")
    assert [row["labeller"] for row in named] == ["bea", "bea", "owner", "owner"]
    assert [{k: v for k, v in row.items() if k != "labeller"} for row in named] == kto_rows(db)  # training rows
    assert [row["labeller"] for row in export_rows(db, "kto", anonymise=True)] == \
        ["labeller 1", "labeller 1", "labeller 2", "labeller 2"]


def test_cohens_kappa_and_krippendorffs_alpha_match_the_hand_computed_values():
    # 10 items, two labellers, agreeing on 8: p_o = 0.8, p_e = 0.5 * 0.5 + 0.5 * 0.5 = 0.5, kappa = 0.6
    a = ["up"] * 5 + ["down"] * 5
    b = ["up"] * 4 + ["down", "up"] + ["down"] * 4
    assert cohen_kappa(a, b) == pytest.approx(0.6)
    # 3 labellers, 4 items (one missing). Coincidences: o_aa = 3 + 1 = 4, o_bb = 3, o_ab = o_ba = 1 + 1 = 2, n = 11;
    # D_o = 4/11, D_e = 2 * 6 * 5 / (11 * 10) = 6/11, alpha = 1 - 4/6 = 1/3
    rows = [["a", "a", "b", "a"], ["a", "a", "b", "b"], ["a", "b", "b", None]]
    assert krippendorff_alpha(rows) == pytest.approx(1 / 3)
    assert cohen_kappa(["up", "up"], ["up", "up"]) is None  # undefined: nothing but one value
    assert krippendorff_alpha([["a", "a"], ["a", "a"]]) is None


def test_the_majority_drops_ties():
    assert majority(["up", "up", "down"]) == "up"
    assert majority(["up", "down"]) is None
    assert majority(["left", "left", "tie", "tie", "right"]) is None
    assert majority([]) is None
    assert majority(["first", "first", "second", "tie", "both_bad"]) is None  # the most votes, 2 of 5, is no majority
    assert majority(["first", "first", "first", "tie", "second"]) == "first"


def test_two_labellers_get_kappa_with_an_interval_and_the_split_items():
    db = connect()
    store = LabelStore(db)
    thumbs(store, "bea", ["up"] * 5 + ["down"] * 5)
    thumbs(store, "sam", ["up"] * 4 + ["down", "up"] + ["down"] * 4)
    report = agreement(db, "thumb")
    overall = report["overall"]
    assert (overall["method"], overall["items"], overall["labellers"]) == ("cohen_kappa", 10, 2)
    assert overall["value"] == pytest.approx(0.6)
    low, high = overall["interval"]
    assert low < 0.6 < high and -1 <= low and high <= 1
    assert report["pairs"][0]["agreement"] == pytest.approx(0.8)
    assert sorted(item["prompt"][0]["content"] for item in report["split"]) == ["Question 4?", "Question 5?"]
    assert report["split"][0]["votes"].keys() == {"bea", "sam"}
    bea = next(p for p in report["labellers"] if p["name"] == "bea")
    assert (bea["labelled"], bea["compared"], bea["agrees_with_majority"]) == (10, 10, 0.8)


def test_three_labellers_get_alpha_and_each_is_compared_with_the_others_majority():
    db = connect()
    store = LabelStore(db)
    thumbs(store, "bea", ["up", "up", "down", "up"])
    thumbs(store, "sam", ["up", "up", "down", "down"])
    thumbs(store, "kim", ["up", "down", "down", None])
    report = agreement(db, "thumb")
    assert report["overall"]["method"] == "krippendorff_alpha"
    assert report["overall"]["value"] == pytest.approx(1 / 3, abs=1e-4)
    assert len(report["pairs"]) == 3
    kim = next(p for p in report["labellers"] if p["name"] == "kim")
    # kim vs the others' majority: item 0 up=up, item 1 others up → kim down disagrees, item 2 agrees
    assert (kim["compared"], kim["agrees_with_majority"]) == (3, pytest.approx(2 / 3, abs=1e-4))
    bea = next(p for p in report["labellers"] if p["name"] == "bea")
    # bea: item 1's others split (sam up, kim down) and it is left out; item 3's others are sam alone (down)
    assert (bea["compared"], bea["agrees_with_majority"]) == (3, pytest.approx(2 / 3, abs=1e-4))


def test_an_ab_choice_is_the_answer_chosen_whichever_side_it_was_shown_on():
    db = connect()
    store = LabelStore(db)
    store.add_choice(ask("Hi?"), said("Hello!"), said("Go away."), "left", labeller="bea")
    store.add_choice(ask("Hi?"), said("Go away."), said("Hello!"), "right", labeller="sam")  # sides swapped
    store.add_choice(ask("Bye?"), said("Bye!"), said("No."), "tie", labeller="bea")
    store.add_choice(ask("Bye?"), said("No."), said("Bye!"), "right", labeller="sam")
    table, items = judgements(db, "ab")
    assert len(table) == 2
    votes = [table[key] for key in table if items[key]["prompt"] == ask("Hi?")][0]
    assert votes["bea"] == votes["sam"]
    report = agreement(db, "ab")
    assert report["pairs"][0]["agreement"] == 0.5
    assert [item["prompt"] for item in report["split"]] == [ask("Bye?")]


def test_labels_stats_json_has_the_agreement_and_export_anonymises(home, tmp_path):
    store = LabelStore(connect())
    thumbs(store, "bea", ["up", "down", "up"])
    thumbs(store, "sam", ["up", "down", "down"])
    result = app("labels", "stats", "--json", env={"TUNELOOP_HOME": str(home)})
    assert result.returncode == 0, result.stderr
    stats = last_json(result)
    assert stats["labellers"]["sam"]["thumbs"] == 3
    thumb = stats["agreement"]["thumb"]
    assert thumb["overall"]["method"] == "cohen_kappa" and thumb["items_shared"] == 3 and len(thumb["split"]) == 1
    assert stats["agreement"]["ab"]["overall"]["method"] is None
    assert stats["win_rates_by_labeller"].keys() == {"bea", "sam"}
    words = app("labels", "stats", env={"TUNELOOP_HOME": str(home)})
    assert "Cohen's kappa" in words.stdout and "Split on 1 of 3 shared items" in words.stdout

    out = tmp_path / "kto.jsonl"
    assert app("labels", "export", "--kind", "kto", "--out", str(out), "--anonymise",
               env={"TUNELOOP_HOME": str(home)}).returncode == 0
    assert [json.loads(line)["labeller"] for line in out.read_text().splitlines()] == \
        ["labeller 1"] * 3 + ["labeller 2"] * 3


def test_win_rates_per_labeller_count_only_their_votes():
    from backend.labels.winrate import win_rates
    db = connect()
    store = LabelStore(db)
    tuned = Source("smollm2", "run-1")
    for i in range(3):
        tuned_answer = Answer(f"Tuned {i}.", tuned, Sampling(temperature=0.0))
        store.add_choice(ask(f"Q{i}?"), said(f"Base {i}."), tuned_answer, "right", labeller="bea", blind=True)
        store.add_choice(ask(f"Q{i}?"), said(f"Base {i}."), tuned_answer, "left" if i else "right", labeller="sam",
                         blind=True)
    assert win_rates(db)["pairs"][0]["votes"] == 6
    assert [p["votes"] for p in win_rates(db, "bea")["pairs"]] == [3]
    bea, sam = win_rates(db, "bea")["pairs"][0], win_rates(db, "sam")["pairs"][0]
    # the tuned answers win 3 of 3 of bea's votes and 1 of 3 of sam's
    assert {bea["a_win_rate"], sam["a_win_rate"]} in ({1.0, 0.3333}, {0.0, 0.6667})


def test_how_fast_each_labeller_labels_is_said_even_before_anyone_shares_an_item():
    """Per labeller, how fast (issue 28, item 4): the median time between two labels of one sitting, a pause of over
    five minutes left out; in the words of the Team tab and `labels stats`, also while no item is shared yet (the
    page said only that there was no agreement to measure)."""
    db = connect()
    thumbs(LabelStore(db), "bea", ["up", "down", "up", "down"])
    for label_id, created in zip([r["id"] for r in db.rows("select id from labels order by id")],
                                 ["2026-12-01T10:00:00.000+00:00", "2026-12-01T10:00:04.000+00:00",
                                  "2026-12-01T10:00:10.000+00:00", "2026-12-01T11:00:00.000+00:00"]):
        db.execute("update labels set created = ? where id = ?", [created, label_id])
    assert seconds_per_label(db, "thumb", "bea") == 5.0  # gaps of 4 s and 6 s; the hour's pause is a break
    lines = agreement_lines(agreement(db, "thumb"))
    assert lines[0].startswith("Thumbs: no item was judged by two labellers yet")
    assert "  bea: 4 labelled, no item to compare with others, 5 s per label" in lines
