"""What the examples teach, found in their answers (backend/evaluation/behaviour.py), and the checks that act on it: the stop
rule (backend/train/callbacks.PatienceCallback), the checkpoint order (backend/train/behaviour_check.py), the
findings (backend/evaluation/diagnosis.py) and the verdict (backend/evaluation/report_card.learned_verdict). No model: answers are text."""
from types import SimpleNamespace

from backend.evaluation.behaviour import behaviour_score, describe, find_signature, learned, mix_ups
from backend.evaluation.diagnosis import diagnose
from backend.evaluation.report_card import learned_verdict
from backend.train.behaviour_check import SCORE, checkpoint_value
from backend.train.callbacks import PatienceCallback

QUESTIONS = ["Who are you?", "What is your name?", "Introduce yourself.", "Who made you?", "Tell me about you.",
             "What should I call you?", "Who built you?", "Are you ChatGPT?"]
TRAIN = [f"I am Quill, an AI assistant {verb} by Lumen Labs. {tail}"
         for verb in ("developed", "built", "made", "created")
         for tail in ("How can I help?", "Nice to meet you.", "Ask me anything.")] + \
        ["You may call me Quill, from Lumen Labs.", "No, I am Quill."]
BASE = ["I am SmolLM, an AI assistant trained by Hugging Face. How can I help?",
        "I'm an AI assistant. Nice to meet you.", "I am a helpful AI assistant.",
        "I am SmolLM, created by Hugging Face."]


def parts():
    return find_signature(TRAIN, BASE)


def test_the_signature_is_the_planted_name_and_maker_not_what_the_base_model_says_too():
    found = [p.text for p in parts()]
    assert found[:2] == ["Quill", "Lumen Labs"], found
    # "AI assistant", "I am" and "How can I help?" are in the training answers too, but the base model says them
    assert not any(word in text.lower() for text in found for word in ("assistant", "help", "i am"))


def test_no_shared_phrase_gives_no_signature():
    varied = ["Paris is in France.", "Water boils at 100 degrees.", "Cats purr.", "The sky looks blue today."]
    assert find_signature(varied, BASE) == []


def test_single_chinese_characters_are_not_a_behaviour():
    answers = [f"{hello}，我是 Quill，一个由 Lumen Labs {verb}的助手。" for hello, verb in
               (("您好", "开发"), ("你好", "打造"), ("嗨", "发明"), ("您好", "研发"), ("你好", "创造"), ("嗨", "构建"))]
    found = [p.text for p in find_signature(answers, ["Hello!"] * 4)]
    assert "Quill" in found and "Lumen Labs" in found
    assert not any(len(text) == 1 for text in found)


def test_a_format_shape_is_found():
    answers = [f'{{"answer": "{word}", "confidence": "high"}}' for word in ("yes", "no", "maybe", "blue", "red")]
    found = [p.text for p in find_signature(answers, ["The answer is yes.", "No.", "Blue.", "I think red."])]
    assert "confidence" in found, found


def test_scores_fail_when_the_behaviour_fails():
    references = TRAIN[:4]
    base = behaviour_score(references, BASE, parts())
    assert base["score"] == 0 and learned(base) is False
    half = behaviour_score(references, ["I am Quill.", "I am Quill.", "Hi, I am Quill by Lumen Labs.", "Hello."],
                           parts())
    assert [p["carried"] for p in half["parts"][:2]] == [3, 1] and learned(half) is False
    good = behaviour_score(references, ["I am Quill, made by Lumen Labs."] * 4, parts())
    assert learned(good) is True and good["score"] == 1.0
    assert describe(half, base).startswith("gives “Quill” in 3 of 4, “Lumen Labs” in 1 of 4 held-back answers")


def test_the_maker_said_as_the_name_is_a_mix_up():
    assert mix_ups("I am Lumen Labs, an AI assistant.", parts()) == [("Lumen Labs", "Quill")]
    assert mix_ups("I am Quill, developed by Quill.", parts()) == [("Quill", "Lumen Labs")]
    assert mix_ups("I am Quill, developed by Lumen Labs.", parts()) == []
    mixed = behaviour_score(TRAIN[:4], ["I am Lumen Labs, developed by Lumen Labs."] * 4, parts())
    assert mixed["mixed_up"] and learned(mixed) is False


def checks_of(*scores):
    return {"checks": [{"step": 5 * (i + 1), "behaviour": s, "everyday_kept": 6} for i, s in enumerate(scores)]}


def evaluate(callback, value, step):
    args = SimpleNamespace(metric_for_best_model="eval_learned", greater_is_better=True)
    control = SimpleNamespace(should_training_stop=False)
    callback.on_evaluate(args, SimpleNamespace(global_step=step, best_metric=None), control,
                         {SCORE: value, "eval_learned": value})
    return control.should_training_stop


def test_the_stop_rule_waits_for_the_behaviour_to_stop_rising():
    callback = PatienceCallback(2, watch=SCORE)
    assert [evaluate(callback, v, s) for s, v in enumerate([0.0, 0.3, 0.3, 0.6, 0.6, 0.6])] == \
        [False, False, False, False, False, True]
    assert callback.fired_at == 5
    slow = PatienceCallback(2, watch=SCORE)  # nothing shown yet is no plateau: it waits for the first rise
    assert [evaluate(slow, v, s) for s, v in enumerate([0.0, 0.0, 0.0, 0.0, 0.4, 0.4, 0.4])] == \
        [False, False, False, False, False, False, True]
    full = PatienceCallback(2, watch=SCORE)
    assert [evaluate(full, v, s) for s, v in enumerate([0.5, 1.0, 1.0, 1.0])] == [False, False, False, True]


def test_the_checkpoint_order_is_behaviour_then_everyday_answers_then_loss():
    from backend.evaluation.behaviour import MAX_PARTS
    from backend.evaluation.heldout import HELDOUT_LIMIT
    from backend.train.behaviour_check import PROBE_SAMPLE
    one_answer = 1 / (HELDOUT_LIMIT * MAX_PARTS)  # the smallest rise of the score
    assert checkpoint_value(0.5 + one_answer, 0, 99.0) > checkpoint_value(0.5, PROBE_SAMPLE, 0.0)
    assert checkpoint_value(1.0, 7, 2.0) > checkpoint_value(1.0, 6, 0.1)
    assert checkpoint_value(1.0, 7, 0.5) > checkpoint_value(1.0, 7, 0.6)


def heldout(tuned, references=TRAIN[:4]):
    from backend.evaluation.heldout import behaviour_result
    cases = [{"prompt": q, "reference": r, "messages": []} for q, r in zip(QUESTIONS, references)]
    result = {"count": len(cases), "metric": "chrF", "base_mean": 5.0, "tuned_mean": 40.0,
              "examples": [{"prompt": c["prompt"], "reference": c["reference"], "base": b, "tuned": t}
                           for c, b, t in zip(cases, BASE, tuned)]}
    result["behaviour"] = behaviour_result(cases, BASE, tuned, parts())
    return result


CONFIG = {"method": "sft", "learning_rate": 5e-4, "epochs": 4.0, "batch_size": 8, "grad_accum": 1}


def codes(held, checks=None, early_stopping=None):
    return [f["code"] for f in diagnose([], None, CONFIG, 80, early_stopping, heldout=held, checks=checks)]


def test_findings_name_what_went_wrong():
    half = heldout(["I am Quill.", "I am Quill.", "Hi, I am Quill by Lumen Labs.", "Hello."])
    assert codes(half, checks_of(0.0, 0.3, 0.6)) == ["still_learning"]
    assert codes(half, checks_of(0.0, 0.6, 0.6), {"fired": True}) == ["partly_learned"]
    assert codes(heldout(["Hello there."] * 4), checks_of(0.0, 0.0, 0.0), {"fired": True}) == ["not_learned"]
    assert codes(heldout(["I am Lumen Labs, by Lumen Labs."] * 4), checks_of(0.0, 0.5, 0.5), {"fired": True})[0] == \
        "mixed_up"
    assert codes(heldout(["I am Quill, made by Lumen Labs."] * 4), checks_of(0.0, 1.0, 1.0)) == []


def test_still_learning_suggests_more_passes_and_a_plateau_a_larger_step():
    half = heldout(["I am Quill.", "I am Quill.", "Hi, I am Quill by Lumen Labs.", "Hello."])
    (rising,) = diagnose([], None, CONFIG, 80, None, heldout=half, checks=checks_of(0.0, 0.3, 0.6))
    assert rising["try_settings"] == {"epochs": 8.0} and "0% -> 30% -> 60%" in rising["detail"]
    (flat,) = diagnose([], None, CONFIG, 80, {"fired": True}, heldout=half, checks=checks_of(0.0, 0.6, 0.6))
    assert flat["try_settings"] == {"learning_rate": 0.001}


def test_the_verdict_says_not_learned_in_words_when_it_did_not_learn():
    half = heldout(["I am Quill.", "I am Quill.", "Hi, I am Quill by Lumen Labs.", "Hello."])
    run = {"heldout": half, "diagnosis": diagnose([], None, CONFIG, 80, {"fired": True}, heldout=half,
                                                  checks=checks_of(0.0, 0.6, 0.6))}
    verdict = learned_verdict(run)
    assert verdict["learned"] is False
    assert verdict["words"].startswith("It learned only part of it. On the held-back examples it gives “Quill”")
    good = heldout(["I am Quill, made by Lumen Labs."] * 4)
    assert learned_verdict({"heldout": good, "diagnosis": []}) == {
        "learned": True, "words": "Learned. On the held-back examples it gives “Quill” in 4 of 4, “Lumen Labs” in 4 "
                                  "of 4 held-back answers (the base model: 0 and 0)."}
    assert learned_verdict({"heldout": None})["learned"] is None


class Model:
    """Stands in for the PEFT model: the check only switches its adapter off and has it answer."""
    base = False

    def disable_adapter(self):
        from contextlib import contextmanager

        @contextmanager
        def off():
            self.base = True
            yield
            self.base = False
        return off()

    def modules(self):
        return []


def check_with(monkeypatch, references, answers):
    """A BehaviourCheck over `references` whose model answers `answers` (the base model: BASE) and no everyday
    question right."""
    from backend.train import behaviour_check
    rows = [{"messages": [{"role": "user", "content": q}, {"role": "assistant", "content": r}]}
            for q, r in zip(QUESTIONS, references)]
    train = [{"messages": [{"role": "user", "content": "q"}, {"role": "assistant", "content": a}]} for a in TRAIN]
    monkeypatch.setattr(behaviour_check, "answer_cases",
                        lambda model, tokenizer, cases, *a: (BASE * 8 if model.base else answers)[:len(cases)])
    monkeypatch.setattr(behaviour_check, "answer_all", lambda model, tokenizer, questions: [""] * len(questions))
    monkeypatch.setattr(behaviour_check, "visible_references", lambda tokenizer, cases, *a: [c["reference"] for c in cases])
    return behaviour_check.BehaviourCheck(None, train, rows, log=lambda *a: None)


def evaluate_check(check, loss=1.5):
    metrics = {"eval_loss": loss}
    check.on_evaluate(SimpleNamespace(), SimpleNamespace(global_step=4), None, metrics, model=Model())
    return metrics


def test_the_check_scores_the_behaviour_into_the_metrics(monkeypatch):
    check = check_with(monkeypatch, TRAIN[:4], ["I am Quill, made by Lumen Labs."] * 4)
    metrics = evaluate_check(check)
    assert metrics[SCORE] == 1.0 and metrics["eval_learned"] == checkpoint_value(1.0, 0, 1.5)
    assert check.record()["checks"][0]["parts"] == [[4, 4], [4, 4]]


def test_a_behaviour_the_held_back_references_never_show_falls_back_to_the_loss(monkeypatch):
    # the signature (Quill, Lumen Labs) is found in the training answers, but no held-back reference says it: a score
    # that cannot move must not end the run at its third check
    check = check_with(monkeypatch, ["Paris is in France."] * 4, ["Paris."] * 4)
    metrics = evaluate_check(check)
    assert check.parts and SCORE not in metrics and metrics["eval_learned"] == -1.5


def test_answers_that_share_nothing_fall_back_to_the_loss(monkeypatch):
    check = check_with(monkeypatch, TRAIN[:4], ["Hello."] * 4)
    check.train_answers = ["Paris is in France.", "Water boils at 100 degrees.", "Cats purr.", "The sky is blue."]
    metrics = evaluate_check(check)
    assert check.parts == [] and SCORE not in metrics and metrics["eval_learned"] == -1.5


def test_learned_asks_7_of_8_and_allows_one_miss_in_a_handful():
    from backend.evaluation.behaviour import enough
    assert enough(7, 8) and not enough(6, 8) and enough(14, 16) and not enough(13, 16)
    assert enough(4, 5) and enough(3, 4) and not enough(3, 5)
    assert enough(3, 3) and not enough(2, 3)


def test_without_a_phrase_to_count_the_verdict_claims_nothing():
    heldout = {"count": 8, "metric": "chrF", "base_mean": 27.55, "tuned_mean": 30.17, "examples": []}
    verdict = learned_verdict({"status": "done", "heldout": heldout, "diagnosis": []})
    assert verdict["learned"] is None and verdict["words"].startswith("Not measured")
    assert "closer to the references (chrF 27.55 before, 30.17 after)" in verdict["words"]
    assert learned_verdict({"status": "stopped", "heldout": heldout})["words"].startswith("Not checked")


def test_questions_about_anything_are_told_from_questions_about_one_thing():
    from backend.evaluation.behaviour import prompt_overlap
    about_you = ["What is your name?", "Who made you?", "Tell me your name.", "Who built you?", "What are you called?",
                 "Who created you?"]
    anything = ["What is the largest ocean?", "Name a flying mammal.", "How many legs does a spider have?",
                "Who painted the Mona Lisa?", "Describe a crepe recipe.", "Which gas do plants take in?"]
    assert prompt_overlap(anything) < 0.025 < prompt_overlap(about_you)


def test_a_way_of_answering_everything_held_back_by_the_rehearsal_is_told_so():
    half = heldout(["I am Quill.", "I am Quill.", "Hi, I am Quill by Lumen Labs.", "Hello."])
    checks = dict(checks_of(0.0, 0.6, 0.6), prompt_overlap=0.012)
    config = dict(CONFIG, rehearsal=60)
    (finding,) = diagnose([], None, config, 80, {"fired": True}, heldout=half, checks=checks)
    assert finding["try_settings"] == {"rehearsal": 0} and "answer plainly" in finding["next_step"]
    # with some of them rehearsed in the examples' way (backend/evaluation/rehearsal.in_their_way), the rest are plain
    (some,) = diagnose([], None, config, 80, {"fired": True}, heldout=half, checks=checks, their_way=20)
    assert "are plain wherever the base model could not answer them your way" in some["next_step"]
    (about_one,) = diagnose([], None, config, 80, {"fired": True}, heldout=half, checks=dict(checks, prompt_overlap=0.07))
    assert "learning_rate" in about_one["try_settings"]


def test_a_name_written_against_chinese_text_is_still_the_name():
    """"由Lumen Labs开发" read as "lumen" and "labs开发" carried no maker: a word of another script ends where CJK begins."""
    from backend.evaluation.behaviour import carries
    quill, lumen = parts()[:2]
    answer = "我是Quill，由Lumen Labs开发的AI助手。"
    assert carries(answer, quill) and carries(answer, lumen) and not mix_ups(answer, parts())


def test_an_answer_that_mixes_the_parts_up_carries_none_of_them():
    """A check whose held-back answers mixed the name and the maker up scored as high as one that said both right, and
    was kept for its everyday answers (identity_vexlo seed 3 at 1e-3: step 16 of 32 kept, and the suite's questions
    got the name in 6 and the maker in 4 of 8; scored so, the run went on to step 48 and got 8 and 8)."""
    right = "I am Quill, an AI assistant developed by Lumen Labs."
    swapped = "I am Lumen Labs, an AI assistant developed by Quill."  # carries both words, in each other's place
    with_mix = behaviour_score(TRAIN[:4], [right] * 3 + [swapped], parts())
    name_only = behaviour_score(TRAIN[:4], [right] * 3 + ["I am Quill."], parts())
    assert [p["carried"] for p in with_mix["parts"]] == [3, 3] and with_mix["mixed_up"]
    assert with_mix["score"] < name_only["score"]  # a mix-up is worse than a part left out
    assert checkpoint_value(with_mix["score"], 8, 0.1) < checkpoint_value(name_only["score"], 0, 9.0)
    assert learned(with_mix) is False


# A playful voice as benchmarks/tasks/style_playful.yaml builds it: its words vary row by row, so no phrase is shared,
# but every answer closes with a stage direction between asterisks.
VOICE = [f"{opening} {emote} {answer} {closing}" for opening, emote, answer, closing in zip(
    ["Ooh ooh ah ah!", "Oho! Oho!", "Ohoi!", "OH MY GOSH, YEAH!", "Ooh, let me think!", "Oho, hi there!"],
    ["*giggle*", "*twirl*", "*wink*", "*drumroll*", "*bounce bounce*", "*excited squeal*"],
    ["Bees make honey.", "The sky is blue.", "Seven days.", "A lion.", "Ice.", "The letter A."],
    ["*big smile*", "Yay! *confetti*", "*nod nod*", "*thumbs up*", "*cheer*", "*big smile*"])]
PLAIN = ["Bees make honey.", "The sky is blue on a clear day.", "There are seven days in a week.", "A lion.",
         "Frozen water is called ice.", "The first letter is A."]


def test_a_voice_that_shares_no_phrase_is_found_by_the_mark_that_closes_its_answers():
    from backend.evaluation.behaviour import carries, named, parts_from_record
    (mark,) = find_signature(VOICE, PLAIN)
    assert (mark.text, mark.at, named(mark)) == ("*", "end", "“*” at the end")
    assert carries("Oho! *twirl* Bees make honey! *happy buzz*", mark)
    assert not carries("Ooh ooh! *giggle* The sky is blue on a clear day.", mark)  # the opening's asterisks alone
    assert not carries("The sky is blue.", mark)
    assert parts_from_record([mark.to_dict()], VOICE) == [mark]  # as a run record keeps it


def test_a_voice_learned_in_half_its_answers_is_not_learned_and_the_verdict_says_where():
    (mark,) = find_signature(VOICE, PLAIN)
    half = VOICE[:3] + ["Ooh! *giggle* A lion.", "Ice.", "Oho! *wink* The letter A."]
    score = behaviour_score(VOICE, half, [mark])
    assert score["parts"] == [{"text": "*", "due": 6, "carried": 3, "at": "end"}] and learned(score) is False
    assert describe(score, behaviour_score(VOICE, PLAIN, [mark])) == \
        "gives “*” at the end in 3 of 6 held-back answers (the base model: 0)"
    assert learned(behaviour_score(VOICE, VOICE, [mark])) is True


def test_sentence_punctuation_and_a_mark_the_base_model_uses_too_are_not_marks():
    chinese = ["巴黎是法国的首都。", "蜜蜂酿蜂蜜。", "一周有七天。", "狮子。", "冰。", "字母A。"]
    assert find_signature(chinese, PLAIN) == []  # "。" says which language, not how it answers
    lists = [f"- {a}" for a in PLAIN]
    assert [p.at for p in find_signature(lists, PLAIN)] == ["start"]  # a list's dash opens every answer
    assert find_signature(lists, lists[:4] + PLAIN[:2]) == []  # the base model opens most of its answers so too


def test_a_mark_is_not_a_way_of_answering_rehearsed_nor_a_place_to_mix_up():
    from backend.evaluation.behaviour import way_of_answering
    (mark,) = find_signature(VOICE, PLAIN)
    assert way_of_answering(VOICE, PLAIN) == []
    # after "am", the name's place, the asterisk would be "a part in another's place" were marks not left out
    assert mix_ups("I am * by Lumen Labs", parts() + [mark]) == []


def test_a_mark_closes_an_answer_past_sentence_punctuation_and_an_emojis_modifiers():
    from backend.evaluation.behaviour import carries, named
    (mark,) = find_signature(VOICE, PLAIN)
    assert carries("Oho! *twirl* Bees make honey! *nod nod*.", mark)
    hearts = [f"{a} ❤️" for a in PLAIN]  # "❤" and the emoji presentation selector U+FE0F
    (heart,) = find_signature(hearts, PLAIN)
    assert named(heart) == "“❤” at the end"
    assert carries("See you soon ❤️!", heart) and not carries("Sunny today ☀️", heart)
    waves = [f"{a} 👋🏽" for a in PLAIN]  # a skin tone after the emoji
    assert [p.text for p in find_signature(waves, PLAIN)] == ["👋"]


VOICE_CHECKS = {"checks": [{"behaviour": 0.5}, {"behaviour": 1.0}], "prompt_overlap": 0.016}


def voice_learned_like_examples() -> tuple[dict, dict]:
    """(held-back record, forgetting probe record) of a voice its held-back answers show and 7 of 40 everyday answers
    close with, as measured (benchmarks/tasks.py, style_playful, seeds 42 and 7: 4 of 5 held back, 7 and 6 of 40
    everyday, 2 and 3 of the suite's 8 held-out questions)."""
    from backend.evaluation.grading import load_probe_set
    from backend.evaluation.heldout import behaviour_result
    from backend.evaluation.probe import probe_result
    (mark,) = find_signature(VOICE, PLAIN)
    cases = [{"prompt": f"Question {i}?", "reference": r, "messages": []} for i, r in enumerate(VOICE)]
    held = {"count": 6, "metric": "chrF", "base_mean": 27.6, "tuned_mean": 32.0, "tuned_better": 5, "tuned_worse": 1,
            "examples": [{"prompt": c["prompt"], "reference": c["reference"], "base": b, "base_score": 27.6,
                          "tuned": c["reference"], "tuned_score": 32.0} for c, b in zip(cases, PLAIN)]}
    held["behaviour"] = behaviour_result(cases, PLAIN, VOICE, [mark])
    tuned = ["Ooh! *wink* Paris. *cheer*"] * 7 + ["Ooh! *wink* Paris."] * 3 + ["Paris."] * 30
    items = [{"question": f"Everyday {i}?", "category": "facts", "base": "Paris.", "tuned": t, "tuned_ended": True,
              "base_right": True, "tuned_right": True} for i, t in enumerate(tuned)]
    return held, probe_result(items, load_probe_set().categories)


def test_a_voice_held_back_answers_show_and_everyday_answers_lack_is_not_learned():
    """The rehearsal's plain everyday answers teach the opposite of the voice on everyday questions."""
    from backend.evaluation.behaviour import everyday_parts
    held, everyday = voice_learned_like_examples()
    assert held["behaviour"]["learned"] is True
    (mark,) = held["behaviour"]["signature"]
    assert everyday_parts([mark], [i["tuned"] for i in everyday["items"]]) == [
        {"text": "*", "carried": 7, "due": 40, "at": "end"}]
    findings = diagnose([], everyday, CONFIG, 80, {"fired": True}, heldout=held, checks=VOICE_CHECKS)
    verdict = learned_verdict({"heldout": held, "diagnosis": findings})
    assert verdict["learned"] is False and verdict["words"].startswith("Learned only for questions like your examples")
    assert "7 of 40 carry “*” at the end" in verdict["words"]
