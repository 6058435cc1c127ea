"""Preferred? Win-rates from blind A/B votes (labels of kind 'ab' made blind).

Only a choice made blind counts: one whose judge was not shown which model gave which answer (Chat's Blind A/B, the
Label tab's Blind box). A judge who knows which is the tuned model is no fair judge of it. Choices made with the
names shown, and those with no record of it (given before the app recorded it), still train DPO, but are left out
here and counted in `not_blind_votes` and `blind_unknown_votes`, said in words by `left_out_words`.

A model is its run id, or "base:<model>" for a base model alone. Each pair of models judged against each
other is reported once, oriented by a stable order (base models first, then runs, each alphabetically):
side `a` is the first of the two. Counting:
- "left"/"right" is a win for the model on that side and a loss for the other;
- "tie" and "both_bad" are ties (neither answer was preferred); `both_bad` is also counted on its own;
- the win-rate counts a tie as half a win: (wins + ties / 2) / votes;
- the 95% interval is the Wilson score interval around that win-rate.
A vote between two answers of the same model (say, two system prompts) compares no models and is only counted
in `same_model_votes`. With three or more models, a Bradley-Terry fit ranks them all on one scale.
"""
from __future__ import annotations

import math

import numpy as np

from backend.labels.store import PREFERS_ONE, LabelStore
from backend.words import plural

Z95 = 1.959963984540054  # the standard normal's 97.5% point: a two-sided 95% interval
# The Bradley-Terry fit adds one virtual tie to every pair that was judged: a model that never won keeps a
# small finite strength instead of running off to zero. With dozens of votes a pair it moves little.
BT_PRIOR_TIES = 1.0


def model_id(run_id: str | None, model: str | None) -> str:
    return run_id or f"base:{model}"


def win_rates(db, labeller: str | None = None, run_id: str | None = None) -> dict:
    """Every blind A/B vote still standing in the labels table (of one labeller, when given; with one run's answers
    on a side, when `run_id` is given), as win-rates per pair and (three or more models) a ranking, with the choices
    left out for not being blind. JSON-able."""
    choices = [row for row in LabelStore(db).list(kind="ab", labeller=labeller)
               if run_id is None or run_id in (row["run_id"], row["run_id_b"])]
    votes = [(model_id(row["run_id"], row["model"]), model_id(row["run_id_b"], row["model_b"]), row["value"])
             for row in choices if row["blind"] is True]
    report = win_rate_report(votes)
    report["not_blind_votes"] = sum(row["blind"] is False for row in choices)
    report["blind_unknown_votes"] = sum(row["blind"] is None for row in choices)
    report["left_out"] = left_out_words(report)
    return report


def left_out_words(report: dict) -> str:
    """The A/B choices the win-rates leave out, in one sentence ('' when none): the Runs tab, the Team tab and
    `labels stats` all say this one."""
    parts = []
    if report.get("not_blind_votes"):
        parts.append(f"{plural(report['not_blind_votes'], 'A/B choice')} made with the models' names shown")
    if report.get("blind_unknown_votes"):
        parts.append(f"{plural(report['blind_unknown_votes'], 'A/B choice')} with no record of whether the names "
                     "were hidden (given before the app recorded it)")
    if not parts:
        return ""
    return "Left out of the win-rates, which count only blind votes: " + " and ".join(parts) + "."


def win_rate_report(votes: list[tuple[str, str, str]]) -> dict:
    """votes: (left model, right model, value) with value left|right|tie|both_bad."""
    pairs, same_model = {}, 0
    for left, right, value in votes:
        if left == right:
            same_model += 1
            continue
        a, b = sorted((left, right), key=_order)
        pair = pairs.setdefault((a, b), {"a": a, "b": b, "votes": 0, "a_wins": 0, "b_wins": 0, "ties": 0,
                                         "both_bad": 0})
        pair["votes"] += 1
        if value not in PREFERS_ONE:
            pair["ties"] += 1
            pair["both_bad"] += value == "both_bad"
        elif (value == "left") == (left == a):
            pair["a_wins"] += 1
        else:
            pair["b_wins"] += 1
    report = []
    for key in sorted(pairs, key=lambda k: (_order(k[0]), _order(k[1]))):
        pair = pairs[key]
        score = pair["a_wins"] + pair["ties"] / 2
        low, high = wilson_interval(score, pair["votes"])
        pair.update(a_win_rate=round(score / pair["votes"], 4), interval=[round(low, 4), round(high, 4)])
        report.append(pair)
    models = sorted({m for key in pairs for m in key}, key=_order)
    result = {"counting": "blind votes only; ties and both_bad count as ties; win-rate = (wins + ties/2) / votes; "
                          "interval: 95% Wilson score",
              "votes": sum(p["votes"] for p in report), "same_model_votes": same_model,
              "models": models, "pairs": report, "ranking": None, "ranking_note": None}
    if len(models) < 3:
        result["ranking_note"] = "A ranking needs votes on three or more models; the pairs say it all."
    elif not _connected(models, pairs):
        result["ranking_note"] = ("Some models were never compared with the others, directly or through a third: "
                                  "they cannot be put on one scale. Compare them in A/B mode.")
    else:
        result["ranking"] = bradley_terry_ranking(models, report)
    return result


def wilson_interval(successes: float, n: int, z: float = Z95) -> tuple[float, float]:
    """The Wilson score interval for a proportion successes/n (successes may hold halves: ties)."""
    if n <= 0:
        return 0.0, 1.0
    p = successes / n
    denominator = 1 + z * z / n
    center = (p + z * z / (2 * n)) / denominator
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denominator
    return max(0.0, center - half), min(1.0, center + half)


def bradley_terry(wins: np.ndarray, prior_ties: float = BT_PRIOR_TIES, iterations: int = 10_000,
                  tolerance: float = 1e-10) -> np.ndarray:
    """Strengths s (geometric mean 1) with P(i beats j) = s_i / (s_i + s_j), fitted by Hunter's (2004) MM
    algorithm. wins[i, j]: how often i beat j (a tie counted as half a win each way)."""
    wins = np.asarray(wins, dtype=float)
    games = wins + wins.T
    wins = wins + (games > 0) * prior_ties / 2
    games = wins + wins.T
    total_wins = wins.sum(axis=1)
    strength = np.ones(len(wins))
    for _ in range(iterations):
        denominator = (games / (strength[:, None] + strength[None, :])).sum(axis=1)
        updated = total_wins / denominator
        updated /= math.exp(np.log(updated).mean())
        if np.max(np.abs(updated - strength) / strength) < tolerance:
            return updated
        strength = updated
    return strength


def bradley_terry_ranking(models: list[str], pairs: list[dict]) -> list[dict]:
    index = {m: i for i, m in enumerate(models)}
    wins = np.zeros((len(models), len(models)))
    for pair in pairs:
        a, b = index[pair["a"]], index[pair["b"]]
        wins[a, b] += pair["a_wins"] + pair["ties"] / 2
        wins[b, a] += pair["b_wins"] + pair["ties"] / 2
    strength = bradley_terry(wins)
    order = sorted(range(len(models)), key=lambda i: (-strength[i], _order(models[i])))
    # beats_average: the chance of winning against a model of average strength (the geometric mean, 1)
    return [{"rank": rank, "model": models[i], "strength": round(float(strength[i]), 4),
             "beats_average": round(float(strength[i] / (strength[i] + 1)), 4)}
            for rank, i in enumerate(order, start=1)]


def _order(model: str) -> tuple:
    return (not model.startswith("base:"), model)


def _connected(models: list[str], pairs: dict) -> bool:
    reached, frontier = {models[0]}, [models[0]]
    while frontier:
        current = frontier.pop()
        for a, b in pairs:
            for here, there in ((a, b), (b, a)):
                if here == current and there not in reached:
                    reached.add(there)
                    frontier.append(there)
    return len(reached) == len(models)
