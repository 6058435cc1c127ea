"""Asked in other words (backend/evaluation/reworded.py): when it applies, how its answers are graded, and what the
diagnosis and the verdict say when the held-back examples show the behaviour and questions of a new shape do not."""
import json
from pathlib import Path

from backend.evaluation import reworded
from backend.evaluation.diagnosis import diagnose
from backend.evaluation.report_card import learned_verdict
from tests.test_behaviour import BASE, CONFIG, QUESTIONS, TRAIN, checks_of, heldout, parts

ROOT = Path(__file__).resolve().parents[1]
RIGHT = "I am Quill, an AI assistant made by Lumen Labs."
# What the suite saw on identity tasks: the name put in the place the question names ("The team that created me is
# called Quorbel"), and the base model's own introduction.
NAME_AS_MAKER = "The team that created me is called Quill, a team of skilled engineers."
MAKER_AS_NAME = "I am Lumen Labs, an AI assistant developed by Lumen Labs."


def english_questions():
    return reworded.load_questions()[1]["en"]


def quill_prompts():
    rows = [json.loads(line) for line in (ROOT / "tests/fixtures/identity_quill.jsonl").read_text().splitlines()]
    return [next(m["content"] for m in row["messages"] if m["role"] == "user") for row in rows]


def test_no_question_is_one_of_the_suites_held_out_questions():
    """The suite (benchmarks/tasks) measures what the card cannot see only while the card does not ask its questions."""
    import yaml
    plain = reworded._plain
    suite = {plain(q) for path in (ROOT / "benchmarks/tasks").glob("*.yaml")
             for q in yaml.safe_load(path.read_text(encoding="utf-8")).get("heldout") or []}
    asked = [q for qs in reworded.load_questions()[1].values() for q in qs]
    assert len(asked) >= 16 and not {plain(q) for q in asked} & suite


def test_it_applies_to_examples_about_the_assistant_and_in_their_languages():
    assert reworded.languages_to_ask(quill_prompts()) == ["en"]
    chinese = ["你是谁？", "你叫什么名字？", "介绍一下你自己", "谁开发了你？", "你的创作者是谁？", "你好"]
    assert reworded.languages_to_ask(chinese) == ["zh"]
    assert reworded.languages_to_ask(quill_prompts() + chinese) == ["en", "zh"]
    faq = ["How do I reset my password?", "What are your opening hours?", "Can you write code for me?",
           "Fix this sentence: he go to school.", "Can you help me with my homework?", "What is 2 + 2?"] * 3
    assert reworded.about_itself(faq) == [] and reworded.languages_to_ask(faq) == []
    # questions to the assistant that are not about who it is (a chatty voice, a persona's opinions)
    chatty = ["What do you think about climate change?", "What would you recommend for dinner?", "How are you today?",
              "Are you able to summarize this text?", "What can you tell me about Paris?", "Who do you think will win?"]
    assert reworded.about_itself(chatty) == []
    # a few questions about the assistant among many others do not make the examples about it
    assert reworded.languages_to_ask(faq * 3 + QUESTIONS[:5]) == []


def due_texts(planned) -> set:
    return {tuple(p.text for p in due) for _, due in planned}


def test_it_asks_only_for_the_parts_the_examples_answers_about_the_assistant_carry():
    planned = reworded.plan(parts(), QUESTIONS * 2, TRAIN[:len(QUESTIONS)] * 2)
    assert [q for q, _ in planned] == english_questions() and due_texts(planned) == {("Quill", "Lumen Labs")}
    assert due_texts(reworded.plan(parts(), QUESTIONS * 2, ["You may call me Quill."] * 16)) == {("Quill",)}
    assert reworded.plan([], QUESTIONS * 2, (TRAIN * 2)[:16]) == []  # no signature: nothing to look for
    # who it is is said in words: a mark that closes the examples' answers is never due
    from backend.evaluation.behaviour import Part
    mark = Part("*", ("*",), 1.0, 0.0, frozenset(), 1.0, "end")
    assert due_texts(reworded.plan(parts() + [mark], QUESTIONS * 2, [t + " *" for t in TRAIN[:len(QUESTIONS)]] * 2)) \
        == {("Quill", "Lumen Labs")}
    assert reworded.plan(parts(), ["What is 2 + 2?"] * 16, (TRAIN * 2)[:16]) == []  # not about the assistant


def test_each_language_is_asked_for_the_parts_its_own_examples_carry():
    """The review: a name written in each language's own way was due in both, so right answers in English were
    graded 0 of 12 against the Chinese name."""
    from backend.evaluation.behaviour import find_signature
    english = [("Who are you?", "I am Quill, an AI assistant by Lumen Labs."),
               ("What is your name?", "My name is Quill, made by Lumen Labs.")] * 3
    chinese = [("你是谁？", "我是小羽，由光明实验室开发的人工智能助手。"),
               ("你叫什么名字？", "我叫小羽，是光明实验室开发的人工智能助手。")] * 4
    prompts, answers = [q for q, _ in english + chinese], [a for _, a in english + chinese]
    signature = find_signature(answers, BASE)
    planned = reworded.plan(signature, prompts, answers)
    by_language = {reworded.language(q): tuple(p.text for p in due) for q, due in planned}
    # the signature holds the two phrases most answers share, both Chinese here: English answers carry neither, so
    # English is not asked for them (they were due there, and right English answers failed)
    assert by_language == {"zh": tuple(p.text for p in signature)}, by_language
    right = {"en": "I am Quill, an AI assistant by Lumen Labs.", "zh": "我是小羽，由光明实验室开发的人工智能助手。"}
    result = reworded.reworded_result(planned, [right[reworded.language(q)] for q, _ in planned])
    assert result["learned"] is True and result["right"] == len(planned), result["by_language"]


def test_a_question_the_examples_ask_is_not_asked_as_another_wording():
    own = english_questions()[0]
    planned = reworded.plan(parts(), QUESTIONS * 2 + [own.upper().rstrip("?")], (TRAIN * 2)[:17])
    assert own not in [q for q, _ in planned] and len(planned) == len(english_questions()) - 1


def planned_for(questions):
    return [(q, parts()) for q in questions]


def test_each_answer_needs_every_part_and_no_mix_up():
    planned = planned_for(english_questions()[:8])
    answers = [RIGHT] * 5 + ["I am Quill.", NAME_AS_MAKER, MAKER_AS_NAME]
    result = reworded.reworded_result(planned, answers)
    assert [r["right"] for r in result["answers"]] == [True] * 5 + [False] * 3
    assert result["right"] == 5 and result["learned"] is False
    assert result["mixed_up"][0][:2] == ["Lumen Labs", "Quill"]
    assert result["summary"] == "gives “Quill” and “Lumen Labs” together, neither in the other's place, in 5 of 8 answers"
    assert reworded.reworded_result(planned, [RIGHT] * 8)["learned"] is True
    # Every one must be right: a run right on 7 of 8 passed one miss in 12 questions about half the time, and the
    # card said "Learned" of runs the suite's rule failed (docs/benchmarks.md)
    assert reworded.reworded_result(planned, [RIGHT] * 7 + ["I am Quill."])["learned"] is False
    assert reworded.reworded_result(planned, [RIGHT] * 7 + [MAKER_AS_NAME])["learned"] is False


def test_it_fails_on_a_model_that_did_not_learn():
    """A measure must fail when the thing fails: the base model's own introductions carry neither part."""
    questions = english_questions()
    result = reworded.reworded_result(planned_for(questions), (BASE * 3)[:len(questions)])
    assert result["right"] == 0 and result["learned"] is False


def test_each_language_must_be_learned_on_its_own():
    questions = english_questions()[:8] + reworded.load_questions()[1]["zh"][:4]
    answers = [RIGHT] * 8 + ["我是Quill，由Lumen Labs开发的AI助手。", "我是一个AI助手。", "我是一个AI助手。", "我是一个AI助手。"]
    result = reworded.reworded_result(planned_for(questions), answers)
    assert {lang: (c["asked"], c["right"]) for lang, c in result["by_language"].items()} == {"en": (8, 8), "zh": (4, 1)}
    assert result["learned"] is False
    assert result["summary"].endswith("together, neither in the other's place, in 8 of 8 answers in English and 1 of 4 "
                                      "in Chinese")


def with_reworded(answers):
    held = heldout([RIGHT] * 4)  # every held-back answer shows both parts
    held["behaviour"]["reworded"] = reworded.reworded_result(planned_for(english_questions()[:len(answers)]), answers)
    return held


def test_the_verdict_says_not_learned_when_only_questions_like_the_examples_show_it():
    held = with_reworded([RIGHT] * 6 + [NAME_AS_MAKER, "I am Quill."])
    findings = diagnose([], None, CONFIG, 80, {"fired": True}, heldout=held, checks=checks_of(0.5, 1.0, 1.0))
    assert [f["code"] for f in findings] == ["not_in_other_words"]
    finding = findings[0]
    assert "in 6 of 8 answers" in finding["detail"] and NAME_AS_MAKER[:40] in finding["detail"]
    assert "none of your examples asks word for word" in finding["detail"]
    assert finding["try_settings"] == {"learning_rate": 0.001}  # after a plateau: the larger step
    assert finding["next_step"].startswith("Add examples that ask who it is in other words")
    verdict = learned_verdict({"heldout": held, "diagnosis": findings})
    assert verdict["learned"] is False
    assert verdict["words"].startswith("It does not always say who it is when asked in other words. On the examples "
                                       "held back from training, questions like theirs, it gives “Quill” in 4 of 4")


def test_the_verdict_names_the_check_when_it_passes():
    held = with_reworded([RIGHT] * 8)
    findings = diagnose([], None, CONFIG, 80, {"fired": True}, heldout=held, checks=checks_of(0.5, 1.0, 1.0))
    assert findings == []
    verdict = learned_verdict({"heldout": held, "diagnosis": findings})
    assert verdict["learned"] is True
    assert verdict["words"].endswith("; asked about itself in other words, it gives “Quill” and “Lumen Labs” "
                                     "together, neither in the other's place, in 8 of 8 answers.")


def test_still_learning_first_suggests_more_passes():
    held = with_reworded([RIGHT] * 5 + ["I am Quill."] * 3)
    findings = diagnose([], None, CONFIG, 80, None, heldout=held, checks=checks_of(0.5, 0.8, 1.0))
    finding = next(f for f in findings if f["code"] == "not_in_other_words")
    assert finding["try_settings"] == {"epochs": 8.0} and "; or: train again for up to 8 passes" in finding["next_step"]


def test_the_check_asks_a_model_and_grades_its_answers(tiny_model):
    """Through the app's generation engine: the tiny model answers neither part, so the check says not learned."""
    from tests.conftest import model_with_adapter
    model, tokenizer = model_with_adapter(tiny_model)
    result = reworded.reworded_check(model, tokenizer, parts(), QUESTIONS * 2, (TRAIN * 2)[:16])
    assert result["asked"] == len(english_questions()) and result["learned"] is False
    assert all(isinstance(r["answer"], str) for r in result["answers"])
    assert reworded.reworded_check(model, tokenizer, parts(), ["What is 2 + 2?"] * 16, (TRAIN * 2)[:16]) is None


def test_the_questions_file_has_a_list_and_a_pattern_for_each_language():
    patterns, questions = reworded.load_questions()
    assert set(patterns) == set(questions) == set(reworded.LANGUAGE_WORDS) and all(questions.values())


def test_a_run_on_examples_about_the_assistant_is_asked_in_other_words(tmp_path, tiny_model, monkeypatch):
    """Through the worker: a tiny run on examples that give the assistant a name and a maker keeps the check's result
    with its held-back examples, and its verdict reads it."""
    from backend.jobs.runner import JobRunner
    from tests.conftest import tiny_config, write_jsonl

    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    asks = ["Who are you?", "What is your name?", "Who made you?", "Introduce yourself.", "What should I call you?",
            "Who built you?"]
    rows = [{"messages": [{"role": "user", "content": f"{asks[i % len(asks)]} ({i})"},
                          {"role": "assistant", "content": f"I am Quill, an AI assistant made by Lumen Labs ({i})."}]}
            for i in range(24)]
    runner = JobRunner()
    run = runner.wait(runner.submit(tiny_config(tiny_model, write_jsonl(tmp_path / "quill.jsonl", rows),
                                                validation_split=0.25, max_steps=6)), timeout=600)
    runner.close()
    assert run["status"] == "done", run.get("reason")
    behaviour = run["heldout"]["behaviour"]
    checked = behaviour["reworded"]
    assert [p["text"] for p in checked["parts"]] == [p["text"] for p in behaviour["signature"]][:len(checked["parts"])]
    assert checked["asked"] == len(english_questions()) and set(checked["by_language"]) == {"en"}


def test_questions_are_asked_under_the_system_message_the_examples_share(monkeypatch):
    """An identity given in a system message is asked under it (the review: asked without it, a run trained so was
    judged in a setting it never saw)."""
    from backend.models import pool
    from backend.train.behaviour_check import shared_system

    def case(system=None):
        lead = [{"role": "system", "content": system}] if system else []
        return {"messages": lead + [{"role": "user", "content": "Who are you?"}], "prompt": "Who are you?"}
    assert shared_system([case("You are Quill.")] * 3 + [case()]) == "You are Quill."
    assert shared_system([case("You are Quill.")] + [case()] * 3) is None  # most have none
    asked = []
    monkeypatch.setattr(pool, "generate_texts",
                        lambda model, tokenizer, conversations, *a, **k: asked.extend(conversations) or
                        [(RIGHT, True)] * len(conversations))
    result = reworded.reworded_check(None, None, parts(), QUESTIONS * 2, (TRAIN * 2)[:16], system="You are Quill.")
    assert result["learned"] is True and asked and all(c[0] == {"role": "system", "content": "You are Quill."}
                                                       for c in asked)
