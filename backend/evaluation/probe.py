"""The forgetting probe: about 40 everyday questions (backend/evaluation/probe_questions.yaml) answered by the base model
and by the tuned one after every run, each graded by its rule, reported by category.

How the counts work: `asked` questions; `base_right` of them the base model (the same model with the
adapter disabled) answers right; `kept` of those the tuned model still answers right. A question the base
model gets wrong is neither kept nor lost (the tuned model getting it right counts in `gained`)."""
import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

from backend import workspace
from backend.answers import GREEDY
from backend.evaluation.grading import grade, load_probe_set
from backend.models.pool import generate_texts

# A run that loses more than this share of the answers the base model got right gets a warning: with 40 questions,
# 13 or more. The line sits above what tuning costs by itself (a run on nothing but the model's own everyday answers,
# with nothing new to learn, loses some of them too) and below what a run without the rehearsal loses; the runs that
# place it are in docs/benchmarks.md, "Where the warning's line belongs, strictly graded" (benchmarks/probe_floor.py).
PROBE_WARN_SHARE = 0.3

# How answers are batched is part of what the base answers depend on (padding changes the arithmetic slightly), so
# base answers cached under another batching are made again.
ANSWERING = "one batch, a budget per row"


def run_probe(peft_model, tokenizer, config: dict | None = None) -> dict:
    """Ask every probe question with the adapter on and off (one model in memory) and compare.
    `config`: the run's settings (a dict), to make the suggestion after a warning concrete."""
    start = time.time()
    probe_set = load_probe_set()
    tuned = answers_with_ends(peft_model, tokenizer, probe_set.questions)
    base = base_answers(peft_model, tokenizer, probe_set.questions)
    # tuned_ended: whether the answer ended before its token budget (the report card counts a way of answering in
    # the tuned answers, and a cut one may not have reached it).
    items = [{"question": q.question, "category": q.category, "base": b, "tuned": t, "tuned_ended": ended,
              "base_right": grade(b, q.rule, probe_set, question=q.question),
              "tuned_right": grade(t, q.rule, probe_set, question=q.question)}
             for q, b, (t, ended) in zip(probe_set.questions, base, tuned)]
    result = probe_result(items, probe_set.categories, config)
    result["seconds"] = round(time.time() - start, 1)
    return result


def base_answers(peft_model, tokenizer, questions) -> list[str]:
    """The base model's answers (adapter disabled), from the cache when this model, precision and question
    set were probed before."""
    path = base_cache_path(peft_model, tokenizer, questions)
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:  # unreadable: make it again
            path.unlink(missing_ok=True)
    with peft_model.disable_adapter():
        answers = answer_all(peft_model, tokenizer, questions)
    path.parent.mkdir(parents=True, exist_ok=True)
    workspace.write_text_atomic(path, json.dumps(answers, ensure_ascii=False))
    return answers


def base_cache_path(peft_model, tokenizer, questions) -> Path:
    return workspace.model_cache() / "probe" / f"{_base_key(peft_model, tokenizer, questions)}.json"


def _base_key(peft_model, tokenizer, questions) -> str:
    """What the base answers depend on: the weights (folder and its files' sizes and times), the precision and
    quantization, the device, the chat template (it adds the default system turn) and each question with its
    token budget."""
    base = peft_model.get_base_model()
    folder = Path(str(base.config.name_or_path))
    files = sorted((f.name, f.stat().st_size, f.stat().st_mtime_ns) for f in folder.glob("*.safetensors")) \
        if folder.is_dir() else []
    quantization = getattr(base.config, "quantization_config", None)
    parts = [ANSWERING, str(folder), files, str(base.dtype), str(base.device.type),
             quantization.to_dict() if hasattr(quantization, "to_dict") else repr(quantization),
             str(getattr(tokenizer, "chat_template", "")), [(q.question, q.max_new_tokens) for q in questions]]
    return hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()[:16]


def answer_all(model, tokenizer, questions) -> list[str]:
    """Answers in order (answers_with_ends without the ends)."""
    return [text for text, _ in answers_with_ends(model, tokenizer, questions)]


def answers_with_ends(model, tokenizer, questions) -> list[tuple[str, bool]]:
    """(answer, ended before its budget) in order, all in one batch, each row stopping at its own token budget: the
    batch takes as many steps as the longest budget (64), where one batch per budget took their sum (176), and a
    step of 40 rows costs about what a step of 8 does on this CPU (reading the weights is most of it)."""
    budgets = [q.max_new_tokens for q in questions]
    return generate_texts(model, tokenizer, [q.question for q in questions],
                          replace(GREEDY, max_new_tokens=max(budgets, default=1)), batch_size=max(len(questions), 1),
                          row_max_new_tokens=budgets)


def probe_result(items: list[dict], categories: dict, config: dict | None = None) -> dict:
    """Counts overall and by category, the summary sentence, and a warning with one suggestion when the run
    lost more than PROBE_WARN_SHARE of what the base model got right."""
    by_category = {}
    for name in categories:
        mine = [i for i in items if i["category"] == name]
        if mine:
            base_right = sum(i["base_right"] for i in mine)
            kept = sum(i["base_right"] and i["tuned_right"] for i in mine)
            by_category[name] = {"asked": len(mine), "base_right": base_right, "kept": kept, "lost": base_right - kept}
    base_right = sum(i["base_right"] for i in items)
    kept = sum(i["base_right"] and i["tuned_right"] for i in items)
    lost = {name: c["lost"] for name, c in by_category.items() if c["lost"]}
    result = {"asked": len(items), "base_right": base_right, "kept": kept,
              "gained": sum(i["tuned_right"] and not i["base_right"] for i in items),
              "by_category": by_category, "lost": lost,
              "summary": probe_summary(kept, base_right, lost, categories),
              "warning": None, "suggestion": None, "items": items}
    if base_right and (base_right - kept) / base_right > PROBE_WARN_SHARE:
        share = (base_right - kept) / base_right
        result["warning"] = (f"This run lost {base_right - kept} of the {base_right} everyday answers the base model "
                             f"got right ({share:.0%}, more than {PROBE_WARN_SHARE:.0%}): the tuning is overwriting "
                             f"what the model knew.")
        result["suggestion"] = forgetting_remedy(config)[0]
    return result


def probe_summary(kept: int, base_right: int, lost: dict | None = None, categories: dict | None = None) -> str:
    if base_right == 0:
        return "everyday answers: the base model got none of the probe questions right, so nothing to keep"
    if kept == base_right:
        return f"everyday answers kept: {kept} of {base_right} (all kept)"
    where = lost_in_words(lost, categories)
    return f"everyday answers kept: {kept} of {base_right} (lost {where})" if where else \
        f"everyday answers kept: {kept} of {base_right}"


def lost_in_words(lost: dict | None, categories: dict | None = None) -> str:
    """'1 fact, 3 sums': the answers lost per category, each named in the singular or plural (the probe set's
    categories by default)."""
    categories = load_probe_set().categories if categories is None else categories
    return ", ".join(f"{n} {_label(categories.get(name), name, n)}" for name, n in (lost or {}).items())


def forgetting_remedy(config: dict | None) -> tuple[str, dict]:
    """One suggestion against forgetting, and the settings that carry it out (for the Train tab to pre-fill).
    Without the run's settings, the sentence names the settings without values."""
    config = config or {}
    method = config.get("method", "sft")
    rate = config.get("learning_rate")
    settings = {"learning_rate": float(f"{rate / 2:.2g}")} if rate else {}
    rate_text = f"halve the learning rate (to {settings['learning_rate']:g})" if rate else "lower the learning rate"
    if method == "dpo":
        beta = config.get("beta")
        if beta:
            settings["beta"] = min(10.0, beta * 2)
        beta_text = f"double beta (to {settings['beta']:g})" if beta else "raise beta"
        return f"Train again and {rate_text}, or {beta_text} so the model stays closer to the base.", settings
    rehearsed = config.get("rehearsal")
    if rehearsed is not None:
        settings["rehearsal"] = min(400, max(60, rehearsed * 2))
    more = f"raise rehearsal (to {settings['rehearsal']})" if rehearsed is not None else "raise rehearsal"
    return f"Train again and {rate_text}, or {more} so more everyday answers are rehearsed.", settings


def _label(category: dict | None, name: str, count: int) -> str:
    if not category:
        return name
    return category["one"] if count == 1 else category["many"]
