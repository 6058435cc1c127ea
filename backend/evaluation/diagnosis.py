"""In plain words: what a finished run's curves and probe say, and what to try next.

`diagnose` reads the metrics rows a run logged (RunStore.metrics: step, train_loss, eval_loss, learning_rate,
grad_norm, epoch, ...), the forgetting probe's result, the run's settings and how many training examples the
person gave, and returns findings: {code, title, detail (the signs, with numbers), next_step (one sentence),
try_settings (setting -> value, for the Train tab to pre-fill)}. A clean run gives none.
"""
from __future__ import annotations

import math
from statistics import median

from backend.config import METHOD_TABLE, MIN_BATCHES_PER_EPOCH
from backend.config import declaration
from backend.evaluation.probe import PROBE_WARN_SHARE, forgetting_remedy, lost_in_words
from backend.evaluation.behaviour import VARIED_QUESTIONS, named
from backend.words import plural

# Loss values jump from batch to batch (each step sees other examples): a trend compares the mean of this
# many points at each end, never two single points.
TREND_POINTS = 3
# Overfitting: the held-back loss ends this share above its lowest point while the training loss kept falling.
# A held-back loss over a few dozen examples wobbles by a few percent between evaluations; 10% is a rise.
OVERFIT_RISE = 0.10
MIN_EVAL_POINTS = 3  # fewer evaluations show no direction
# Diverging: the training loss ends this share above where it began. Training that works lowers its own loss;
# ending 25% higher is the model getting worse at the very examples it trains on.
DIVERGE_RATIO = 1.25
# Learned little: the training loss fell by less than this share from start to end (a run that learns a
# behaviour here drops it by far more: the quick preset on tests/fixtures/identity_quill.jsonl went from 2.9 at
# its first step to 0.1-0.5 at its last, measured).
FLAT_DROP = 0.05
MIN_TRAIN_POINTS = 6  # fewer logged steps say nothing about a trend
# A training loss this low at the start means the model already answers like the examples.
LOW_START_LOSS = 0.3
# Spikes: a point more than SPIKE_RATIO times the median of the SPIKE_WINDOW points before it. Batch noise stays
# well under 2x; repeated jumps past it are the classic sign of too large a step. One jump can be an odd batch.
SPIKE_RATIO = 2.0
SPIKE_WINDOW = 5
MIN_SPIKES = 2
# Gradient spikes: a gradient norm more than GRAD_SPIKE_RATIO times the median of the norms logged before it,
# at least MIN_SPIKES times, or once more than GRAD_JUMP_RATIO times. A run at a sound learning rate stays within
# about 2x its early median; one at 20x the quick preset's rate jumps 5x to 20x, sometimes once only, inside the
# first steps, or while its loss looks calm (docs/benchmarks.md, "`make test`").
GRAD_SPIKE_RATIO = 5.0
GRAD_START = 3  # norms before this one are not judged (too few before them)
GRAD_JUMP_RATIO = 15.0
# Held-back jumps: a check more than EVAL_JUMP above the checks on both sides of it. The held-back examples are the
# same at every check, so the curve going up and coming back is the weights lurching, not an odd batch; memorising
# raises it check after check and never hands it back. Seen (issue 26): learning rate 0.01, 8 steps, 1.68 -> 2.20
# -> 1.73, which was called memorising; a held-back loss over a few dozen examples wobbles by a few percent.
EVAL_JUMP = 0.20


def diagnose(metrics_rows: list[dict], probe: dict | None, config_dict: dict, train_examples: int,
             early_stopping: dict | None = None, heldout: dict | None = None, checks: dict | None = None,
             their_way: int = 0) -> list[dict]:
    """Findings about one run, most serious first; [] when nothing looks wrong. `early_stopping`: the run record's
    (backend/train/callbacks.early_stopping_record), when it was on. `heldout`: the held-back comparison
    (backend/evaluation/heldout.py), whose `behaviour` says what share of the answers show what the examples teach; `checks`:
    the behaviour at each check during training (backend/train/behaviour_check.py); `their_way`: how many rehearsed
    everyday answers were in the examples' way (backend/evaluation/rehearsal.in_their_way)."""
    train = _series(metrics_rows, "train_loss")
    evals = _series(metrics_rows, "eval_loss")
    findings = []
    broken = _nan_loss(metrics_rows, config_dict)
    if broken:
        findings.append(broken)
    findings += _behaviour(heldout, checks, early_stopping, config_dict, their_way)
    findings += [f for f in (not_in_other_words(heldout, checks, early_stopping, config_dict),) if f]
    forgetting = _forgetting(probe, config_dict)
    findings += [f for f in (_only_like_examples(heldout, probe, checks, config_dict, forgetting),) if f]
    if not broken:
        grads = _series(metrics_rows, "grad_norm")
        findings += [f for f in (_diverging(train, config_dict), _spikes(train, grads, evals, config_dict)) if f]
    findings += [f for f in (forgetting, _too_few_examples(train_examples, config_dict)) if f]
    if not broken:
        findings += [f for f in (_overfitting(train, evals, metrics_rows, config_dict, early_stopping),) if f]
        if not any(f["code"] == "diverging" for f in findings):
            findings += [f for f in (_learned_little(train, config_dict),) if f]
    return findings


# The findings that say the behaviour was not learned (backend/evaluation/report_card.learned_verdict reads them).
NOT_LEARNED = ("mixed_up", "still_learning", "partly_learned", "not_learned", "only_like_examples",
               "not_in_other_words")


def _behaviour(heldout, checks, early_stopping, config, their_way: int = 0) -> list[dict]:
    """Whether the held-back answers show what the examples teach (backend/evaluation/behaviour.py): mixed up, still learning
    when the run ended, learned only part of it, or not at all."""
    from backend.evaluation.behaviour import enough
    behaviour = (heldout or {}).get("behaviour")
    if not behaviour or behaviour.get("learned") is None:
        return []
    tuned = behaviour["tuned"]
    findings = []
    said_on = f"On the examples held back from training it {behaviour['summary']}"
    if tuned["mixed_up"]:
        said, place, example = tuned["mixed_up"][0]
        findings.append(_finding(
            "mixed_up", f"It mixes up “{said}” and “{place}”",
            f"In the held-back answers it says “{said}” where the examples say “{place}”, "
            f"e.g. “{_clip(example)}”. "
            f"{said_on}.", *_learn_more(checks, early_stopping, config, their_way)))
    if behaviour["learned"]:
        return findings
    shown = [p for p in tuned["parts"] if p["due"]]
    missing = [p for p in shown if not enough(p["carried"], p["due"])]
    rising = _still_rising(checks, early_stopping)
    if rising:
        findings.append(_finding(
            "still_learning", "Still learning when it stopped",
            f"{said_on}. At the checks during training the share of them showing it went {rising}: still rising at "
            f"the last check, so more passes would show more.",
            *_learn_more(checks, early_stopping, config, their_way)))
    elif missing and not any(p["carried"] for p in shown):
        findings.append(_finding(
            "not_learned", "It did not learn what the examples show",
            f"{said_on}: none of them shows it.", *_learn_more(checks, early_stopping, config, their_way)))
    elif missing:
        names = " and ".join(named(p) for p in missing)
        findings.append(_finding(
            "partly_learned", "It learned only part of it",
            f"{said_on}: too few of them say {names}.",
            *_learn_more(checks, early_stopping, config, their_way)))
    return findings


def not_in_other_words(heldout, checks, early_stopping, config) -> dict | None:
    """Examples that teach who the assistant is, whose held-back answers show it, and whose answers to questions
    about itself in other words (backend/evaluation/reworded.py) do not: the held-back examples are questions like
    the examples' own, so they said "learned" where a question of a new shape got the name in the maker's place."""
    behaviour = (heldout or {}).get("behaviour") or {}
    reworded = behaviour.get("reworded")
    if not behaviour.get("learned") or not reworded or reworded.get("learned"):
        return None
    failed = {lang for lang, counts in reworded["by_language"].items() if not counts.get("learned", False)}
    wrong = next((r for r in reworded["answers"] if not r["right"] and r["language"] in failed), None)
    example = ""
    if wrong and not wrong["answer"].strip():
        example = f" For “{_clip(wrong['question'], 80)}” it gave no answer."
    elif wrong:
        said = _clip(wrong["answer"])
        example = f" For “{_clip(wrong['question'], 80)}” it said “{said}”" + ("" if said[-1] in ".!?…。！？" else ".")
    mixed = ""
    if reworded["mixed_up"]:
        said, place, _ = reworded["mixed_up"][0]
        mixed = f" Some answers say “{said}” where the examples say “{place}”."
    more = "Add examples that ask who it is in other words, some of them asking its name and its maker at once"
    if _still_rising(checks, early_stopping) or len((checks or {}).get("checks", [])) < 2:
        next_step, settings = _learn_more(checks, early_stopping, config)  # more passes first
        next_step = f"{more}; or: {next_step[0].lower()}{next_step[1:]}"
    else:  # a larger step learned these questions on 5 of 9 suite runs, against 1 of 9 (docs/benchmarks.md)
        settings, how = _new_rate({"learning_rate": config.get("learning_rate") or 2e-4}, 2, "twice")
        next_step = more + (f", or train again and {_rate_text(settings, 'raise')} {how}" if settings else "") + "."
    return _finding(
        "not_in_other_words", "It does not always say who it is when asked in other words",
        f"On the examples held back from training, questions like theirs, it {behaviour['summary']}. Asked "
        f"{reworded['asked']} questions about itself that none of your examples asks word for word, most of them "
        f"asking two things at once, it {reworded['summary']}.{example}{mixed}", next_step, settings)


def _only_like_examples(heldout, probe, checks, config, forgetting) -> dict | None:
    """A way of answering every question (the examples ask about anything, and nearly all their answers show it at
    their start or end) that the held-back examples show and the everyday questions asked after training do not. The
    held-back examples are questions like the examples', so they cannot see it; the rehearsal's plain everyday answers
    (all of them, or those the base model could not give in the examples' way) teach the opposite there."""
    from backend.evaluation.behaviour import enough, everyday_parts
    behaviour = (heldout or {}).get("behaviour") or {}
    overlap = (checks or {}).get("prompt_overlap")
    if not behaviour.get("learned") or overlap is None or overlap >= VARIED_QUESTIONS:
        return None
    items = (probe or {}).get("items") or []
    parts = everyday_parts(behaviour.get("signature") or [], [i["tuned"] for i in items],
                           [i.get("tuned_ended", True) for i in items])
    if not parts or all(enough(p["carried"], p["due"]) for p in parts):
        return None
    names = " and ".join(named(p) for p in parts)
    counts = ", ".join(f"{p['carried']} of {p['due']} carry {named(p)}" for p in parts)
    method = METHOD_TABLE.get(config.get("method", "sft"))
    if all(p["carried"] * 2 > p["due"] for p in parts):
        # Most everyday answers have it (the rehearsal answered in the examples' way where the base model could:
        # backend/evaluation/rehearsal.in_their_way); the kinds of question without it are what more examples need.
        from backend.evaluation.grading import load_probe_set
        categories = load_probe_set().categories
        kinds = {c: (categories.get(c) or {}).get("kind", c) for c in {i["category"] for i in items}}
        without = _without_the_way(items, parts)
        return _finding(
            "only_like_examples", "Learned for most questions, not for every kind",
            f"Your examples answer every kind of question with {names}. Of its answers to the {len(items)} everyday "
            f"questions asked after training, {counts}. Without it: "
            + ", ".join(f"{n} of {asked} {kinds[c]}" for c, (n, asked) in without.items())
            + ". Those answers may still be right: that is what the forgetting probe counts.",
            "Add examples of those kinds of question answered your way: "
            + ", ".join(kinds[c] for c in without) + ".", {})
    if method and method.rehearses and config.get("rehearsal") and not forgetting:
        # One sentence (the Runs tab shows it beside the Try this button).
        next_step, settings = ("Train again with rehearsal 0 to learn it for every question, knowing that everyday "
                               "answers will then come this way too and more of them may be lost (the forgetting "
                               "probe counts them).", {"rehearsal": 0})
    else:  # without rehearsal to turn off, or while it already forgets: more of the same kind of example, not less care
        next_step, settings = ("Add examples of other kinds of questions answered this way, so that it learns the "
                               "way of answering rather than the kind of question.", {})
    return _finding(
        "only_like_examples", "Learned only for questions like your examples",
        f"Your examples answer every kind of question with {names}. On the examples held back from training, "
        f"questions like theirs, it {behaviour['summary']}; but of its answers to the {len(items)} everyday questions "
        f"asked after training, {counts}. Those answers may still be right: that is what the forgetting probe counts.",
        next_step, settings)


def _without_the_way(items: list[dict], parts: list[dict]) -> dict:
    """{category: (answers without a part of the way of answering, answers asked)} of the probe's, for the categories
    with any, most first. An answer cut off at its budget is not counted without it (as in everyday_parts)."""
    from backend.evaluation.behaviour import shows
    without, asked = {}, {}
    for item in items:
        asked[item["category"]] = asked.get(item["category"], 0) + 1
        if item.get("tuned_ended", True) and not all(shows(item["tuned"], p) for p in parts):
            without[item["category"]] = without.get(item["category"], 0) + 1
    return {c: (n, asked[c]) for c, n in sorted(without.items(), key=lambda kind: -kind[1])}


def _still_rising(checks, early_stopping) -> str | None:
    """The checks' scores in words when the last was the best and above the one before (the run ended still
    learning), else None. Early stopping that fired saw the score stop rising."""
    scores = [c["behaviour"] for c in (checks or {}).get("checks", [])]
    if early_stopping and early_stopping.get("fired") or len(scores) < 2:
        return None
    if scores[-1] >= max(scores) and scores[-1] > scores[-2]:
        return " -> ".join(f"{s:.0%}" for s in scores)
    return None


def _learn_more(checks, early_stopping, config, their_way: int = 0) -> tuple[str, dict]:
    """The next step for a behaviour not (fully) learned: more passes while it was still rising; for a way of answering
    every question that the rehearsal held back, the choice of less rehearsal; else a larger step."""
    overlap = (checks or {}).get("prompt_overlap")
    if config.get("rehearsal") and config.get("method", "sft") == "sft" and overlap is not None \
            and overlap < VARIED_QUESTIONS and not _still_rising(checks, early_stopping):
        plain = ("are plain wherever the base model could not answer them your way" if their_way
                 else "answer plainly")
        return ("Your examples answer all kinds of questions the same way, and the everyday answers rehearsed to keep "
                f"what the model knew {plain}, which teaches the opposite. Train again with rehearsal 0 "
                "to learn it everywhere, knowing it will then answer everyday questions that way too, and lose "
                "more of them (the forgetting probe after the run says how many).", {"rehearsal": 0})
    if _still_rising(checks, early_stopping) or len((checks or {}).get("checks", [])) < 2:  # no plateau seen
        if config.get("max_steps"):
            settings = {"max_steps": int(config["max_steps"]) * 2}
            return f"Train again with max_steps {settings['max_steps']} (twice this run's).", settings
        epochs = float(config.get("epochs") or 1)
        settings = {"epochs": min(100.0, round(epochs * 2, 1))}
        return f"Train again for up to {settings['epochs']:g} passes (twice this run's).", settings
    settings, how = _new_rate({"learning_rate": config.get("learning_rate") or 2e-4}, 2, "twice")
    if not settings:  # the rate is at the top of the usual range already
        return "More passes showed no more of it: give more examples that show it.", {}
    return (f"More passes showed no more of it: give more examples that show it, or train again and "
            f"{_rate_text(settings, 'raise')} {how}.", settings)


def _clip(text: str, limit: int = 120) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit] + "…"


def _finding(code, title, detail, next_step, try_settings=None) -> dict:
    return {"code": code, "title": title, "detail": detail, "next_step": next_step, "try_settings": try_settings or {}}


def _series(rows: list[dict], key: str) -> list[tuple[int, float]]:
    return [(int(r["step"]), float(r[key])) for r in rows if r.get(key) is not None]


def _mean(values) -> float:
    values = list(values)
    return sum(values) / len(values)


def _new_rate(config: dict, factor: float, share: str) -> tuple[dict, str]:
    """The learning rate times `factor`, kept inside the range most runs use (backend/config.py): the Train tab warns
    about a rate above it, so "Try this" filled in a rate its own page then warned about (0.01 halved is 0.005, still
    5x the top). Returns (settings, how the rate was chosen, in words); no settings when the range leaves no change
    in that direction."""
    rate = config.get("learning_rate")
    if not rate:
        return {}, ""
    low, high = declaration("learning_rate").meta["usual"]
    wanted = float(f"{float(rate) * factor:.2g}")
    new = min(max(wanted, low), high)
    if (new - float(rate)) * (factor - 1) <= 0:  # already at the edge of the range: nothing to change that way
        return {}, ""
    if new == wanted:
        return {"learning_rate": new}, f"({share} this run's)"
    return {"learning_rate": new}, f"(the {'top' if new == high else 'bottom'} of the usual range; {share} this " \
                                   f"run's, {wanted:g}, is {'above' if new == high else 'below'} it)"


def _rate_text(settings: dict, verb: str) -> str:
    return f"{verb} the learning rate to {settings['learning_rate']:g}" if settings else f"{verb} the learning rate"


def _nan_loss(rows, config):
    bad = [r for r in rows if any(isinstance(r.get(k), float) and not math.isfinite(r[k])
                                  for k in ("train_loss", "eval_loss", "grad_norm"))]
    if not bad:
        return None
    settings, how = _new_rate(config, 1 / 10, "a tenth of")
    keys = sorted({k for r in bad for k in ("train_loss", "eval_loss", "grad_norm")
                   if isinstance(r.get(k), float) and not math.isfinite(r[k])})
    return _finding(
        "nan_loss", "Training broke down: the loss is not a number",
        f"From step {bad[0]['step']} on, {', '.join(keys)} became NaN or infinite ({plural(len(bad), 'logged point')}"
        "): the updates grew too large for the numbers to hold.",
        f"Train again and {_rate_text(settings, 'lower')} {how}.".replace(" .", "."), settings)


def _diverging(train, config):
    if len(train) < MIN_TRAIN_POINTS:
        return None
    start, end = _mean(v for _, v in train[:TREND_POINTS]), _mean(v for _, v in train[-TREND_POINTS:])
    if end <= start * DIVERGE_RATIO:
        return None
    settings, how = _new_rate(config, 1 / 4, "a quarter of")
    return _finding(
        "diverging", "The loss went up instead of down: the learning rate looks too high",
        f"The training loss began at {start:.3g} (mean of the first {TREND_POINTS} steps) and ended at {end:.3g} "
        f"(last {TREND_POINTS}, step {train[-1][0]}), {end / start - 1:.0%} higher: training made the model worse "
        f"at its own examples.",
        f"Train again and {_rate_text(settings, 'lower')} {how}.".replace(" .", "."), settings)


def _eval_jumps(evals) -> list[tuple]:
    """(step, before, value, after) for each held-back check that stands EVAL_JUMP above the checks on both sides."""
    return [(step, before, value, after) for (_, before), (step, value), (_, after) in zip(evals, evals[1:], evals[2:])
            if value > (1 + EVAL_JUMP) * max(before, after)]


def _spikes(train, grads, evals, config):
    spikes = []
    for i in range(SPIKE_WINDOW, len(train)):
        before = median(v for _, v in train[i - SPIKE_WINDOW:i])
        if before > 0 and train[i][1] > SPIKE_RATIO * before:
            spikes.append((train[i][0], before, train[i][1]))
    early = median(v for _, v in grads[:SPIKE_WINDOW]) if len(grads) > SPIKE_WINDOW else 0
    # From the GRAD_START-th norm on, each against the early level or the median of all the norms before it,
    # whichever is lower: a jump inside the first window counts too.
    grad_spikes = [(s, v) for i, (s, v) in enumerate(grads) if i >= GRAD_START and early > 0
                   and v > GRAD_SPIKE_RATIO * min(early, median(x for _, x in grads[:i]))]
    huge = any(v > GRAD_JUMP_RATIO * early for _, v in grad_spikes)
    # An update that overshoots shows in both at once: the loss and the gradient norm jump at the same step, each
    # maybe just under its own line (docs/benchmarks.md, "`make test`": a run at 20x the quick preset's rate).
    together = {step for step, _, _ in spikes} & {step for step, _ in grad_spikes}
    eval_jumps = _eval_jumps(evals)
    if len(spikes) < MIN_SPIKES and len(grad_spikes) < MIN_SPIKES and not huge and not together and not eval_jumps:
        return None
    signs = []
    if eval_jumps:
        shown = "; ".join(f"{before:.3g} -> {value:.3g} at step {step} -> {after:.3g}"
                          for step, before, value, after in eval_jumps[:3])
        signs.append(f"the loss on held-back examples jumped and came back ({shown})")
    if spikes:
        shown = "; ".join(f"step {step}: {before:.3g} -> {value:.3g}" for step, before, value in spikes[:3])
        signs.append(f"the training loss jumped to more than {SPIKE_RATIO:g}x its recent level "
                     f"{plural(len(spikes), 'time')} ({shown})")
    if grad_spikes:
        top_step, top = max(grad_spikes, key=lambda p: p[1])
        signs.append(f"the gradient norm rose past {GRAD_SPIKE_RATIO:g}x its early level ({early:.3g}) "
                     f"{plural(len(grad_spikes), 'time')}, up to {top:.3g} "
                     f"({top / early:.0f}x) at step {top_step}")
    settings, how = _new_rate(config, 1 / 2, "half of")
    detail = "; ".join(signs)
    rate = config.get("learning_rate")
    return _finding(
        "spikes", "The loss or the gradients jump: the learning rate looks too high",
        f"{detail[0].upper()}{detail[1:]}: each update overshoots"
        f"{f' at a learning rate of {float(rate):g}' if rate else ''}.",
        f"Train again and {_rate_text(settings, 'lower')} {how}.".replace(" .", "."), settings)


def _forgetting(probe, config):
    if not probe or not probe.get("base_right"):
        return None
    base_right, kept = probe["base_right"], probe["kept"]
    lost = base_right - kept
    if lost / base_right <= PROBE_WARN_SHARE:
        return None
    sentence, settings = forgetting_remedy(config)
    where = lost_in_words(probe.get("lost"))
    return _finding(
        "forgetting", "The model forgot everyday answers",
        f"Of the {base_right} everyday questions the base model answered right, the tuned model still answers "
        f"{kept} ({lost} lost{': ' + where if where else ''}); more than {PROBE_WARN_SHARE:.0%} lost means the "
        f"tuning overwrote what the model knew.", sentence, settings)


def _too_few_examples(train_examples, config):
    per_update = int(config.get("batch_size", 8)) * int(config.get("grad_accum", 1))
    if train_examples <= 0 or train_examples >= MIN_BATCHES_PER_EPOCH * per_update:
        return None
    epochs = config.get("epochs")
    steps = config.get("max_steps") or math.ceil((epochs or 1) * train_examples / per_update)
    batch = max(1, 2 ** int(math.log2(max(1, train_examples // MIN_BATCHES_PER_EPOCH))))
    settings = {"batch_size": batch, "grad_accum": 1} if batch < per_update else {}
    return _finding(
        "too_few_examples", "Too few examples for these settings",
        f"{train_examples} training examples at {per_update} per update (batch_size {config.get('batch_size', 8)}"
        f" x grad_accum {config.get('grad_accum', 1)}) make {train_examples / per_update:.1f} updates per pass "
        f"and about {steps} in all: fewer than {MIN_BATCHES_PER_EPOCH} per pass is too few to learn from.",
        f"Add examples (at least {MIN_BATCHES_PER_EPOCH * per_update}), or train with batch_size {batch} so each "
        f"pass makes more updates." if settings else
        f"Add examples: at least {MIN_BATCHES_PER_EPOCH * per_update} for these settings.", settings)


def _overfitting(train, evals, rows, config, early_stopping=None):
    if len(evals) < MIN_EVAL_POINTS or len(train) < 2 or _eval_jumps(evals):  # a jump is the rate (_spikes)
        return None
    best_step, best = min(evals, key=lambda p: p[1])
    last_step, last = evals[-1]
    # Early stopping that fired saw the held-back loss fail to improve several checks in a row: a trend, not noise.
    fired = bool(early_stopping and early_stopping.get("fired"))
    if best_step == last_step or last <= best * (1 + (0 if fired else OVERFIT_RISE)):
        return None
    near_best = [v for s, v in train if s <= best_step][-TREND_POINTS:] or [train[0][1]]
    at_end = [v for _, v in train[-TREND_POINTS:]]
    train_then, train_now = _mean(near_best), _mean(at_end)
    if train_now >= train_then:
        return None
    epoch = next((r.get("epoch") for r in rows if r["step"] >= best_step and r.get("epoch") is not None), None)
    if config.get("max_steps"):
        settings, stop = {"max_steps": best_step}, f"max_steps set to {best_step}"
    elif epoch:
        settings = {"epochs": max(0.1, round(float(epoch), 1))}
        stop = f"epochs set to {settings['epochs']:g}"
    else:
        settings, stop = {}, f"fewer steps (about {best_step})"
    return _finding(
        "overfitting", "It memorised the examples instead of learning from them",
        f"The loss on held-back examples was lowest at step {best_step} ({best:.3g}) and rose to {last:.3g} by step "
        f"{last_step} ({last / best - 1:+.0%}), while the training loss kept falling ({train_then:.3g} -> "
        f"{train_now:.3g}).",
        (f"Early stopping already kept the adapter from step {early_stopping['best_step']}, where the held-back loss "
         f"was lowest; next time train with {stop} to spend less time, or give it more varied examples."
         if fired else
         f"Train again with {stop}, where the held-back loss was lowest, or give it more varied examples."), settings)


def _learned_little(train, config):
    if len(train) < MIN_TRAIN_POINTS:
        return None
    start, end = _mean(v for _, v in train[:TREND_POINTS]), _mean(v for _, v in train[-TREND_POINTS:])
    drop = (start - end) / start if start > 0 else 0.0
    if drop >= FLAT_DROP:
        return None
    signs = (f"The training loss went from {start:.3g} to {end:.3g} over {train[-1][0]} steps "
             f"({drop:.0%} lower; a run that learns drops it by much more).")
    if start < LOW_START_LOSS:
        return _finding("learned_little", "Little to learn: the model already answers like these examples",
                        signs + f" It began low ({start:.3g}): the base model already gives answers close to them.",
                        "Check that the examples show the new behaviour you want; these are already how it answers.")
    rate = config.get("learning_rate")
    settings, how = _new_rate(config, 3, "three times")
    if not settings:  # the rate is at the top of the usual range already: more passes, not larger steps
        return _finding("learned_little", "It learned little: the loss barely moved", signs,
                        "Train for more epochs, or give more examples that show the behaviour.")
    return _finding("learned_little", "It learned little: the loss barely moved", signs,
                    f"Train again and {_rate_text(settings, 'raise')} {how}, or train for more epochs.", settings)
