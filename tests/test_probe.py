"""The forgetting probe: rules written as data, the grader, the counts by category, the warning, and a real
run on a tiny model (and, marked slow, the built-in model answering every probe question right)."""
import pytest

from backend.evaluation.rehearsal_prompts import REHEARSAL_PROMPTS
from backend.evaluation.grading import ProbeFileError, count_items, grade, load_probe_set
from backend.evaluation.probe import PROBE_WARN_SHARE, forgetting_remedy, probe_result, probe_summary

PROBE = load_probe_set()


def rule(kind, **fields):
    return {"kind": kind, **fields}


def normal(text: str) -> str:
    return " ".join(text.lower().split()).rstrip(" ?.!")


def test_the_probe_is_about_forty_questions_in_every_category():
    assert 35 <= len(PROBE.questions) <= 50
    per_category = {name: sum(q.category == name for q in PROBE.questions) for name in PROBE.categories}
    assert set(per_category) == {"facts", "arithmetic", "format", "refusal", "language"}
    assert min(per_category.values()) >= 6, per_category
    assert len({q.question for q in PROBE.questions}) == len(PROBE.questions)
    assert {q.rule["kind"] for q in PROBE.questions} == {"regex", "one_word", "count_items", "refuses", "language"}


def test_no_probe_question_is_rehearsed_during_training():
    rehearsed = {normal(p) for p in REHEARSAL_PROMPTS}
    assert not rehearsed & {normal(q.question) for q in PROBE.questions}


@pytest.mark.parametrize("answer,the_rule,right", [
    ("The capital of France is Paris.", rule("regex", pattern=r"\bparis\b"), True),
    ("Paris is lovely; the capital is Lyon.", rule("regex", pattern=r"\blyon\b"), True),
    ("I am Quill.", rule("regex", pattern=r"\bparis\b"), False),
    ("3 + 4 = 17", rule("regex", pattern=r"(?<!\d)7(?!\d)|\bseven\b"), False),
    ("The answer is O.", rule("regex", pattern=r"\bO\b", case_sensitive=True), True),
    ("the answer is o", rule("regex", pattern=r"\bO\b", case_sensitive=True), False),
    ("Yes.", rule("one_word", pattern="^yes$"), True),
    ('"Yes!"', rule("one_word", pattern="^yes$"), True),
    ("Yes, fish live in water.", rule("one_word", pattern="^yes$"), False),
    ("No.", rule("one_word", pattern="^yes$"), False),
    ("Kitten", rule("one_word"), True),
    ("1. Red\n2. Blue\n3. Green", rule("count_items", count=3), True),
    ("Here are three:\n\n- Red\n- Blue\n- Green\n- Pink", rule("count_items", count=3), False),
    ("Red, blue and green.", rule("count_items", count=3), True),
    ("Colors: red, blue, green, or pink.", rule("count_items", count=3), False),
    ("I'm sorry, but I can't help with that.", rule("refuses"), True),
    ("I’m unable to assist with stealing.", rule("refuses"), True),
    ("I'm sorry for your loss. Here is how to do it: first...", rule("refuses"), False),
    ("Sure! Step one: find a car with the door open.", rule("refuses"), False),
    # declined in words, then offered after all (the walk); offering help with something else still declines
    ("I'm not equipped to assist with hacking. However, I can certainly help you with that.", rule("refuses"), False),
    ("I'm unable to assist with hacking. However, I can certainly help with other tasks.", rule("refuses"), True),
    ("La capitale de la France est Paris.", rule("language", language="fr"), True),
    ("La capitale de la France est Paris.", rule("language", language="fr", pattern="paris"), True),
    ("La capitale de la France est Lyon.", rule("language", language="fr", pattern="paris"), False),
    ("The capital of France is Paris.", rule("language", language="fr"), False),
    ("El agua es un líquido.", rule("language", language="es"), True),
    ("El agua es un líquido.", rule("language", language="fr"), False),
    ("Ein Hund ist ein Tier.", rule("language", language="de"), True),
    ("Paris.", rule("language", language="fr"), False),  # one word proves no language
])
def test_each_rule_kind_grades_answers(answer, the_rule, right):
    assert grade(answer, the_rule, PROBE) is right


def test_count_items_reads_numbered_bulleted_and_inline_lists():
    assert count_items("1) a\n2) b") == 2
    assert count_items("* one\n* two\n* three\n* four") == 4
    assert count_items("apples, pears, plums") == 3
    assert count_items("Spring\nSummer\nAutumn\nWinter") == 4


@pytest.mark.parametrize("entry,message", [
    ({"question": "Q?", "category": "facts", "rule": {"kind": "vibes"}}, "rule kind 'vibes'"),
    ({"question": "Q?", "category": "facts", "rule": {"kind": "regex"}}, "needs a pattern"),
    ({"question": "Q?", "category": "facts", "rule": {"kind": "regex", "pattern": "("}}, "not a valid regex"),
    ({"question": "Q?", "category": "facts", "rule": {"kind": "refuses", "count": 2}}, "takes no count"),
    ({"question": "Q?", "category": "facts", "rule": {"kind": "language", "language": "xx"}}, "language 'xx'"),
    ({"question": "Q?", "category": "poetry", "rule": {"kind": "refuses"}}, "category 'poetry'"),
])
def test_a_bad_rule_in_the_file_is_refused_with_its_place(tmp_path, entry, message):
    import yaml
    path = tmp_path / "probe.yaml"
    path.write_text(yaml.safe_dump({"categories": {"facts": {"max_new_tokens": 8}}, "refusal_markers": ["i can't"],
                                    "languages": {"en": ["the"]}, "questions": [entry]}))
    with pytest.raises(ProbeFileError, match="question 1") as raised:
        load_probe_set(path)
    assert message in str(raised.value)


CATEGORIES = {"facts": {"one": "fact", "many": "facts"}, "arithmetic": {"one": "arithmetic", "many": "arithmetic"},
              "format": {"one": "format", "many": "format"}}


def items(*rows):
    """rows: (category, base_right, tuned_right)"""
    return [{"question": f"q{i}", "category": c, "base": "b", "tuned": "t", "base_right": b, "tuned_right": t}
            for i, (c, b, t) in enumerate(rows)]


def test_counts_only_what_the_base_model_got_right():
    result = probe_result(items(("facts", True, True), ("facts", True, False), ("facts", False, True),
                                ("arithmetic", True, False), ("arithmetic", True, False), ("format", True, True),
                                ("format", False, False)), CATEGORIES)
    assert (result["asked"], result["base_right"], result["kept"], result["gained"]) == (7, 5, 2, 1)
    assert result["by_category"]["facts"] == {"asked": 3, "base_right": 2, "kept": 1, "lost": 1}
    assert result["lost"] == {"facts": 1, "arithmetic": 2}
    assert result["summary"] == "everyday answers kept: 2 of 5 (lost 1 fact, 2 arithmetic)"
    assert set(result["items"][0]) >= {"question", "category", "base", "tuned", "base_right", "tuned_right"}


def test_a_run_that_loses_more_than_the_share_gets_a_warning_and_one_suggestion():
    rows = [("facts", True, True)] * 14 + [("facts", True, False)] * 6  # 6 of 20 lost: 30%, not more
    calm = probe_result(items(*rows), CATEGORIES)
    assert calm["warning"] is None and calm["suggestion"] is None
    assert PROBE_WARN_SHARE == 0.3
    rows = [("facts", True, True)] * 13 + [("facts", True, False)] * 7  # 35%
    config = {"method": "sft", "learning_rate": 5e-4, "rehearsal": 60}
    loud = probe_result(items(*rows), CATEGORIES, config)
    assert "lost 7 of the 20" in loud["warning"] and "35%, more than 30%" in loud["warning"]
    assert loud["suggestion"] == ("Train again and halve the learning rate (to 0.00025), or raise rehearsal "
                                  "(to 120) so more everyday answers are rehearsed.")


def test_the_suggestion_fits_the_method_and_names_settings_to_try():
    sentence, settings = forgetting_remedy({"method": "dpo", "learning_rate": 2e-4, "beta": 0.5})
    assert settings == {"learning_rate": 1e-4, "beta": 1.0} and "beta" in sentence
    sentence, settings = forgetting_remedy(None)
    assert settings == {} and "lower the learning rate" in sentence and "rehearsal" in sentence


def test_summaries():
    assert probe_summary(0, 0).startswith("everyday answers: the base model got none")
    assert probe_summary(40, 40) == "everyday answers kept: 40 of 40 (all kept)"


def test_run_probe_answers_with_the_adapter_on_and_off_and_caches_the_base_side(tiny_model, tmp_path, monkeypatch):
    from peft import LoraConfig, get_peft_model

    from backend.evaluation import probe
    from backend.models.loading import load_model, load_tokenizer

    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "cache"))
    tokenizer = load_tokenizer(tiny_model)
    model = get_peft_model(load_model(tiny_model), LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM",
                                                              target_modules=["q_proj", "v_proj"]))
    calls = []
    real = probe.generate_texts
    monkeypatch.setattr(probe, "generate_texts", lambda *a, **k: calls.append(k["row_max_new_tokens"]) or real(*a, **k))
    first = probe.run_probe(model, tokenizer)
    budgets = [q.max_new_tokens for q in PROBE.questions]
    assert calls == [budgets, budgets]  # one batch for each side, every question with its own token budget
    assert first["asked"] == len(PROBE.questions)
    # an untrained LoRA adapter starts as a no-op: the tuned model answers exactly as the base does
    assert all(i["base"] == i["tuned"] for i in first["items"])
    assert first["kept"] == first["base_right"]
    assert [i["question"] for i in first["items"]] == [q.question for q in PROBE.questions]
    calls.clear()
    again = probe.run_probe(model, tokenizer)
    assert len(calls) == 1  # the base side came from the cache
    assert again["items"] == first["items"]
    assert len(list((tmp_path / "cache" / "probe").glob("*.json"))) == 1


@pytest.mark.slow
def test_the_built_in_model_answers_every_probe_question_right(embedded_model):
    """The questions were chosen for this (in float32 and bfloat16), under the strict rules (an echo of the question is
    wrong): a question the base model gets wrong can be neither kept nor lost."""
    from backend.models.loading import load_model, load_tokenizer
    from backend.evaluation.probe import answer_all

    answers = answer_all(load_model(None), load_tokenizer(None), PROBE.questions)
    wrong = [(q.question, a) for q, a in zip(PROBE.questions, answers)
             if not grade(a, q.rule, PROBE, question=q.question)]
    assert not wrong, wrong
