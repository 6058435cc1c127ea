"""The forgetting probe: everyday questions answered by the base and the tuned model, after every run."""
from dataclasses import replace

from backend.answers import GREEDY
from backend.everyday import PROBE, answer_is_right
from backend.model_pool import generate_texts

SAMPLING = replace(GREEDY, max_new_tokens=48)


def run_probe(peft_model, tokenizer) -> dict:
    """Ask the probe questions with the adapter on and off (one model in memory) and compare."""
    questions = [q for q, _ in PROBE]
    tuned = [text for text, _ in generate_texts(peft_model, tokenizer, questions, SAMPLING)]
    with peft_model.disable_adapter():
        base = [text for text, _ in generate_texts(peft_model, tokenizer, questions, SAMPLING)]
    items = []
    for (question, pattern), b, t in zip(PROBE, base, tuned):
        items.append({"question": question, "base": b, "tuned": t,
                      "base_right": answer_is_right(b, pattern), "tuned_right": answer_is_right(t, pattern)})
    base_right = sum(i["base_right"] for i in items)
    kept = sum(i["base_right"] and i["tuned_right"] for i in items)
    return {"asked": len(items), "base_right": base_right, "kept": kept,
            "summary": probe_summary(kept, base_right), "items": items}


def probe_summary(kept: int, base_right: int) -> str:
    if base_right == 0:
        return "everyday answers: the base model got none of the probe questions right, so nothing to keep"
    verdict = "all kept" if kept == base_right else ("most kept" if kept * 5 >= base_right * 4 else "some forgotten")
    return f"everyday answers kept: {kept} of {base_right} ({verdict})"
