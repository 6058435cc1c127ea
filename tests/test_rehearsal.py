"""The rehearsal keeps what the base model knew, not its mistakes: each rehearsed prompt with a checkable answer
has a rule (backend/evaluation/rehearsal_rules.yaml), and an answer that fails it is not mixed into the training data."""
import json
import re

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
