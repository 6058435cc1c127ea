"""Asked in other words: after a run whose examples teach who the assistant is (a name, a maker), the tuned model is
asked questions about itself that none of the examples asks word for word (reworded_questions.yaml), most of them
asking its name and its maker at once, and each answer must carry every part of the behaviour's signature
(backend/evaluation/behaviour.py) that the examples' answers in its language carry, without mixing them up. It is
never part of training or of the choice of checkpoint: a prototype that stopped on it learned its questions and still
missed the suite's (docs/benchmarks.md).

Why: the held-back examples are questions like the examples' own. On the suite's identity tasks every held-back answer
showed the name and the maker while questions of a new shape got the name in the maker's place ("The team that
created me is called Quorbel"), and the report card said "Learned" on runs that the suite's rule failed
(docs/benchmarks.md, "Asked in other words"). The built-in model cannot reword a question itself, so the questions are
data, one list per language; the check asks those of each language that enough of the examples' questions are in."""
from __future__ import annotations

import re
from dataclasses import replace
from functools import lru_cache
from pathlib import Path

import yaml

from backend.evaluation.behaviour import Part, carries, mix_ups

QUESTIONS_FILE = Path(__file__).with_name("reworded_questions.yaml")
# The examples teach who the assistant is when at least this many of their questions, and this share of them, ask
# about it (in one language or several). identity.json: 49 of its 91 questions, identity_quill.jsonl 35 of 40; the
# suite's refusal policy, FAQ, format and voice tasks: 0 or 1 of 42 to 50 (tests/test_reworded.py).
MIN_ABOUT_ITSELF = 5
ABOUT_ITSELF_SHARE = 0.3
# A language's questions are asked when at least this many of the examples' questions about the assistant are in it.
MIN_IN_LANGUAGE = 3
# A part is due in every answer when at least this share of the examples' answers to questions about the assistant
# carry it (identity.json: the name in 70%, the maker in 60%; "Who created you?" is answered with the maker alone).
PART_DUE_SHARE = 0.5
MAX_NEW_TOKENS = 64
CJK = re.compile(r"[\u3400-\u4dbf\u4e00-\u9fff]")
LANGUAGE_WORDS = {"en": "English", "zh": "Chinese"}


@lru_cache(maxsize=1)
def load_questions() -> tuple[dict, dict]:
    """({language: compiled pattern for a question about the assistant}, {language: [questions]})."""
    data = yaml.safe_load(QUESTIONS_FILE.read_text(encoding="utf-8"))
    return ({lang: re.compile(p.strip()) for lang, p in data["about_itself"].items()},
            {lang: list(qs) for lang, qs in data["questions"].items()})


def language(text: str) -> str:
    return "zh" if CJK.search(text or "") else "en"


def about_itself(prompts: list[str]) -> list[int]:
    """The indexes of the prompts that ask about the assistant itself."""
    patterns, _ = load_questions()
    return [i for i, p in enumerate(prompts) if patterns[language(p)].search(p or "")]


def teaches_about_itself(prompts: list[str]) -> bool:
    """Whether the examples teach who the assistant is: enough of their questions ask about it."""
    about = about_itself(prompts)
    return len(about) >= MIN_ABOUT_ITSELF and len(about) >= ABOUT_ITSELF_SHARE * len(prompts)


def rows_teach_about_itself(rows: list[dict]) -> bool:
    """teaches_about_itself for a dataset's rows (the presets' values for such examples: backend/presets.py)."""
    from backend.evaluation.heldout import heldout_cases
    return teaches_about_itself([case["prompt"] for case in heldout_cases(rows)])


def languages_to_ask(prompts: list[str]) -> list[str]:
    """The languages whose questions the check asks: none unless the examples teach who the assistant is."""
    if not teaches_about_itself(prompts):
        return []
    about = about_itself(prompts)
    counts = {}
    for i in about:
        counts[language(prompts[i])] = counts.get(language(prompts[i]), 0) + 1
    return [lang for lang in load_questions()[1] if counts.get(lang, 0) >= MIN_IN_LANGUAGE]


def due_parts(parts: list[Part], prompts: list[str], answers: list[str], lang: str | None = None) -> list[Part]:
    """The parts that the examples' answers to questions about the assistant (in `lang`, where given) mostly carry: a
    name written in each language's own way is due only in that language's answers."""
    assert len(prompts) == len(answers), "one answer per prompt"
    about = [i for i in about_itself(prompts) if lang is None or language(prompts[i]) == lang]
    return [p for p in parts if about and sum(carries(answers[i], p) for i in about) >= PART_DUE_SHARE * len(about)]


def plan(parts: list[Part], prompts: list[str], answers: list[str]) -> list[tuple[str, list[Part]]]:
    """(question, the parts its answer must carry) for each question to ask; none where the check does not apply. A
    language whose examples' answers carry no part of the signature is not asked."""
    parts = [p for p in parts if not p.at]  # who it is is said in words: a mark that closes answers is no part of it
    if not parts:
        return []
    asked_already = {_plain(p) for p in prompts}  # a question the examples ask is not asked "in other words"
    questions = load_questions()[1]
    planned = []
    for lang in languages_to_ask(prompts):
        due = due_parts(parts, prompts, answers, lang)
        planned += [(q, due) for q in questions[lang] if due and _plain(q) not in asked_already]
    return planned


def _plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", (text or "").lower()))


def reworded_result(planned: list[tuple[str, list[Part]]], answers: list[str]) -> dict:
    """Each answer is right when it carries every part due in its language and mixes none up. Per language, learned
    when every one of them is right.

    Stricter than the held-back examples (7 of 8, or all but one from 4 on: behaviour.enough), because this check is
    what tells the card that a run learned less than 7 of 8 questions asked in new words. A run right on exactly 7 of
    8 passes 12 questions with one miss allowed about half the time (0.875^12 + 12 x 0.125 x 0.875^11 = 0.54), and it
    did so on three stored identity runs that the suite's rule failed (maker 6 of 8, name 5 of 8; docs/benchmarks.md,
    "Every question asked in other words"); with none allowed, 20%."""
    assert len(planned) == len(answers), "one answer per question"
    rows, mixed = [], []
    for (question, parts), answer in zip(planned, answers):
        wrong = mix_ups(answer, parts)
        for said, place in wrong:
            if not any(m[:2] == [said, place] for m in mixed):
                mixed.append([said, place, answer])
        carried = {p.text: carries(answer, p) for p in parts}
        rows.append({"question": question, "answer": answer, "language": language(question), "parts": list(carried),
                     "carried": carried, "mixed_up": bool(wrong), "right": not wrong and all(carried.values())})
    by_language = {}
    for row in rows:
        counts = by_language.setdefault(row["language"], {"asked": 0, "right": 0, "mixed_up": 0,
                                                          "parts": row["parts"]})
        counts["asked"] += 1
        counts["right"] += row["right"]
        counts["mixed_up"] += row["mixed_up"]
    for counts in by_language.values():
        counts["learned"] = counts["right"] == counts["asked"]  # an answer that mixes the parts up is not right
    texts = list(dict.fromkeys(t for row in rows for t in row["parts"]))
    result = {"parts": [{"text": t, "carried": sum(r["carried"].get(t, False) for r in rows),
                         "due": sum(t in r["carried"] for r in rows)} for t in texts],
              "asked": len(rows), "right": sum(r["right"] for r in rows), "by_language": by_language,
              "mixed_up": mixed, "answers": rows,
              "learned": bool(rows) and all(c["learned"] for c in by_language.values())}
    result["summary"] = describe(result)
    return result


def describe(result: dict) -> str:
    """'gives “Quorbel” and “Kelvara Systems” together, neither in the other's place, in 10 of 12 answers' (per
    language where there are several: 'in 12 of 12 answers in English and 8 of 8 in Chinese'): the words after "it"
    in a sentence about the tuned model asked questions about itself in other words."""
    if not result["asked"]:
        return "was asked nothing about itself"
    groups = {}
    for lang, counts in result["by_language"].items():
        groups.setdefault(tuple(counts["parts"]), []).append((lang, counts))
    said = []
    for texts, langs in groups.items():
        names = " and ".join(f"“{t}”" for t in texts)
        together = " together, neither in the other's place," if len(texts) > 1 else ""
        counts = [(f"{c['right']} of {c['asked']}", LANGUAGE_WORDS.get(lang, lang)) for lang, c in langs]
        if len(result["by_language"]) == 1:
            said.append(f"gives {names}{together} in {counts[0][0]} answers")
        elif len(groups) == 1:
            first, *rest = counts
            said.append(f"gives {names}{together} in {first[0]} answers in {first[1]} and "
                        + " and ".join(f"{n} in {lang}" for n, lang in rest))
        else:
            said.append(f"gives {names}{together} in " + " and ".join(f"{n} answers in {lang}" for n, lang in counts))
    return "; it ".join(said)


def reworded_check(model, tokenizer, parts: list[Part], prompts: list[str], answers: list[str],
                   system: str | None = None) -> dict | None:
    """Asks the questions (greedy, one batch) and grades the answers; None where the check does not apply (the
    examples do not teach who the assistant is, or their answers share no name to look for). `system`: the system
    message the examples were trained under, where they share one (an identity given there is asked under it too)."""
    from backend.answers import GREEDY
    from backend.models.pool import generate_texts
    planned = plan(parts, prompts, answers)
    if not planned:
        return None
    lead = [{"role": "system", "content": system}] if system else []
    texts = generate_texts(model, tokenizer, [lead + [{"role": "user", "content": q}] for q, _ in planned],
                           replace(GREEDY, max_new_tokens=MAX_NEW_TOKENS), batch_size=len(planned))
    return reworded_result(planned, [text for text, _ in texts])
