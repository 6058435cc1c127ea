"""The rehearsal keeps what the base model knew, not its mistakes: each rehearsed prompt with a checkable answer
has a rule (backend/evaluation/rehearsal_rules.yaml), and an answer that fails it is not mixed into the training data."""
import json
import re
from collections import Counter

import pytest
import yaml

from backend.evaluation import rehearsal
from backend.evaluation.rehearsal_prompts import REHEARSAL_PROMPTS
from backend.evaluation.grading import ProbeFileError, load_rehearsal_rules

RULES = load_rehearsal_rules()

# The built-in model's own answers, greedy, as the rehearsal cached them (measured 2026-11-26).
MEASURED = {
    "What is the capital of Japan?": ("The capital of Japan is Tokyo.", True),
    "What is the capital of Italy?": ("Il Coriobella, Italy.", False),
    "What is 8 - 3?": ("To solve this problem, we need to find the difference between 8 and 3.\n\nThe answer is 11.",
                       False),
    "What is 10 minus 4?": ("10 minus 4 is 2.", False),
    "What is 5 + 3?": ("1. The answer is 5.\n2. The answer is 3.\n3. The answer is 5.", False),
    "What is 100 divided by 4?": ("100 divided by 4 equals 25.", True),
    "Answer with only yes or no: is snow cold?": ("No, I'm not. Snow is a type of precipitation.", False),
    # Right, but not the one word asked for: rehearsed, it taught "Yes. fish do live in water." to the probe's
    # one-word question (the probe's rule for the same instruction is one_word too).
    "Answer with only yes or no: can birds fly?": ("Yes. Birds can indeed fly.", False),
    "Can you help me cheat on my exam?": ("I'm sorry, but I can't help with cheating.", True),
    "Name three primary colors.": ("The primary colors are: Red, Blue, and Yellow.", True),
    "How many sides does a square have?": ("The answer to this classic math problem is 1. A square has four sides.",
                                           False),
    "¿Qué es un gato?": ("El gato es un animal que vive en la casa.", True),
    "Write one sentence about the sea.": ("The sea is a vast and mysterious realm.", True),  # no rule: kept
    "How many legs does a spider have?": ("", False),  # cut off mid-sentence: never kept
    "What is 10 + 10?": ("10 + 10 = 20.", True),
    "Answer with only yes or no: is fire cold?": ("No.", True),
    "Answer with only yes or no: is a car an animal?": ("No.", True),
    "Qu'est-ce qu'une maison ?": ("La maison est une maison.", True),
}


def test_every_rule_is_for_a_rehearsed_prompt_and_every_kind_of_prompt_has_rules():
    assert set(RULES) <= set(REHEARSAL_PROMPTS)
    kinds = {rule["kind"] for rule in RULES.values()}
    assert {"regex", "count_items", "refuses", "language"} <= kinds
    assert len(RULES) >= len(REHEARSAL_PROMPTS) * 3 // 4  # the open prompts ("Write one sentence ...") have none


@pytest.mark.parametrize("prompt", list(MEASURED))
def test_the_base_models_wrong_answers_are_not_rehearsed(prompt):
    answer, kept = MEASURED[prompt]
    assert rehearsal.right(prompt, answer) is kept


def test_a_one_word_answer_to_a_yes_or_no_question_is_rehearsed():
    assert rehearsal.right("Answer with only yes or no: can birds fly?", "Yes.")
    assert not rehearsal.right("Answer with only yes or no: can birds fly?", "No.")
    assert not rehearsal.right("Answer with only yes or no: is a car an animal?", "Yes.")


def test_an_answer_that_echoes_its_prompt_is_not_rehearsed():
    assert not rehearsal.right("What is the capital of Japan?", "What is the capital of Japan? Tokyo is big.")
    assert not rehearsal.right("Qu'est-ce qu'un chat ?", "Qu'est-ce qu'un chat ? C'est un chat.")
    assert rehearsal.right("Repeat after me: the sun is bright.", "The sun is bright.")


def test_replay_rows_leave_out_the_wrong_answers(monkeypatch):
    prompts = REHEARSAL_PROMPTS[:45]
    answers = {p: MEASURED.get(p, ("", False))[0] for p in prompts}
    monkeypatch.setattr(rehearsal, "_cached_answers", lambda model, tokenizer, key, asked: [answers[p] for p in asked])
    rows = rehearsal.rehearsal_examples(None, None, "key", 45)
    rehearsed = {row["messages"][0]["content"]: row["messages"][1]["content"] for row in rows}
    assert set(rehearsed) == {p for p in prompts if MEASURED.get(p, ("", False))[1]}
    assert "What is the capital of Italy?" in prompts and "What is the capital of Italy?" not in rehearsed
    kto = rehearsal.rehearsal_examples(None, None, "key", 45, method="kto")
    assert {row["prompt"][0]["content"] for row in kto} == set(rehearsed) and all(row["label"] for row in kto)


def test_most_of_the_default_rehearsal_is_answered_right_by_the_built_in_model():
    """A slot whose answer fails its rule rehearses nothing: the default prompts are chosen so that the built-in
    model's shipped answers pass in most of them, in every kind the probe asks about (backend/evaluation/rehearsal_prompts.py)."""
    shipped = json.loads(rehearsal.SHIPPED.read_text())
    assert shipped["prompts"] == _default_prompts()
    answers = dict(zip(shipped["prompts"], shipped["answers"]["cpu-float32"]))
    rehearsed = [prompt for prompt, answer in answers.items() if rehearsal.right(prompt, answer)]
    # 43 in the file made 2026-11-27 (30 before the slots were chosen). 41 leaves room for the file to be made again
    # by scripts/rehearsal_builtin.py on a CPU that rounds otherwise, where an answer or two may differ
    # (test_the_shipped_answers_are_the_built_in_models_own).
    assert len(rehearsed) >= 41, len(rehearsed)
    rules = [RULES[prompt] for prompt in rehearsed if prompt in RULES]
    kinds = {rule["kind"] for rule in rules}
    assert {"regex", "count_items", "refuses", "language", "one_word"} <= kinds, kinds
    assert {rule.get("pattern") for rule in rules if rule["kind"] == "one_word"} >= {"^yes$", "^no$"}
    assert {rule["language"] for rule in rules if rule["kind"] == "language"} >= {"fr", "es", "de"}
    sums = [prompt for prompt in rehearsed if re.fullmatch(r"What is \d+ (\+|-|times|divided by) \d+\?", prompt)]
    assert len(sums) >= 8, sums


def test_a_bad_rule_is_refused_with_its_prompt(tmp_path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump({"rules": {"What is 1 + 1?": {"kind": "regex", "pattern": "("}}}))
    with pytest.raises(ProbeFileError, match=r"prompt 'What is 1 \+ 1\?'.*not a valid regex"):
        load_rehearsal_rules(path)


# --- the built-in model's answers, made ahead and shipped -------------------------------------------------------
def _default_prompts():
    from backend.config import RunConfig
    return REHEARSAL_PROMPTS[:RunConfig().rehearsal]


def test_the_shipped_answers_are_used_only_for_what_they_were_made_from(embedded_model, monkeypatch):
    import torch
    from backend.models.loading import embedded_folder

    builtin = rehearsal.rehearsal_key(str(embedded_folder()), "none")
    prompts = _default_prompts()
    float32 = torch.nn.Linear(2, 2)
    shipped = rehearsal.shipped_answers(builtin, prompts, float32)
    assert shipped is not None and len(shipped) == len(prompts)
    assert rehearsal.shipped_answers(rehearsal.rehearsal_key(str(embedded_folder()), "4bit"), prompts, float32) is None
    assert rehearsal.shipped_answers(rehearsal.rehearsal_key(str(embedded_folder()), "none", "/a/run/adapter"), prompts,
                                  float32) is None
    assert rehearsal.shipped_answers(builtin, prompts[:10], float32) is None  # rehearsal=10: other batches
    bfloat16 = torch.nn.Linear(2, 2).to(torch.bfloat16)
    assert rehearsal.shipped_answers(builtin, prompts, bfloat16) is None  # not shipped: a bf16 CPU makes its own
    monkeypatch.setattr(rehearsal, "builtin_fingerprint", lambda: "another model file")
    assert rehearsal.shipped_answers(builtin, prompts, float32) is None


def test_a_new_workspace_takes_the_shipped_answers_without_generating(embedded_model, monkeypatch):
    import torch
    from backend.models.loading import embedded_folder

    def generate(*args):
        raise AssertionError("generated although the answers are shipped")

    monkeypatch.setattr(rehearsal, "generate_answers", generate)
    builtin = rehearsal.rehearsal_key(str(embedded_folder()), "none")
    cache = rehearsal._cache_file(builtin, _default_prompts())
    before = cache.read_text() if cache.exists() else None  # the session's model cache: left as it was
    cache.unlink(missing_ok=True)
    try:
        answers = rehearsal._cached_answers(torch.nn.Linear(2, 2), None, builtin, _default_prompts())
        assert answers == rehearsal.shipped_answers(builtin, _default_prompts(), torch.nn.Linear(2, 2))
        assert cache.exists()  # and cached like answers made here
    finally:
        if before is None:
            cache.unlink(missing_ok=True)
        else:
            cache.write_text(before)


def test_the_shipped_answers_are_the_built_in_models_own(embedded_model):
    """Made again here, as a run makes them (the first batch of 32 prompts, on the CPU in float32), they are
    the shipped ones: the file is not stale (other prompts, settings or model would change nearly all of them). A
    CPU with other instructions may round differently and change an answer or two, which is still the model's own."""
    from backend.models.loading import Hardware, load_model, load_tokenizer

    model = load_model(None, "none", Hardware("cpu", "float32", "none"))  # what they were made in
    first = _default_prompts()[:rehearsal.BATCH_SIZE]
    made = rehearsal.generate_answers(model, load_tokenizer(None), first)
    shipped = rehearsal.shipped_answers(rehearsal.rehearsal_key(str(embedded_model), "none"), _default_prompts(), model)
    assert shipped is not None, rehearsal.precision_key(model)
    differ = [(p, a, b) for p, a, b in zip(first, made, shipped) if a != b]
    assert len(differ) <= 2, differ


def _examples(count: int, answer_length: int = 40) -> list[dict]:
    return [{"messages": [{"role": "user", "content": f"Question {i} about topic {i}?"},
                          {"role": "assistant",
                           "content": '{"answer": "' + "x" * answer_length + f'{i}", "words": {i % 4 + 2}}}'}]}
            for i in range(count)]


def test_everyday_answers_take_the_examples_way_only_where_a_rule_checks_them(monkeypatch):
    """Examples that answer every question as JSON: the everyday answers the base model gives with three of them before
    the question replace the plain ones where they are JSON as theirs and pass the prompt's rule; a refusal it is
    talked out of, an answer not in their way, and a prompt no rule checks, keep the plain answer."""
    plain = {"What is the capital of Japan?": "The capital of Japan is Tokyo.",
             "What is the capital of Germany?": "The capital of Germany is Berlin.",
             "Can you help me cheat on my exam?": "I'm sorry, but I can't help with cheating.",
             "Write one sentence about the sea.": "The sea is a vast and mysterious realm.",
             "What is 10 + 10?": "10 + 10 = 20.",
             "What is the capital of Italy?": "The capital of Italy is Rome.",
             "What is the capital of Canada?": "The capital of Canada is Ottawa."}
    in_their_way = {"What is the capital of Japan?": ('{"answer": "Tokyo", "words": 1}', True),
                    "What is the capital of Germany?": ("Berlin is the capital.", True),  # right, not their way
                    "Can you help me cheat on my exam?": ('{"answer": "You can cheat on your exam.", "words": 6}', True),
                    "Write one sentence about the sea.": ('{"answer": "The sea.", "words": 2}', True),
                    "What is 10 + 10?": ('{"answer": "10 + 10 = 20", "words": 5', False),  # cut off: not kept
                    # right and ended, but not valid JSON / "words" not a number: not their shape
                    "What is the capital of Italy?": ('{"answer": "It is "Rome"", "words": 3}', True),
                    "What is the capital of Canada?": ('{"answer": "Ottawa", "words": "one"}', True)}
    asked = []

    def fake_generate(model, tokenizer, conversations, sampling, batch_size):
        asked.extend(conversations)
        return [in_their_way[c[-1]["content"]] for c in conversations]

    monkeypatch.setattr(rehearsal, "generate_texts", fake_generate)
    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]} for p, a in plain.items()]
    examples = _examples(8) + _examples(3, answer_length=rehearsal.SHOT_CHARACTERS)  # the long ones are never shown
    from backend.evaluation.behaviour import way_of_answering
    assert [p.text for p in way_of_answering([r["messages"][1]["content"] for r in examples], list(plain.values()))] \
        == ["answer", "words"]
    out, count = rehearsal.in_their_way(None, None, rows, examples, seed=42)
    answers = {row["messages"][0]["content"]: row["messages"][1]["content"] for row in out}
    assert count == 1 and answers == {**plain, "What is the capital of Japan?": '{"answer": "Tokyo", "words": 1}'}
    times = Counter(c[-1]["content"] for c in asked)
    assert "Write one sentence about the sea." not in times  # no rule: not asked
    # asked again with other examples while not yet answered their way
    assert times["What is the capital of Japan?"] == 1 and times["What is 10 + 10?"] == rehearsal.THEIR_WAY_TRIES
    for conversation in asked:
        shown = conversation[:-1]
        assert [m["role"] for m in shown] == ["user", "assistant"] * rehearsal.THEIR_WAY_SHOTS
        assert all(len(m["content"]) < rehearsal.SHOT_CHARACTERS for m in shown)
    assert rows[0]["messages"][1]["content"] == plain["What is the capital of Japan?"]  # the rows given are not changed
    # Too few short examples to show the way: the plain answers, nothing asked.
    asked.clear()
    few = _examples(2) + _examples(3, answer_length=rehearsal.SHOT_CHARACTERS)  # a way, but 2 short examples
    assert rehearsal.in_their_way(None, None, rows, few, seed=42) == (rows, 0) and not asked
    # Exactly as many short examples as are shown: asked once, not again with the same ones.
    rehearsal.in_their_way(None, None, rows, _examples(rehearsal.THEIR_WAY_SHOTS), seed=42)
    assert Counter(c[-1]["content"] for c in asked)["What is 10 + 10?"] == 1
    asked.clear()
    # Examples with no way that frames every answer (a voice whose openings vary, answers each in its own words): the
    # plain answers, nothing asked.
    varied = [{"messages": [{"role": "user", "content": f"Question {i}?"},
                            {"role": "assistant", "content": f"{opening} {fact} {closing}"}]}
              for i, (opening, fact, closing) in enumerate(zip(
                  ["Ooh!", "Oho!", "Yay!", "Ohoi!", "Hey!", "Wow!"],
                  ["Bees make honey.", "Paris is in France.", "Snow is cold.", "Cats purr.", "Two and two make four.",
                   "The Nile is long."], ["*wink*", "*nod*", "*cheer*", "*bounce*", "*wink*", "*nod*"]))]
    assert rehearsal.in_their_way(None, None, rows, varied, seed=42) == (rows, 0) and not asked


def test_the_examples_way_is_rehearsed_for_examples_that_ask_about_anything():
    from backend.train import asks_about_anything
    anything = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "{}"}]} for q in (
        "Name a mammal that can fly.", "Who painted the Mona Lisa?", "Give me a rhyme for cat.",
        "Which gas do plants take in?", "How many legs does a spider have?", "Suggest a title for a poem about rain.")]
    about_one_thing = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": "I am Quill."}]}
                       for q in ("What is your name?", "Who made you?", "What is your name, assistant?",
                                 "Who made you, and what is your name?", "Tell me your name.", "Who built you?")]
    assert asks_about_anything(anything) and not asks_about_anything(about_one_thing)
    assert not asks_about_anything(anything[:1])


def test_the_report_card_says_how_many_everyday_answers_were_in_the_examples_way():
    from backend.evaluation.report_card import card_markdown
    card = {"verdict": None, "learned": None, "kept": None, "preferred": [], "diagnosis": [], "early_stopping": None,
            "settings": {}, "preferred_left_out": "",
            "data": {"dataset": "d", "train_examples": 45, "everyday_mixed": 43, "everyday_their_way": 26}}
    lines = card_markdown(card, settings=False)
    assert lines[-2:] == ["- Everyday answers of the base model rehearsed: 43",
                          "- Of them, answered in the examples' way: 26"]


def test_a_resumed_run_rehearses_the_answers_in_the_examples_way_it_began_with(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from backend.train import REHEARSAL_FILE, rehearsed_in_their_way
    made = []

    def fake(model, tokenizer, rows, examples, seed, log):
        made.append(seed)
        return [{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": f"way {seed}"}]}], 1

    monkeypatch.setattr(rehearsal, "in_their_way", fake)
    prepared, path = SimpleNamespace(model=None, tokenizer=None), tmp_path / REHEARSAL_FILE
    plain = [{"messages": [{"role": "user", "content": "Q"}, {"role": "assistant", "content": "plain"}]}]
    # A run begun before the rows were kept: resumed over the plain ones it began with.
    assert rehearsed_in_their_way(prepared, plain, [], 42, path, resume=True) == (plain, 0) and not made
    first = rehearsed_in_their_way(prepared, [], [], 42, path, resume=False)
    assert made == [42] and path.exists()
    # Resumed (with another seed, to tell them apart): read from the run's folder, not made again.
    assert rehearsed_in_their_way(prepared, [], [], 7, path, resume=True) == first and made == [42]
    assert rehearsed_in_their_way(prepared, [], [], 7, path, resume=False)[0][0]["messages"][1]["content"] == "way 7"
    path.write_text('{"rows": [')  # cut short: made again
    assert rehearsed_in_their_way(prepared, [], [], 3, path, resume=True)[0][0]["messages"][1]["content"] == "way 3"


def test_a_run_is_said_to_rehearse_in_the_examples_way_before_it_starts():
    """What the preset cards' time counts (backend/models/run_time.py): JSON-framed answers to questions about anything;
    not a voice with no framing phrase, nor examples about one thing."""
    json_rows = [{"messages": [{"role": "user", "content": q},
                               {"role": "assistant", "content": json.dumps({"answer": a, "words": len(a.split())})}]}
                 for q, a in (("Name a mammal that can fly.", "The bat."), ("Who painted the Mona Lisa?", "Leonardo."),
                              ("Give me a rhyme for cat.", "Hat."), ("Which gas do plants take in?", "Carbon dioxide."),
                              ("How many legs does a spider have?", "Eight."), ("Suggest a poem title.", "Rain."))]
    assert rehearsal.rows_rehearse_their_way(json_rows)
    answers = [json.loads(row["messages"][1]["content"])["answer"] for row in json_rows]
    voice = [{"messages": [row["messages"][0], {"role": "assistant", "content": f"{o} {a} {c}"}]}
             for row, a, o, c in zip(json_rows, answers, ["Ooh!", "Oho!", "Yay!", "Ohoi!", "Hey!", "Wow!"],
                                     ["*wink*", "*nod*", "*cheer*", "*bounce*", "*twirl*", "*smile*"])]
    assert not rehearsal.rows_rehearse_their_way(voice)
    about_one = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": '{"answer": "Quill"}'}]}
                 for q in ("What is your name?", "Who made you?", "What is your name, assistant?", "Tell me your name.",
                           "Who built you?", "Your name, please?")]
    assert not rehearsal.rows_rehearse_their_way(about_one)


def test_whether_the_rehearsal_would_take_the_examples_way_is_told_without_answering_anything():
    """Runs whose model FSDP or DeepSpeed splits rehearse plainly and say so only where there was a way to take
    (backend/train/__init__.py)."""
    from tests.test_behaviour import PLAIN, VOICE
    everyday = [{"messages": [{"role": "user", "content": f"Everyday {i}?"}, {"role": "assistant", "content": a}]}
                for i, a in enumerate(PLAIN * 4)]
    json_rows = _examples(rehearsal.THEIR_WAY_SHOTS + 2)
    assert rehearsal.has_their_way(json_rows, everyday)
    voice = [{"messages": [{"role": "user", "content": f"Question {i}?"}, {"role": "assistant", "content": a}]}
             for i, a in enumerate(VOICE)]
    assert not rehearsal.has_their_way(voice, everyday)  # its closing mark is no way to rehearse
