"""Preferred? Win-rates from blind A/B votes: counting, orientation, Wilson intervals, Bradley-Terry ranking."""
import json
import random

import numpy as np
import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels.store import LabelStore
from backend.labels.winrate import bradley_terry, model_id, wilson_interval, win_rate_report, win_rates


@pytest.mark.parametrize("successes,n,low,high", [
    # Newcombe (1998), "Two-sided confidence intervals for the single proportion", Table I, method 3 (score)
    (81, 263, 0.2553, 0.3662), (15, 148, 0.0624, 0.1605), (0, 20, 0.0, 0.1611), (1, 29, 0.0061, 0.1718),
    (29, 29, 0.8830, 1.0),
])
def test_wilson_interval_matches_the_published_values(successes, n, low, high):
    assert wilson_interval(successes, n) == pytest.approx((low, high), abs=6e-5)


def test_each_pair_is_reported_once_in_a_stable_orientation():
    votes = [("run-b", "base:smollm2", "right"),  # the base (right) wins
             ("base:smollm2", "run-b", "left"),  # the base (left) wins
             ("base:smollm2", "run-b", "right"),  # the run wins
             ("run-b", "base:smollm2", "tie"), ("base:smollm2", "run-b", "both_bad"),
             ("base:smollm2", "base:smollm2", "left")]  # one model against itself: no comparison
    report = win_rate_report(votes)
    assert report["models"] == ["base:smollm2", "run-b"]
    (pair,) = report["pairs"]
    assert (pair["a"], pair["b"]) == ("base:smollm2", "run-b")
    assert (pair["votes"], pair["a_wins"], pair["b_wins"], pair["ties"], pair["both_bad"]) == (5, 2, 1, 2, 1)
    assert pair["a_win_rate"] == pytest.approx((2 + 2 / 2) / 5)  # a tie is half a win
    assert pair["interval"] == pytest.approx(wilson_interval(3, 5), abs=1e-4)
    assert report["same_model_votes"] == 1 and report["votes"] == 5
    assert report["ranking"] is None and "three or more" in report["ranking_note"]
    flipped = win_rate_report([(r, l, {"left": "right", "right": "left"}.get(v, v)) for l, r, v in votes])
    assert flipped["pairs"] == report["pairs"]  # which side a model was shown on changes nothing


def test_a_scripted_judge_gives_a_win_rate_whose_interval_holds_its_preference(tmp_path):
    """A judge who prefers the run's answer with probability p, shown the two sides in random order."""
    store = LabelStore(connect(tmp_path / "votes.db"))
    rng = random.Random(7)
    p, votes = 0.7, 400
    run = Answer("tuned answer", Source("smollm2", "sft-1"), Sampling())
    base = Answer("base answer", Source("smollm2", None), Sampling())
    for i in range(votes):
        left, right = (run, base) if rng.random() < 0.5 else (base, run)
        run_wins = rng.random() < p
        value = ("left" if left is run else "right") if run_wins else ("right" if left is run else "left")
        store.add_choice([{"role": "user", "content": f"Question {i}?"}], left, right, value, blind=True)
    report = win_rates(store.db)
    (pair,) = report["pairs"]
    assert (pair["a"], pair["b"]) == ("base:smollm2", "sft-1")
    low, high = pair["interval"]
    assert low < 1 - p < high  # the base side's win-rate is 1 - p
    assert high - low < 0.1
    assert pair["votes"] == votes and pair["a_wins"] + pair["b_wins"] == votes
    json.dumps(report)


def test_undone_votes_do_not_count(tmp_path):
    store = LabelStore(connect(tmp_path / "votes.db"))
    a = Answer("one", Source("smollm2", "run-1"), Sampling())
    b = Answer("two", Source("smollm2", "run-2"), Sampling())
    store.add_choice([{"role": "user", "content": "Q?"}], a, b, "left", blind=True)
    store.add_choice([{"role": "user", "content": "Q2?"}], a, b, "right", blind=True)
    store.undo()
    (pair,) = win_rates(store.db)["pairs"]
    assert (pair["votes"], pair["a_wins"]) == (1, 1)


def test_bradley_terry_recovers_strengths_from_votes_that_match_them_exactly():
    strength = np.array([1.0, 2.0, 4.0, 0.5])
    games = 60
    wins = games * strength[:, None] / (strength[:, None] + strength[None, :])
    np.fill_diagonal(wins, 0)
    fitted = bradley_terry(wins, prior_ties=0)
    assert fitted / fitted[0] == pytest.approx(strength / strength[0], rel=1e-6)


@pytest.mark.parametrize("tie_share", [0.0, 0.1])
def test_bradley_terry_ranks_simulated_votes_by_their_known_strengths(tie_share):
    """Votes drawn from known strengths. Ties drawn regardless of strength pull every win share toward a half
    (a tie is half a win): the order stays, the ratios shrink, so they are checked without ties."""
    rng = random.Random(3)
    strength = {"base:smollm2": 1.0, "sft-a": 3.0, "dpo-b": 1.5}
    names = list(strength)
    votes = []
    for _ in range(1500):
        left, right = rng.sample(names, 2)
        roll = rng.random()
        p_left = strength[left] / (strength[left] + strength[right])
        value = "tie" if roll < tie_share else ("left" if rng.random() < p_left else "right")
        votes.append((left, right, value))
    report = win_rate_report(votes)
    ranking = report["ranking"]
    assert [r["model"] for r in ranking] == ["sft-a", "dpo-b", "base:smollm2"]
    assert [p["a"] + "|" + p["b"] for p in report["pairs"]] == [
        "base:smollm2|dpo-b", "base:smollm2|sft-a", "dpo-b|sft-a"]
    if not tie_share:
        fitted = {r["model"]: r["strength"] for r in ranking}
        assert fitted["sft-a"] / fitted["base:smollm2"] == pytest.approx(3.0, rel=0.15)
        assert fitted["dpo-b"] / fitted["base:smollm2"] == pytest.approx(1.5, rel=0.15)


def test_a_model_that_never_won_keeps_a_finite_strength():
    votes = [("base:m", "run-1", "right")] * 10 + [("run-1", "run-2", "left")] * 5 + [("run-2", "base:m", "left")] * 5
    ranking = win_rate_report(votes)["ranking"]
    assert [r["model"] for r in ranking] == ["run-1", "run-2", "base:m"]
    assert all(0 < r["strength"] < float("inf") for r in ranking)


def test_models_never_compared_with_the_others_are_not_ranked_together():
    report = win_rate_report([("base:m", "run-1", "left"), ("run-2", "run-3", "right")])
    assert report["ranking"] is None and "never compared" in report["ranking_note"]
    assert len(report["pairs"]) == 2


def test_model_identity():
    assert model_id("sft-1", "smollm2") == "sft-1"
    assert model_id(None, "smollm2") == "base:smollm2"


def test_the_command_line_counts_one_vote_and_no_tie_in_words():
    from tests.test_cli import app
    store = LabelStore(connect())  # the workspace the command reads (TUNELOOP_HOME of the test)
    run = Answer("tuned answer", Source("smollm2", "sft-1"), Sampling())
    base = Answer("base answer", Source("smollm2", None), Sampling())
    store.add_choice([{"role": "user", "content": "Question?"}], base, run, "right", blind=True)
    text = app("labels", "stats").stdout
    assert "over 1 blind A/B vote (0 ties)" in text, text  # was "over 1 A/B votes"
