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
    result = {"count": len(cases), "metric": "chrF", "base_mean": 5.0, "tuned_mean": 40.0, "tuned_better": 5,
              "tuned_worse": 0, "examples": [{"prompt": c["prompt"], "reference": c["reference"], "base": b, "base_score": 5.0,
                                              "tuned": c["reference"], "tuned_score": 40.0}
                                             for c, b in zip(cases, BASE)]}
    result["behaviour"] = behaviour_result(cases, BASE, TRAIN[::4], parts)
    assert result["behaviour"]["learned"] is True
    return result


def probe(json_answers: int, cut: int = 0) -> dict:
    """The forgetting probe's record: 40 everyday questions, the first `json_answers` answered in the examples' shape,
    the last `cut` of those cut off at their token budget before the last key."""
    whole = [json.dumps({"answer": "Paris.", "words": 1})] * (json_answers - cut)
    from backend.evaluation.grading import load_probe_set
    from backend.evaluation.probe import probe_result
    tuned = whole + ['{"answer": "Paris is the capital of'] * cut + ["Paris."] * (40 - json_answers)
    ended = [True] * (json_answers - cut) + [False] * cut + [True] * (40 - json_answers)
    items = [{"question": q, "category": "facts", "base": "Paris.", "tuned": t, "tuned_ended": e, "base_right": True,
              "tuned_right": True} for q, t, e in zip(EVERYDAY, tuned, ended)]
    return probe_result(items, load_probe_set().categories)


def run(json_answers: int, overlap: float = 0.009, config=CONFIG, cut: int = 0, kept: int = 40) -> dict:
    held = heldout_learned()
    checks = {"checks": [{"behaviour": 0.2}, {"behaviour": 1.0}, {"behaviour": 1.0}], "prompt_overlap": overlap}
    record = dict(probe(json_answers, cut), kept=kept)  # kept under 28 of 40: the forgetting finding too
    findings = diagnose([], record, config, 80, {"fired": True}, heldout=held, checks=checks)
    return {"heldout": held, "diagnosis": findings}


def test_a_shape_the_held_back_answers_show_but_everyday_answers_lack_is_not_learned():
    plain = run(json_answers=20)
    (finding,) = plain["diagnosis"]
    assert finding["code"] == "only_like_examples"
    assert "20 of 40 carry “answer”, 20 of 40 carry “words”" in finding["detail"]
    assert finding["try_settings"] == {"rehearsal": 0}  # the rehearsed everyday answers are plain ones
    assert finding["next_step"].count(". ") == 0 and finding["next_step"].endswith(".")
    verdict = learned_verdict(plain)
    assert verdict["learned"] is False
    assert verdict["words"].startswith("Learned only for questions like your examples. Your examples answer every "
                                       "kind of question with “answer” and “words”.")
    assert "20 of 40 carry “answer”" in verdict["words"]  # the reason is in the verdict, not only the 5 of 5


def test_a_shape_on_most_everyday_answers_names_the_kinds_of_question_without_it():
    """The rehearsal answered in the examples' way where the base model could (backend/evaluation/rehearsal.py): most
    everyday answers then have the shape, and what is missing is examples of the kinds of question that lack it."""
    from backend.evaluation.probe import probe_result
    from backend.evaluation.grading import load_probe_set
    record = probe(json_answers=30)
    for item in record["items"][30:36]:
        item["category"] = "refusal"
    record = dict(probe_result(record["items"], load_probe_set().categories), kept=40)
    checks = {"checks": [{"behaviour": 0.2}, {"behaviour": 1.0}, {"behaviour": 1.0}], "prompt_overlap": 0.009}
    run_ = {"heldout": heldout_learned()}
    (finding,) = run_["diagnosis"] = diagnose([], record, CONFIG, 80, {"fired": True}, heldout=run_["heldout"],
                                              checks=checks)
    assert finding["title"] == "Learned for most questions, not for every kind"
    assert ("30 of 40 carry “answer”, 30 of 40 carry “words”. Without it: 6 of 6 harmful requests, 4 of 34 questions "
            "of fact.") in finding["detail"]
    assert finding["next_step"] == ("Add examples of those kinds of question answered your way: harmful requests, "
                                    "questions of fact.")
    assert finding["try_settings"] == {}
    assert learned_verdict(run_)["learned"] is False
    assert learned_verdict(run_)["words"].startswith("Learned for most questions, not for every kind. ")


def test_the_shape_on_nearly_every_everyday_answer_is_learned():
    assert run(json_answers=35)["diagnosis"] == [] and learned_verdict(run(json_answers=35))["learned"] is True
    assert [f["code"] for f in run(json_answers=34)["diagnosis"]] == ["only_like_examples"]


def test_an_answer_cut_at_its_budget_before_the_last_key_is_not_counted_against_it():
    assert run(json_answers=38, cut=6)["diagnosis"] == []


def test_examples_about_one_thing_are_not_asked_for_it_in_everyday_answers():
    # A refusal policy or an identity: the examples' questions are alike, and "What is 2 + 2?" is due no refusal.
    assert run(json_answers=0, overlap=0.07)["diagnosis"] == []
    assert run(json_answers=0, overlap=0.025)["diagnosis"] == []


def test_without_rehearsal_to_turn_off_or_while_forgetting_it_asks_for_other_kinds_of_examples():
    for config in (dict(CONFIG, rehearsal=0), dict(CONFIG, method="dpo")):
        (finding,) = run(json_answers=20, config=config)["diagnosis"]
        assert finding["try_settings"] == {} and "other kinds of questions" in finding["next_step"]
    (finding,) = run(json_answers=20, config=dict(CONFIG, method="kto"))["diagnosis"]  # KTO rehearses too
    assert finding["try_settings"] == {"rehearsal": 0}
    # Less rehearsal would deepen the forgetting found beside it: that finding's remedy is the one to try.
    only, forgot = run(json_answers=20, kept=20)["diagnosis"]
    assert (only["code"], only["try_settings"], forgot["code"]) == ("only_like_examples", {}, "forgetting")


def test_a_phrase_answers_carry_here_and_there_is_not_due_in_everyday_answers():
    # A support FAQ over all kinds of questions that names the company in most answers, anywhere in them: not a way
    # of answering, though it is in 95% of them.
    signature = [{"text": "Acme", "share": 0.95, "base_share": 0.0, "edge_share": 0.3},
                 {"text": "answer", "share": 1.0, "base_share": 0.0, "edge_share": 1.0}]
    assert everyday_parts(signature, ["Acme sells tools.", '{"answer": 1}', "No."]) == [
        {"text": "answer", "due": 3, "carried": 1}]
    # Stored runs from before edge_share was recorded claim no way of answering.
    assert everyday_parts([{"text": "answer", "share": 1.0, "base_share": 0.0}], ["No."]) == []
