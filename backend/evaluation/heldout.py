"""Learned? The run's held-back (validation) examples answered twice, by the base model (adapter disabled)
and by the tuned one, each answer scored against the example's reference answer with chrF (sacrebleu).

The reference: an SFT row's last assistant message; a DPO row's chosen answer; a KTO row's completion when
the row is marked good (rows marked bad have no answer to aim at and are left out).
chrF compares character n-grams (0 to 100), so it gives partial credit to a near-miss, works for any
language and needs no tokenizer; it says how close the words are, not whether the answer is right."""
from dataclasses import replace

import sacrebleu
from sacrebleu.metrics import CHRF

from backend.answers import GREEDY, decoded
from backend.models.pool import generate_texts

# At most this many held-back examples are answered (twice each), so the check stays a minute or two on a CPU.
HELDOUT_LIMIT = 32
# Answers are cut at the reference's length plus this many tokens, and never longer than HELDOUT_MAX_NEW_TOKENS:
# what lies beyond the reference's length cannot raise the score, and generating it costs most of the time.
HELDOUT_SLACK_TOKENS = 16
HELDOUT_MAX_NEW_TOKENS = 96
BATCH_SIZE = 16
METRIC = "chrF"


def heldout_comparison(peft_model, tokenizer, eval_rows: list[dict], limit: int = HELDOUT_LIMIT,
                       max_new_tokens: int = HELDOUT_MAX_NEW_TOKENS, parts: list | None = None,
                       base_answers: list[str] | None = None) -> dict:
    """Base and tuned answers to the held-back examples, each scored against the reference, and the means.
    `parts`: the behaviour's signature (backend/evaluation/behaviour.py), scored on both sets of answers when given.
    `base_answers`: the base model's answers, when they were made already (during training, with the same budgets)."""
    cases = heldout_cases(eval_rows)
    used = cases[:limit]
    tuned = answer_cases(peft_model, tokenizer, used, max_new_tokens)
    if base_answers is None or len(base_answers) != len(used):
        with peft_model.disable_adapter():
            base_answers = answer_cases(peft_model, tokenizer, used, max_new_tokens)
    result = score_answers(used, base_answers, tuned, available=len(cases), limit=limit, max_new_tokens=max_new_tokens)
    if parts:
        result["behaviour"] = behaviour_result(used, base_answers, tuned, parts,
                                               visible_references(tokenizer, used, max_new_tokens))
    return result


def visible_references(tokenizer, cases: list[dict], max_new_tokens: int = HELDOUT_MAX_NEW_TOKENS) -> list[str]:
    """Each reference as far as an answer can reach (answers are cut at max_new_tokens): a part the reference says
    only past that point cannot be asked of the answer."""
    visible = []
    for case in cases:
        ids = tokenizer(case["reference"], add_special_tokens=False)["input_ids"]
        visible.append(case["reference"] if len(ids) <= max_new_tokens else
                       decoded(tokenizer, ids[:max_new_tokens]))
    return visible


def behaviour_result(cases: list[dict], base: list[str], tuned: list[str], parts: list,
                     references: list[str] | None = None) -> dict:
    """The behaviour's parts carried by the base and the tuned answers, whether that counts as learned, in words.
    `references`: the cases' references as far as the answers reach (visible_references); the whole ones if None."""
    from backend.evaluation.behaviour import behaviour_score, describe, learned
    references = references or [c["reference"] for c in cases]
    tuned_score, base_score = behaviour_score(references, tuned, parts), behaviour_score(references, base, parts)
    return {"signature": [p.to_dict() for p in parts], "tuned": tuned_score, "base": base_score,
            "learned": learned(tuned_score), "summary": describe(tuned_score, base_score)}


def answer_cases(model, tokenizer, cases: list[dict], max_new_tokens: int = HELDOUT_MAX_NEW_TOKENS) -> list[str]:
    """Greedy answers to held-back cases, each cut at its reference's length plus HELDOUT_SLACK_TOKENS."""
    budgets = [min(max_new_tokens, len(tokenizer(c["reference"], add_special_tokens=False)["input_ids"])
                   + HELDOUT_SLACK_TOKENS) for c in cases]
    return _answers(model, tokenizer, [c["messages"] for c in cases], budgets) if cases else []


def heldout_cases(rows: list[dict]) -> list[dict]:
    """The rows that have a reference answer, as {messages (the conversation to answer), prompt (its last
    user message), reference}, in order."""
    cases = []
    for row in rows:
        if "messages" in row:
            messages = list(row["messages"])
            last = max((i for i, m in enumerate(messages) if m["role"] == "assistant"), default=None)
            if last is None:
                continue
            prompt, reference = messages[:last], messages[last]["content"]
        elif "chosen" in row:
            prompt, reference = _messages(row["prompt"]), _text(row["chosen"])
        elif "completion" in row:
            if row.get("label") is not True:
                continue
            prompt, reference = _messages(row["prompt"]), _text(row["completion"])
        else:
            continue
        users = [m["content"] for m in prompt if m["role"] == "user"]
        if users and str(reference).strip():
            cases.append({"messages": prompt, "prompt": users[-1], "reference": str(reference)})
    return cases


def score_answers(cases: list[dict], base: list[str], tuned: list[str], **record) -> dict:
    """The JSON-able result: per example the prompt, reference, both answers and their scores; the means."""
    chrf = CHRF()
    examples = []
    for case, b, t in zip(cases, base, tuned):
        examples.append({"prompt": case["prompt"], "reference": case["reference"], "base": b, "tuned": t,
                         "base_score": round(chrf.sentence_score(b, [case["reference"]]).score, 2),
                         "tuned_score": round(chrf.sentence_score(t, [case["reference"]]).score, 2)})
    mean = (lambda key: round(sum(e[key] for e in examples) / len(examples), 2)) if examples else (lambda key: None)
    return {"metric": METRIC, "metric_detail": f"chrF from sacrebleu {sacrebleu.__version__} (character n-grams up to {chrf.char_order}, "
                                                  f"beta {chrf.beta}), 0 to 100, higher is closer",
            "examples": examples, "count": len(examples), "base_mean": mean("base_score"),
            "tuned_mean": mean("tuned_score"),
            "tuned_better": sum(e["tuned_score"] > e["base_score"] for e in examples),
            "tuned_worse": sum(e["tuned_score"] < e["base_score"] for e in examples), **record}


def _answers(model, tokenizer, conversations: list, budgets: list[int]) -> list[str]:
    """Answers in order; examples of similar length are batched together, each batch cut at its own budget."""
    order = sorted(range(len(conversations)), key=lambda i: budgets[i])
    answers = [""] * len(conversations)
    for start in range(0, len(order), BATCH_SIZE):
        chunk = order[start:start + BATCH_SIZE]
        texts = generate_texts(model, tokenizer, [conversations[i] for i in chunk],
                               replace(GREEDY, max_new_tokens=max(budgets[i] for i in chunk)), batch_size=len(chunk))
        for i, (text, _) in zip(chunk, texts):
            answers[i] = text
    return answers


def _messages(prompt) -> list[dict]:
    return [{"role": "user", "content": prompt}] if isinstance(prompt, str) else list(prompt)


def _text(answer) -> str:
    if isinstance(answer, str):
        return answer
    return next((m["content"] for m in reversed(answer) if m["role"] == "assistant"), "")
