"""The forgetting guard: answers the base model itself gives to everyday prompts, mixed into SFT data (or into
KTO data as answers marked good).

Training on a few dozen examples of one behaviour teaches the model to answer everything that way
(docs/facts.md: 0 of 5 everyday answers kept by a naive run). Rehearsing its own everyday answers keeps them.
The answers are generated once per base model and cached next to it. The web app makes them for the built-in
model when it starts (prepare_everyday, in the background), so that a first run does not wait for them before
its first step.
"""
import hashlib
import json
from dataclasses import replace

from backend import workspace
from backend.answers import GREEDY
from backend.everyday import REPLAY_PROMPTS
from backend.grading import grade, load_probe_set, load_replay_rules
from backend.model_pool import generate_texts


def everyday_key(model_path: str, quantization: str, base_adapter=None) -> str:
    """What the cached answers depend on: the base model, how it is loaded, and the adapter a run builds on."""
    return f"{model_path}|{quantization}|{base_adapter or ''}"


def prepare_everyday(model: str | None = None, count: int | None = None) -> bool:
    """Convert `model` (the built-in one by default) if needed and cache its everyday answers, as a run with the
    default settings would make them before its first step. Returns True when they had to be generated."""
    from backend.config import RunConfig
    from backend.models import detect_hardware, load_model, load_tokenizer, resolve_model

    defaults = RunConfig()
    count = defaults.keep_everyday if count is None else count
    path = str(resolve_model(model))
    hardware = detect_hardware()
    quantization = hardware.quantization(defaults.quantization)
    key = everyday_key(path, quantization)
    if count <= 0 or _cache_file(key, REPLAY_PROMPTS[:count]).exists():
        return False
    replay_examples(load_model(path, quantization, hardware), load_tokenizer(path), key, count)
    return True


def replay_examples(model, tokenizer, model_key: str, count: int, method: str = "sft") -> list[dict]:
    """`count` everyday answers as rows for `method`: SFT examples, or KTO answers marked good."""
    if count <= 0:
        return []
    prompts = REPLAY_PROMPTS[:count]
    answers = _cached_answers(model, tokenizer, model_key, prompts)
    pairs = [([{"role": "user", "content": p}], [{"role": "assistant", "content": a}]) for p, a in zip(prompts, answers)
             if right(p, a)]
    if method == "kto":
        return [{"prompt": prompt, "completion": answer, "label": True} for prompt, answer in pairs]
    return [{"messages": prompt + answer} for prompt, answer in pairs]


def right(prompt: str, answer: str) -> bool:
    """Whether the base model's `answer` is worth rehearsing: it ended (see _cached_answers) and passes the
    prompt's rule in backend/replay_rules.yaml, if it has one. Rehearsing a wrong answer teaches it."""
    rule = load_replay_rules().get(prompt)
    return bool(answer) and (rule is None or grade(answer, rule, load_probe_set()))


def _cache_file(model_key: str, prompts: list[str]):
    digest = hashlib.sha256(json.dumps([model_key, prompts]).encode()).hexdigest()[:16]
    return workspace.model_cache() / "replay" / f"{digest}.json"


def _cached_answers(model, tokenizer, model_key: str, prompts: list[str]) -> list[str]:
    path = _cache_file(model_key, prompts)
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
