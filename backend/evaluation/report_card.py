"""A run's report card: did it learn (held-back examples before and after), did it keep what it knew (the
probe), do people prefer it (blind A/B win-rates), what the diagnosis says, with which settings and data.
One dict for `runs --json`, and the same as Markdown for the exported model card."""
from __future__ import annotations

import json

from backend.labels.winrate import win_rates
from backend.words import plural


def preferred(db, run_id: str, rates: dict | None = None) -> list[dict]:
    """The blind A/B pairs this run was judged in, seen from its side: {against, votes, wins, losses, ties,
    both_bad, win_rate, interval}. rates: win_rates(db, run_id=run_id), where the caller has it already."""
    mine = []
    for pair in (rates or win_rates(db, run_id=run_id))["pairs"]:
        if run_id not in (pair["a"], pair["b"]):
            continue
        first = pair["a"] == run_id
        rate = pair["a_win_rate"] if first else round(1 - pair["a_win_rate"], 4)
        low, high = pair["interval"]
        mine.append({"against": pair["b"] if first else pair["a"], "votes": pair["votes"],
                     "wins": pair["a_wins"] if first else pair["b_wins"],
                     "losses": pair["b_wins"] if first else pair["a_wins"], "ties": pair["ties"],
                     "both_bad": pair["both_bad"], "win_rate": rate,
                     "interval": [low, high] if first else [round(1 - high, 4), round(1 - low, 4)]})
    return mine


def learned_verdict(run: dict) -> dict:
    """Did it learn? {"learned": True/False/None (nothing to judge by), "words": one sentence}, from a run record or
    the summary `train --json` prints. The behaviour decides (backend/evaluation/behaviour.py: what share of the held-back answers
    show what the examples teach, and no finding that says otherwise). Where the examples share no phrase there is
    nothing to count, and chrF alone does not make a verdict: `learned` is None, and the words say how close it got."""
    from backend.evaluation.diagnosis import NOT_LEARNED
    heldout = run.get("heldout") or {}
    behaviour = heldout.get("behaviour")
    against = [f for f in run.get("diagnosis") or [] if f["code"] in NOT_LEARNED]
    if run.get("status") not in (None, "done"):
        return {"learned": None, "words": "Not checked: the run did not run to its end."}
    if behaviour and behaviour.get("learned") is not None:
        learned = bool(behaviour["learned"]) and not against
        head = "Learned" if learned else (against[0]["title"] if against else "Not learned")
        if against and against[0]["code"] in ("only_like_examples", "not_in_other_words"):
            return {"learned": False, "words": f"{head}. {against[0]['detail']}"}  # the held-back answers alone say yes
        words = f"{head}. On the held-back examples it {behaviour['summary']}"
        if learned and behaviour.get("reworded"):
            words += f"; asked about itself in other words, it {behaviour['reworded']['summary']}"
        return {"learned": learned, "words": words + "."}
    if heldout.get("count"):
        # chrF alone cannot say it: a playful style learned in 2 of 8 answers still rose from 27.6 to 30.2.
        closer = "closer to" if heldout["tuned_mean"] - heldout["base_mean"] > 1 else "no closer to"
        return {"learned": None, "words": f"Not measured: the examples' answers share no phrase, nor a mark that "
                f"opens or closes them, that the base model's lack, so there is nothing to count in the held-back "
                f"answers. Word for word they are {closer} the references ({heldout['metric']} {heldout['base_mean']} "
                f"before, {heldout['tuned_mean']} after)."}
    return {"learned": None, "words": "Not checked: the run held no examples back."}


def report_card(db, run: dict) -> dict:
    heldout = run.get("heldout") or {}
    probe = run.get("probe") or {}
    rates = win_rates(db, run_id=run["id"])  # the labels read once for the votes and the choices left out
    return {
        "verdict": learned_verdict(run),
        "learned": {k: heldout.get(k) for k in ("metric", "count", "base_mean", "tuned_mean", "tuned_better",
                                                  "tuned_worse")} if heldout else None,
        "kept": {k: probe.get(k) for k in ("asked", "base_right", "kept", "gained", "lost", "summary", "warning",
                                             "suggestion")} if probe else None,
        "preferred": preferred(db, run["id"], rates),
        # The choices about this run that the win-rates above leave out, in the words the Runs tab and `labels stats`
        # say ('' when none): without it the votes read as if every choice counted.
        "preferred_left_out": rates["left_out"],
        "diagnosis": run.get("diagnosis"),
        "settings": run["config"],
        "data": {"dataset": run["config"].get("dataset"),
                 **{k: v for k, v in (run.get("outcome") or {}).items() if k != "early_stopping"}},
        "early_stopping": (run.get("outcome") or {}).get("early_stopping"),
    }


def card_markdown(card: dict, settings: bool = True) -> list[str]:
    """The report card as Markdown lines (sections of the model card); `settings`: end with them as JSON."""
    lines = ["## Did it learn? Held-back examples, before and after", ""]
    if card.get("verdict") and card["verdict"]["learned"] is not None:
        lines += [f"**{card['verdict']['words']}**", ""]
    learned = card["learned"]
    if learned and learned.get("count"):
        lines.append(f"{plural(learned['count'], 'example')} the training never saw, answered by the base model and the tuned "
                     f"one, scored with {learned['metric']} against the reference answer (0 to 100): base "
                     f"{learned['base_mean']}, tuned {learned['tuned_mean']}; the tuned answer scored higher on "
                     f"{learned['tuned_better']}, lower on {learned['tuned_worse']}.")
    elif card.get("verdict") and card["verdict"]["learned"] is None:  # why not: stopped before its end, or none held
        lines.append(card["verdict"]["words"])
    else:
        lines.append("No held-back examples were checked (the run held none back).")
    lines += ["", "## Did it keep what it knew? The forgetting probe's everyday questions", ""]
    kept = card["kept"]
    if kept:
        lines.append(kept["summary"][:1].upper() + kept["summary"][1:] + ".")
        if kept.get("warning"):
            lines += ["", f"**Warning:** {kept['warning']} {kept.get('suggestion') or ''}".rstrip()]
    else:
        lines.append("Not checked for this run.")
    lines += ["", "## Do people prefer it? Blind A/B votes", ""]
    if card["preferred"]:
        lines += ["| against | votes | wins | ties | losses | win-rate (ties count half) | 95% interval |",
                  "|---|---|---|---|---|---|---|"]
        for p in card["preferred"]:
            lines.append(f"| {p['against']} | {p['votes']} | {p['wins']} | {p['ties']} | {p['losses']} | "
                         f"{p['win_rate']:.0%} | {p['interval'][0]:.0%} to {p['interval'][1]:.0%} |")
    else:
        lines.append("No blind A/B votes yet.")
    if card.get("preferred_left_out"):
        lines += ["", card["preferred_left_out"]]
    lines += ["", "## Diagnosis", ""]
    diagnosis = card["diagnosis"]
    if diagnosis is None:
        lines.append("None: the run did not run to its end.")
    elif not diagnosis:
        lines.append("Nothing looked wrong in the curves or the everyday answers.")
    for finding in diagnosis or []:
        lines.append(f"- **{finding['title']}.** {finding['detail']} Next: {finding['next_step']}")
    data = card["data"]
    lines += ["", "## Data", "", f"- Dataset: {data.get('dataset')}"]
    for key, words in (("train_examples", "Training examples"), ("heldout_examples", "Held back to check learning"),
                       ("everyday_mixed", "Everyday answers of the base model rehearsed"),
                       ("everyday_their_way", "Of them, answered in the examples' way")):
        if data.get(key) is not None:
            lines.append(f"- {words}: {data[key]}")
    if card["early_stopping"]:
        lines.append(f"- Early stopping: {card['early_stopping']['note']}")
    if settings:
        lines += ["", "## Settings", "", "```json", json.dumps(card["settings"], indent=2), "```"]
    return lines
