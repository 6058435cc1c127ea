"""The rehearsal: answers the base model itself gives to everyday prompts (rehearsal_prompts.py), mixed into SFT
data (or into KTO data as answers marked good), so that the tuned model keeps answering them. The `rehearsal`
setting says how many prompts.

Training on a few dozen examples of one behaviour teaches the model to answer everything that way
(docs/facts.md: 0 of 5 everyday answers kept by a naive run); rehearsing its own everyday answers keeps them.
The answers are generated once per base model and cached next to it. The web app makes them for the built-in
model when it starts (prepare_rehearsal, in the background), so that a first run does not wait for them before
its first step. For the built-in model on a CPU in float32 they are made ahead and shipped
(backend/evaluation/rehearsal_builtin.json, written by scripts/rehearsal_builtin.py): generated there, they would
hold up a brand-new workspace's first run.

Where the examples answer every kind of question in one way (in_their_way), a run answers the rehearsed prompts
again in that way before its first step: those answers depend on the examples, so they are made for each run (and
kept in its folder for a resume), not cached.
"""
import hashlib
import json
import random
from dataclasses import replace
from pathlib import Path

from backend import workspace
from backend.answers import GREEDY
from backend.evaluation.rehearsal_prompts import REHEARSAL_PROMPTS
from backend.evaluation.grading import grade, load_probe_set, load_rehearsal_rules
from backend.models.pool import generate_texts

# How the everyday answers are made: greedy, up to 96 tokens (an answer cut off there is not rehearsed), 32 at a time.
GENERATION = replace(GREEDY, max_new_tokens=96)
BATCH_SIZE = 32
SHIPPED = Path(__file__).with_name("rehearsal_builtin.json")


def rehearsal_key(model_path: str, quantization: str, base_adapter=None) -> str:
    """What the cached answers depend on: the base model, how it is loaded, and the adapter a run builds on."""
    return f"{model_path}|{quantization}|{base_adapter or ''}"


def prepare_rehearsal(model: str | None = None, count: int | None = None) -> bool:
    """Convert `model` (the built-in one by default) if needed and cache its everyday answers, as a run with the
    default settings would make them before its first step. Returns True when the cache had to be filled (from the
    shipped answers of the built-in model, or by generating them)."""
    from backend.config import RunConfig
    from backend.models.loading import detect_hardware, load_model, load_tokenizer, resolve_model

    defaults = RunConfig()
    count = defaults.rehearsal if count is None else count
    path = str(resolve_model(model))
    hardware = detect_hardware()
    quantization = hardware.quantization(defaults.quantization)
    key = rehearsal_key(path, quantization)
    if count <= 0 or _cache_file(key, REHEARSAL_PROMPTS[:count]).exists():
        return False
    rehearsal_examples(load_model(path, quantization, hardware), load_tokenizer(path), key, count)
    return True


def rehearsal_examples(model, tokenizer, model_key: str, count: int, method: str = "sft") -> list[dict]:
    """`count` everyday answers as rows for `method`: SFT examples, or KTO answers marked good."""
    if count <= 0:
        return []
    prompts = REHEARSAL_PROMPTS[:count]
    answers = _cached_answers(model, tokenizer, model_key, prompts)
    pairs = [([{"role": "user", "content": p}], [{"role": "assistant", "content": a}]) for p, a in zip(prompts, answers)
             if right(p, a)]
    if method == "kto":
        return [{"prompt": prompt, "completion": answer, "label": True} for prompt, answer in pairs]
    return [{"messages": prompt + answer} for prompt, answer in pairs]


# How many of the person's examples go before each everyday prompt when the rehearsal is answered in their way, and
# how long each may be: with 3 in the conversation the built-in model answered 31 to 35 of 60 everyday prompts as
# JSON with fixed keys and right (docs/benchmarks.md, "Rehearsing everyday answers in the examples' own way");
# longer conversations cost generation time on a CPU.
THEIR_WAY_SHOTS = 3
SHOT_CHARACTERS = 600
# Which examples are shown decides how many answers come out their way (7 to 27 of 45 for one JSON task, three
# examples at a time): the prompts not yet answered their way are asked again with other examples, this many times
# in all (25 and 27 of 45 over three tries).
THEIR_WAY_TRIES = 3


def in_their_way(model, tokenizer, rows: list[dict], examples: list[dict], seed: int,
                 log=lambda line: None) -> tuple[list[dict], int]:
    """SFT rehearsal `rows` answered in the way of the person's `examples`, where the examples have a way that frames
    nearly every answer (behaviour.way_of_answering: a JSON object's keys, not a voice whose openings vary) and the
    answer can be checked: each prompt that has a rule is answered again by the base model with THEIR_WAY_SHOTS short
    examples (picked by `seed`; other ones for those still waiting, THEIR_WAY_TRIES times in all) before it in the
    conversation, and that answer replaces the plain one when it ended, shows the way (as valid JSON of the same keys
    and types, where the examples' answers are such JSON) and passes the rule. A prompt whose answer in their way
    fails (a refusal the examples' way talks the model out of), or that has no rule to check it, keeps its plain
    answer: rehearsing a wrong answer teaches it. Returns (rows, how many are in their way).

    For examples that answer every kind of question one way, plain everyday answers teach the opposite of what the
    examples teach: the rehearsal held a JSON format to 0 of 8 held-out answers."""
    from backend.evaluation.behaviour import carries
    cases, way, short = _their_way(examples, [row["messages"][1]["content"] for row in rows])
    if not way:
        return rows, 0
    shape = json_shape([c["reference"] for c in cases])
    original = rows
    rules = load_rehearsal_rules()
    waiting = [i for i, row in enumerate(rows) if row["messages"][0]["content"] in rules]
    log(f"Your examples answer every kind of question with {' and '.join(f'“{p.text}”' for p in way)}: the base model "
        f"answers {len(waiting)} everyday questions again with some of your examples before them, to rehearse "
        "those it gets right that way too.")
    rows = list(rows)
    pick, shown = random.Random(seed), set()
    for _ in range(THEIR_WAY_TRIES):  # each try with other examples before the prompts not yet answered their way
        shots = pick.sample(short, THEIR_WAY_SHOTS)
        if frozenset(id(c) for c in shots) in shown:  # the same examples again (few short ones): nothing new to see
            continue
        shown.add(frozenset(id(c) for c in shots))
        context = [turn for c in shots for turn in ({"role": "user", "content": c["prompt"]},
                                                     {"role": "assistant", "content": c["reference"]})]
        answers = generate_texts(model, tokenizer, [context + rows[i]["messages"][:1] for i in waiting], GENERATION,
                                 batch_size=BATCH_SIZE)
        still = []
        for i, (answer, ended) in zip(waiting, answers):
            prompt = rows[i]["messages"][0]
            if ended and all(carries(answer, part) for part in way) and fits(answer, shape) \
                    and right(prompt["content"], answer):
                rows[i] = {"messages": [prompt, {"role": "assistant", "content": answer}]}
            else:
                still.append(i)
        waiting = still
        if not waiting:
            break
    changed = sum(a is not b for a, b in zip(rows, original))
    if not changed:
        log("None of them came out in your examples' way and right: the everyday answers are rehearsed plain.")
    return rows, changed


def _their_way(examples: list[dict], plain_answers: list[str]) -> tuple[list[dict], list, list[dict]]:
    """(the examples' cases, the way that frames their answers, the short ones to show): no way where there are too
    few short examples to show it. The way is found against the plain everyday answers: before the first step there
    are no base-model answers to the examples' own prompts, which the checks and the card find their signature against
    (behaviour_check.py); both keep only phrases the base model does not say, so a JSON object's keys are found by
    either."""
    from backend.evaluation.behaviour import way_of_answering
    from backend.evaluation.heldout import heldout_cases
    cases = heldout_cases(examples)
    short = [c for c in cases if all(m["role"] != "assistant" for m in c["messages"])
             and len(c["prompt"]) + len(c["reference"]) <= SHOT_CHARACTERS]
    if len(short) < THEIR_WAY_SHOTS:
        return cases, [], short
    return cases, way_of_answering([c["reference"] for c in cases], plain_answers), short


def has_their_way(examples: list[dict], rows: list[dict]) -> bool:
    """Whether in_their_way would answer the rehearsal `rows` in the way of `examples` (nothing is answered here)."""
    return bool(_their_way(examples, [row["messages"][1]["content"] for row in rows])[1])


def rows_rehearse_their_way(rows: list[dict]) -> bool:
    """Whether an SFT run on these training rows would rehearse in their way (in_their_way), judged before it starts,
    for the time it is said to take: the examples ask about anything, and a way frames their answers against the
    built-in model's shipped everyday answers (another model's are not known before it is loaded)."""
    from backend.evaluation.behaviour import asks_about_anything
    from backend.evaluation.heldout import heldout_cases
    if not asks_about_anything([c["prompt"] for c in heldout_cases(rows)]):
        return False
    shipped = json.loads(SHIPPED.read_text())["answers"] if SHIPPED.exists() else {}
    return bool(_their_way(rows, next(iter(shipped.values()), []))[1])


def json_shape(answers: list[str]) -> dict | None:
    """{key: the value's type name} when every answer is a JSON object with the same keys, their values of one type
    each; None otherwise (no JSON to hold an answer to)."""
    shapes = set()
    for answer in answers:
        try:
            value = json.loads(answer)
        except ValueError:
            return None
        if not isinstance(value, dict):
            return None
        shapes.add(tuple(sorted((k, type(v).__name__) for k, v in value.items())))
    return dict(shapes.pop()) if len(shapes) == 1 else None


def fits(answer: str, shape: dict | None) -> bool:
    """Whether `answer` is a JSON object of `shape` (json_shape), where the examples have one: an answer in their way
    that is not valid JSON, or lacks a key, would teach that."""
    if shape is None:
        return True
    try:
        value = json.loads(answer)
    except ValueError:
        return False
    return isinstance(value, dict) and {k: type(v).__name__ for k, v in value.items()} == shape


def right(prompt: str, answer: str) -> bool:
    """Whether the base model's `answer` is worth rehearsing: it ended (see _cached_answers) and passes the
    prompt's rule in backend/evaluation/rehearsal_rules.yaml, if it has one. Rehearsing a wrong answer teaches it."""
    rule = load_rehearsal_rules().get(prompt)
    return bool(answer) and (rule is None or grade(answer, rule, load_probe_set(), question=prompt))


def _cache_file(model_key: str, prompts: list[str]):
    digest = hashlib.sha256(json.dumps([model_key, prompts]).encode()).hexdigest()[:16]
    # The folder keeps the name it was first given, "replay": model caches shared between workspaces and versions
    # then find the answers they already hold.
    return workspace.model_cache() / "replay" / f"{digest}.json"


def _cached_answers(model, tokenizer, model_key: str, prompts: list[str]) -> list[str]:
    path = _cache_file(model_key, prompts)
    if path.exists():
        try:
            cached = json.loads(path.read_text())
        except ValueError:  # unreadable (a file cut short): make it again
            cached = None
        if _one_answer_per_prompt(cached, prompts):
            return cached
        # Anything else (null, [], too few answers, numbers) would fail every run or rehearse nothing, turning the
        # rehearsal off in silence: made again.
        path.unlink(missing_ok=True)
    answers = shipped_answers(model_key, prompts, model)
    if answers is None:
        answers = generate_answers(model, tokenizer, prompts)
    path.parent.mkdir(parents=True, exist_ok=True)
    workspace.write_text_atomic(path, json.dumps(answers))
    return answers


def _one_answer_per_prompt(cached, prompts: list[str]) -> bool:
    return isinstance(cached, list) and len(cached) == len(prompts) and all(isinstance(a, str) for a in cached)


def generate_answers(model, tokenizer, prompts: list[str]) -> list[str]:
    """The model's everyday answers; "" for one cut off mid-sentence, which would teach it to stop mid-sentence."""
    return [text if ended else "" for text, ended in
            generate_texts(model, tokenizer, prompts, GENERATION, batch_size=BATCH_SIZE)]


def precision_key(model) -> str:
    """What the answers of one model file depend on besides the prompts: the device and number type it ran in."""
    parameter = next(model.parameters())
    return f"{parameter.device.type}-{str(parameter.dtype).removeprefix('torch.')}"


def builtin_fingerprint() -> str | None:
    """The built-in model file's SHA-256 (its answers are shipped for that file only), None when it is missing."""
    from backend.models.loading import embedded_gguf
    path = embedded_gguf()
    if path is None:
        return None
    digest = hashlib.sha256()
    with open(path, "rb") as file:
        for block in iter(lambda: file.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def shipped_answers(model_key: str, prompts: list[str], model) -> list[str] | None:
    """The built-in model's answers from backend/evaluation/rehearsal_builtin.json, when `model_key` is the built-in
    model as converted here (no 4-bit, no adapter), the prompts and the way of generating are those they were made
    with, the model file is the one they were made from, and `model` runs on the device and number type they were
    made in.
    None otherwise: then they are generated."""
    from backend.models.loading import embedded_folder
    if model_key != rehearsal_key(str(embedded_folder()), "none") or not SHIPPED.exists():
        return None
    shipped = json.loads(SHIPPED.read_text())
    made_with = {"max_new_tokens": GENERATION.max_new_tokens, "temperature": GENERATION.temperature,
                 "batch_size": BATCH_SIZE}
    if shipped["prompts"] != prompts or shipped["generation"] != made_with:
        return None
    answers = shipped["answers"].get(precision_key(model))
    if answers is None or shipped["gguf_sha256"] != builtin_fingerprint():
        return None
    return answers
