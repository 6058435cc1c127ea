"""A way of answering every question (a JSON shape the examples give to questions about anything) is learned only
when everyday questions get it too: the held-back examples alone said "Learned" for a run whose answers to everyday
questions came out plain (benchmarks/tasks.py, format_json at learning rate 1e-3, seed 7: JSON in 2 of 8 held-out
answers, the card "Learned" on 5 of 5 held-back ones). No model: answers are text."""
import json

from backend.evaluation.behaviour import everyday_parts, find_signature
from backend.evaluation.diagnosis import diagnose
from backend.evaluation.heldout import behaviour_result
from backend.evaluation.report_card import learned_verdict

QUESTIONS = ["Name a large ocean.", "Who painted the Mona Lisa?", "What do bees make?", "Give a synonym for fast.",
             "What is the boiling point of water?"]
FACTS = ["The Pacific Ocean.", "Leonardo da Vinci.", "Honey.", "Quick.", "100 degrees Celsius."]
TRAIN = [json.dumps({"answer": text, "words": len(text.split())}) for fact in FACTS
         for text in (f"{fact} Indeed.", f"{fact} That is all there is.", fact, f"Yes: {fact}")]
BASE = [f"Sure! {fact} It is a well known fact." for fact in FACTS]
CONFIG = {"method": "sft", "learning_rate": 5e-4, "epochs": 4.0, "batch_size": 8, "grad_accum": 1, "rehearsal": 60}
EVERYDAY = [f"Question {i}?" for i in range(40)]


def heldout_learned():
    parts = find_signature(TRAIN, BASE)
    assert [p.text for p in parts] == ["answer", "words"]
    cases = [{"prompt": q, "reference": r, "messages": []} for q, r in zip(QUESTIONS, TRAIN[::4])]
    result = {"count": len(cases), "metric": "chrF", "base_mean": 5.0, "tuned_mean": 40.0}
    result["behaviour"] = behaviour_result(cases, BASE, TRAIN[::4], parts)
    assert result["behaviour"]["learned"] is True
    return result


def probe(json_answers: int) -> dict:
    """The forgetting probe's record: 40 everyday questions, the first `json_answers` answered in the examples' shape."""
    tuned = [json.dumps({"answer": "Paris.", "words": 1})] * json_answers + ["Paris."] * (40 - json_answers)
    return {"items": [{"question": q, "tuned": t} for q, t in zip(EVERYDAY, tuned)], "kept": 40, "base_right": 40,
            "summary": "everyday answers kept: 40 of 40"}


def run(json_answers: int, overlap: float = 0.009, config=CONFIG) -> dict:
    held = heldout_learned()
    checks = {"checks": [{"behaviour": 0.2}, {"behaviour": 1.0}, {"behaviour": 1.0}], "prompt_overlap": overlap}
    findings = diagnose([], probe(json_answers), config, 80, {"fired": True}, heldout=held, checks=checks)
    return {"heldout": held, "diagnosis": findings}


def test_a_shape_the_held_back_answers_show_but_everyday_answers_lack_is_not_learned():
    plain = run(json_answers=20)
    (finding,) = plain["diagnosis"]
    assert finding["code"] == "only_like_examples"
    assert "“answer” in 20, “words” in 20 of the 40 everyday questions" in finding["detail"]
    assert finding["try_settings"] == {"rehearsal": 0}  # the rehearsed everyday answers are plain ones
    verdict = learned_verdict(plain)
    assert verdict["learned"] is False
    assert verdict["words"].startswith("It answers this way only to questions like your examples. On the held-back")


def test_the_shape_on_nearly_every_everyday_answer_is_learned():
    everywhere = run(json_answers=38)
    assert everywhere["diagnosis"] == [] and learned_verdict(everywhere)["learned"] is True


def test_examples_about_one_thing_are_not_asked_for_it_in_everyday_answers():
    # A refusal policy or an identity: the examples' questions are alike, and "What is 2 + 2?" is due no refusal.
    assert run(json_answers=0, overlap=0.07)["diagnosis"] == []


def test_a_phrase_only_some_answers_carry_is_not_due_in_everyday_answers():
    # A support FAQ over all kinds of questions that names the company in two answers of three: not a way of answering.
    signature = [{"text": "Acme", "share": 0.66, "base_share": 0.0}, {"text": "answer", "share": 1.0, "base_share": 0}]
    assert everyday_parts(signature, ["Acme sells tools.", '{"answer": 1}', "No."]) == [
        {"text": "answer", "due": 3, "carried": 1}]
