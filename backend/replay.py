"""The forgetting guard: answers the base model itself gives to everyday prompts, mixed into SFT data (or into
KTO data as answers marked good).

Training on a few dozen examples of one behaviour teaches the model to answer everything that way
(docs/facts.md: 0 of 5 everyday answers kept by a naive run). Rehearsing its own everyday answers keeps them.
The answers are generated once per base model and cached next to it.
"""
import hashlib
import json
from dataclasses import replace

from backend import workspace
from backend.answers import GREEDY
from backend.everyday import REPLAY_PROMPTS
from backend.model_pool import generate_texts


def replay_examples(model, tokenizer, model_key: str, count: int, method: str = "sft") -> list[dict]:
    """`count` everyday answers as rows for `method`: SFT examples, or KTO answers marked good."""
    if count <= 0:
        return []
    prompts = REPLAY_PROMPTS[:count]
    answers = _cached_answers(model, tokenizer, model_key, prompts)
    pairs = [([{"role": "user", "content": p}], [{"role": "assistant", "content": a}]) for p, a in zip(prompts, answers)
             if a]
    if method == "kto":
        return [{"prompt": prompt, "completion": answer, "label": True} for prompt, answer in pairs]
    return [{"messages": prompt + answer} for prompt, answer in pairs]


def _cached_answers(model, tokenizer, model_key: str, prompts: list[str]) -> list[str]:
    digest = hashlib.sha256(json.dumps([model_key, prompts]).encode()).hexdigest()[:16]
    path = workspace.model_cache() / "replay" / f"{digest}.json"
    if path.exists():
        try:
            return json.loads(path.read_text())
        except ValueError:  # cut short by a crash before writes became atomic: make it again
            path.unlink(missing_ok=True)
    # An answer cut off mid-sentence would teach the model to stop mid-sentence: those are left out.
    answers = [text if ended else "" for text, ended in
               generate_texts(model, tokenizer, prompts, replace(GREEDY, max_new_tokens=96), batch_size=32)]
    path.parent.mkdir(parents=True, exist_ok=True)
    workspace.write_text_atomic(path, json.dumps(answers))
    return answers
