"""How far labellers agree, on the items two or more of them judged.

An item is the same question with the same answer(s): a thumb judges one answer, an A/B choice two (in either
order: which side an answer was shown on is drawn per labeller, so a choice is stored as the answer chosen, not the
side). Each labeller counts once per item, with their latest standing label. Corrections are not compared.

- Per pair of labellers: Cohen's kappa (scikit-learn) on the items both judged, and the share of equal labels.
- Overall: Cohen's kappa when two labellers shared items, Krippendorff's alpha (the `krippendorff` package,
  nominal) when more did; both with a 95% bootstrap interval over items.
- Per labeller: labels given, how often they agree with the others' majority, seconds per label.
- Items the team split on: judged by two or more, not all alike.

    agreement(db, "thumb")  ->  {"overall": {...}, "pairs": [...], "labellers": [...], "split": [...]}
"""
from __future__ import annotations

import hashlib
import json
import statistics
import warnings
from collections import Counter
from datetime import datetime

import numpy as np

from .store import PREFERS_ONE, VALUE_WORDS, LabelStore

KINDS = ("thumb", "ab")
BOOTSTRAP = 500  # resamples of the items for an interval
MAX_GAP_S = 300  # a longer pause between two labels is a break, not the time one label took
# A/B votes are compared as the answer chosen ('first' / 'second' in the item's order of answers), not the side
CHOICE_WORDS = {"first": "answer 1 better", "second": "answer 2 better", **VALUE_WORDS["thumb"],
                **{v: words for v, words in VALUE_WORDS["ab"].items() if v not in PREFERS_ONE}}


def judgements(db, kind: str, leave_out: str | None = None) -> tuple[dict[str, dict[str, str]], dict[str, dict]]:
    """({item: {labeller: value}}, {item: {"prompt", "answers", "label"}}): each labeller's latest standing label per
    item (`label`: the item's first, for its prompt). A/B values are 'first' / 'second' (the chosen answer, in the
    order of `answers`), 'tie' or 'both_bad'. `leave_out`: a labeller whose labels are not counted."""
    table: dict[str, dict[str, str]] = {}
    items: dict[str, dict] = {}
    for label in LabelStore(db).list(kind):  # oldest first: a later label of the same item replaces an earlier one
        if (kind == "ab" and label.get("prompt_b")) or label["labeller"] == leave_out:
            continue  # answers to two different conversations: no one item
        answers = [label["answer"]] if kind == "thumb" else sorted([label["answer"], label["answer_b"]])
        value = label["value"]
        if value in PREFERS_ONE:
            chosen = label["answer"] if value == "left" else label["answer_b"]
            value = "first" if chosen == answers[0] else "second"
        key = item_key(label, answers)
        items.setdefault(key, {"prompt": label["prompt"], "answers": answers, "label": label})
        table.setdefault(key, {})[label["labeller"]] = value
    return table, items


def item_key(label: dict, answers: list[str]) -> str:
    systems = sorted({(label.get(s) or {}).get("system") or "" for s in ("settings", "settings_b") if label.get(s)})
    return _key(label["kind"], label["prompt"], systems, answers)


def key_of(kind: str, prompt: list[dict], answers: list) -> str:
    """The item of answers (backend.answers.Answer) about to be judged: the key its labels will have."""
    texts = [a.text for a in answers] if kind == "thumb" else sorted(a.text for a in answers)
    return _key(kind, prompt, sorted({a.sampling.system or "" for a in answers}), texts)


def _key(kind: str, prompt: list[dict], systems: list[str], answers: list[str]) -> str:
    text = json.dumps([kind, prompt, systems, answers], ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def labellers_of(db, kind: str, prompt: list[dict], answers: list) -> set[str]:
    """Who has a standing label on this item already (in any sitting): they are not handed it again."""
    key = key_of(kind, prompt, answers)
    rows = db.rows("select id from labels where undone = 0 and kind = ? and prompt = ?",
                   [kind, json.dumps(prompt, ensure_ascii=False)])
    store = LabelStore(db)
    found = set()
    for row in rows:
        label = store.get(row["id"])
        if kind == "ab" and label.get("prompt_b"):
            continue
        texts = [label["answer"]] if kind == "thumb" else sorted([label["answer"], label["answer_b"]])
        if item_key(label, texts) == key:
            found.add(label["labeller"])
    return found


def majority(values: list[str]) -> str | None:
    """The value more than half of the labellers gave; None where none did (a tie, or votes spread over several
    values: 2 of 5 for the first answer is the most votes, not a majority)."""
    counts = Counter(values).most_common(1)
    return counts[0][0] if counts and counts[0][1] * 2 > len(values) else None


def cohen_kappa(a: list[str], b: list[str]) -> float | None:
    """scikit-learn's kappa; None where it is undefined (both gave one and the same value throughout)."""
    from sklearn.metrics import cohen_kappa_score
    if len(a) < 2 or len(set(a) | set(b)) < 2:
        return None
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        value = float(cohen_kappa_score(a, b))
    return None if np.isnan(value) else value


def krippendorff_alpha(rows: list[list[str | None]]) -> float | None:
    """Nominal alpha over a labellers x items table (None: not judged); None where undefined (one value only)."""
    import krippendorff
    values = sorted({v for row in rows for v in row if v is not None})
    if len(values) < 2:
        return None
    codes = np.array([[np.nan if v is None else values.index(v) for v in row] for row in rows], dtype=float)
    try:
        value = float(krippendorff.alpha(reliability_data=codes, level_of_measurement="nominal"))
    except (ValueError, ZeroDivisionError):
        return None
    return None if np.isnan(value) else value


def bootstrap(statistic, n_items: int, samples: int = BOOTSTRAP, seed: int = 0) -> list[float] | None:
    """A 95% percentile interval of `statistic(item indices)` over resamples of the items; None when fewer than
    half the resamples give a value (too few items, or all alike)."""
    if n_items < 2:
        return None
    rng = np.random.default_rng(seed)
    found = [v for v in (statistic(rng.integers(0, n_items, n_items)) for _ in range(samples)) if v is not None]
    if len(found) < samples / 2:
        return None
    low, high = np.percentile(found, [2.5, 97.5])
    return [round(float(low), 4), round(float(high), 4)]


def agreement(db, kind: str = "thumb", samples: int = BOOTSTRAP) -> dict:
    table, items = judgements(db, kind)
    shared = {key: votes for key, votes in table.items() if len(votes) >= 2}
    names = sorted({name for votes in table.values() for name in votes})
    return {"kind": kind, "items_shared": len(shared), "overall": _overall(shared, samples),
            "pairs": _pairs(shared, names, samples), "labellers": _per_labeller(db, kind, table, names),
            "split": [{"prompt": items[key]["prompt"], "answers": items[key]["answers"], "votes": votes}
                      for key, votes in shared.items() if len(set(votes.values())) > 1]}


def _overall(shared: dict, samples: int) -> dict:
    names = sorted({name for votes in shared.values() for name in votes})
    keys = list(shared)
    if len(names) < 2:
        return {"method": None, "value": None, "interval": None, "items": 0, "labellers": len(names)}
    if len(names) == 2:
        a, b = ([shared[k][n] for k in keys] for n in names)
        return {"method": "cohen_kappa", "value": _round(cohen_kappa(a, b)), "items": len(keys), "labellers": 2,
                "interval": bootstrap(lambda idx: cohen_kappa([a[i] for i in idx], [b[i] for i in idx]), len(keys),
                                      samples)}
    rows = [[shared[k].get(n) for k in keys] for n in names]
    return {"method": "krippendorff_alpha", "value": _round(krippendorff_alpha(rows)), "items": len(keys),
            "labellers": len(names),
            "interval": bootstrap(lambda idx: krippendorff_alpha([[row[i] for i in idx] for row in rows]),
                                  len(keys), samples)}


def _pairs(shared: dict, names: list[str], samples: int) -> list[dict]:
    pairs = []
    for i, first in enumerate(names):
        for second in names[i + 1:]:
            keys = [k for k, votes in shared.items() if first in votes and second in votes]
            if not keys:
                continue
            a, b = [shared[k][first] for k in keys], [shared[k][second] for k in keys]
            pairs.append({"a": first, "b": second, "items": len(keys),
                          "agreement": round(sum(x == y for x, y in zip(a, b)) / len(keys), 4),
                          "kappa": _round(cohen_kappa(a, b)),
                          "interval": bootstrap(lambda idx: cohen_kappa([a[j] for j in idx], [b[j] for j in idx]),
                                                len(keys), samples)})
    return pairs


def _per_labeller(db, kind: str, table: dict, names: list[str]) -> list[dict]:
    out = []
    for name in names:
        agree = compared = 0
        for votes in table.values():
            if name not in votes or len(votes) < 2:
                continue
            others = majority([v for n, v in votes.items() if n != name])
            if others is not None:
                compared += 1
                agree += votes[name] == others
        out.append({"name": name, "labelled": sum(name in votes for votes in table.values()), "compared": compared,
                    "agrees_with_majority": round(agree / compared, 4) if compared else None,
                    "seconds_per_label": seconds_per_label(db, kind, name)})
    return out


def seconds_per_label(db, kind: str, labeller: str) -> float | None:
    """The median time between two labels in a row of one sitting (pauses over MAX_GAP_S left out)."""
    gaps = []
    by_session: dict[str, list[datetime]] = {}
    for label in LabelStore(db).list(kind, labeller=labeller, include_undone=True):
        by_session.setdefault(label["session"] or "", []).append(datetime.fromisoformat(label["created"]))
    for times in by_session.values():
        gaps += [g for g in ((b - a).total_seconds() for a, b in zip(times, times[1:])) if 0 <= g <= MAX_GAP_S]
    return round(statistics.median(gaps), 1) if gaps else None


def _round(value: float | None) -> float | None:
    return None if value is None else round(value, 4)


def agreement_lines(report: dict) -> list[str]:
    """One report in words: the lines `labels stats` prints and the Label tab shows."""
    what = {"thumb": "Thumbs", "ab": "A/B choices"}[report["kind"]]
    overall = report["overall"]
    if overall["method"] is None:  # still each labeller's count and speed
        return [f"{what}: no item was judged by two labellers yet, so there is no agreement to measure."] + \
            _labeller_lines(report)
    method = {"cohen_kappa": "Cohen's kappa", "krippendorff_alpha": "Krippendorff's alpha"}[overall["method"]]
    lines = [f"{what}: {method} {_figure(overall['value'], overall['interval'])} over {overall['items']} items "
             f"judged by {overall['labellers']} labellers"]
    for pair in report["pairs"]:
        lines.append(f"  {pair['a']} and {pair['b']}: {pair['agreement']:.0%} the same on {pair['items']} items, "
                     f"kappa {_figure(pair['kappa'], pair['interval'])}")
    lines += _labeller_lines(report)
    lines.append(f"  Split on {len(report['split'])} of {report['items_shared']} shared items")
    return lines


def _labeller_lines(report: dict) -> list[str]:
    """Per labeller: how many they labelled, how often they agree with the others' majority, how fast."""
    lines = []
    for person in report["labellers"]:
        with_majority = (f"agrees with the others' majority on {person['agrees_with_majority']:.0%} of "
                         f"{person['compared']}" if person["compared"] else "no item to compare with others")
        speed = f", {person['seconds_per_label']:g} s per label" if person["seconds_per_label"] is not None else ""
        lines.append(f"  {person['name']}: {person['labelled']} labelled, {with_majority}{speed}")
    return lines


def _figure(value: float | None, interval: list[float] | None) -> str:
    if value is None:
        return "undefined (every label the same)"
    return f"{value:.2f}" + (f" (95% interval {interval[0]:.2f} to {interval[1]:.2f})" if interval else "")
