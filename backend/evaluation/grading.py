"""Grading an answer by a rule written as data (backend/evaluation/probe_questions.yaml): a few rule kinds, each a
small check that needs no model. A rule is a dict with a `kind` and that kind's fields:

- regex:       {pattern, case_sensitive: false} the pattern occurs somewhere in the answer
- one_word:    {pattern: optional} the answer is a single word (surrounding punctuation aside), matching
               `pattern` when given
- count_items: {count} the answer lists exactly `count` items (numbered or bulleted lines, or, on one
               line, items separated by commas and a final "and"/"or")
- refuses:     {} the answer declines: it holds one of the file's refusal markers ("I can't", ...) and none of its
               compliance markers ("help you with that": declined in words, then offered)
- language:    {language, pattern: optional} the answer is written in `language` (a code the file's
               `languages` table knows), judged by counting that language's common short words, and matches
               `pattern` (the fact asked for) when given; every language rule in the probe file gives one

Under every kind, an answer that only echoes the question (see `echoes`) is wrong, when the question is known.
"""
from __future__ import annotations

import functools
import re
from dataclasses import dataclass
from pathlib import Path

import yaml

from backend.errors import TuneloopError

QUESTIONS_FILE = Path(__file__).resolve().parent / "probe_questions.yaml"
REHEARSAL_RULES_FILE = Path(__file__).resolve().parent / "rehearsal_rules.yaml"
RULE_FIELDS = {
    "regex": {"pattern", "case_sensitive"},
    "one_word": {"pattern"},
    "count_items": {"count"},
    "refuses": set(),
    "language": {"language", "pattern"},
}
# An answer counts as written in a language when at least this many of its words are that language's
# common short words, and more than of any other language: one shared word ("de", "la") proves nothing.
LANGUAGE_MIN_WORDS = 2
# An answer that adds no word of its own echoes the question once it holds this share of the question's distinct
# words. Not lower: "Repeat after me: the cat sat on the mat." is rightly answered with 5 of its 8 words. And a
# single new word is not an echo: "The capital of France is Paris." adds only "Paris", and that is the answer.
ECHO_SHARE = 0.75

WORD = re.compile(r"[^\W\d_]+(?:['’][^\W\d_]+)?|\d+")
LIST_ITEM = re.compile(r"^\s*(?:[-*•+]|\d{1,2}[.)]|[a-z][.)])\s+\S", re.MULTILINE)


class ProbeFileError(TuneloopError):
    """The probe questions file holds a rule that cannot be checked."""


@dataclass(frozen=True)
class Question:
    question: str
    category: str
    rule: dict
    max_new_tokens: int  # the category's budget unless the question sets its own


@dataclass(frozen=True)
class ProbeSet:
    questions: tuple[Question, ...]
    categories: dict  # name -> {"one", "many": its name in the summary, "kind": its questions in a sentence,
    # "max_new_tokens"}, in file order
    refusal_markers: tuple[str, ...]
    languages: dict  # code -> frozenset of common short words
    compliance_markers: tuple[str, ...] = ()  # going along with the request after all


def grade(answer: str, rule: dict, probe_set: ProbeSet, question: str | None = None) -> bool:
    """Whether `answer` passes `rule`, and, when `question` is given, does more than echo it."""
    kind = rule["kind"]
    text = (answer or "").strip()
    if question and echoes(text, question):
        return False
    if kind == "regex":
        flags = 0 if rule.get("case_sensitive") else re.IGNORECASE
        return re.search(rule["pattern"], text, flags) is not None
    if kind == "one_word":
        words = text.strip(" \t\n.!?,;:\"'“”‘’()*").split()
        return len(words) == 1 and _matches(rule.get("pattern"), words[0])
    if kind == "count_items":
        return count_items(text) == int(rule["count"])
    if kind == "refuses":
        lowered = _plain_quotes(text).lower()
        return any(marker in lowered for marker in probe_set.refusal_markers) and \
            not any(marker in lowered for marker in probe_set.compliance_markers)
    if kind == "language":
        return written_in(text, rule["language"], probe_set.languages) and _matches(rule.get("pattern"), text)
    raise ProbeFileError(f"Unknown rule kind '{kind}'.")


def count_items(text: str) -> int:
    """Items in a list: numbered or bulleted lines; on a single line, 'a, b and c' counts 3."""
    items = LIST_ITEM.findall(text)
    if items:
        return len(items)
    lines = [line for line in text.splitlines() if line.strip()]
    if len(lines) != 1:
        return len(lines)
    body = re.sub(r"^[^:]*:\s*", "", lines[0]).rstrip(" .!")  # "Here are three: a, b and c."
    parts = [p for p in re.split(r",|\band\b|\bor\b", body) if p.strip()]
    return len(parts)


def echoes(answer: str, question: str) -> bool:
    """Whether `answer` only repeats `question`, case, punctuation and spacing aside: it starts with the question's
    words ("Wie heißt die Hauptstadt von Deutschland?\n\nThis is a German proverb"), or it adds no word of its own
    and holds at least ECHO_SHARE of the question's distinct words ("La capitale de la France est la France.")."""
    asked, said = _words(question), _words(answer)
    if not asked or not said:
        return False
    if said[:len(asked)] == asked:
        return True
    return set(said) <= set(asked) and len(set(said)) >= ECHO_SHARE * len(set(asked))


def written_in(text: str, language: str, languages: dict) -> bool:
    words = _words(text)
    counts = {code: sum(w in vocabulary for w in words) for code, vocabulary in languages.items()}
    mine = counts.get(language, 0)
    return mine >= LANGUAGE_MIN_WORDS and all(mine > n for code, n in counts.items() if code != language)


def _matches(pattern: str | None, text: str) -> bool:
    return pattern is None or re.search(pattern, text, re.IGNORECASE) is not None


def _words(text: str) -> list[str]:
    return [w.lower() for w in WORD.findall(_plain_quotes(text))]


def _plain_quotes(text: str) -> str:
    return text.replace("’", "'").replace("‘", "'")


@functools.lru_cache(maxsize=4)
def load_probe_set(path: Path = QUESTIONS_FILE) -> ProbeSet:
    """Read and check the probe file: every rule's kind and fields, categories and languages known."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    categories = {name: {"one": spec.get("one", name), "many": spec.get("many", name),
                         "kind": spec.get("kind", spec.get("many", name)),
                         "max_new_tokens": int(spec["max_new_tokens"])} for name, spec in data["categories"].items()}
    languages = {code: frozenset(w.lower() for w in words) for code, words in data["languages"].items()}
    questions = []
    for number, entry in enumerate(data["questions"], start=1):
        where = f"{Path(path).name}, question {number} ({entry.get('question', '?')!r})"
        rule = check_rule(entry.get("rule"), where, languages)
        if entry.get("category") not in categories:
            raise ProbeFileError(f"{where}: category {entry.get('category')!r} is not declared under 'categories'.")
        budget = int(entry.get("max_new_tokens") or categories[entry["category"]]["max_new_tokens"])
        questions.append(Question(entry["question"], entry["category"], rule, budget))
    return ProbeSet(tuple(questions), categories, tuple(m.lower() for m in data["refusal_markers"]), languages,
                    tuple(m.lower() for m in data.get("compliance_markers") or ()))


def check_rule(rule: dict | None, where: str, languages: dict) -> dict:
    """`rule` as read from a file, checked: its kind and fields known, its pattern valid, its language listed."""
    rule = dict(rule or {})
    kind = rule.get("kind")
    if kind not in RULE_FIELDS:
        raise ProbeFileError(f"{where}: rule kind {kind!r} is not one of {', '.join(RULE_FIELDS)}.")
    unknown = set(rule) - RULE_FIELDS[kind] - {"kind"}
    if unknown:
        raise ProbeFileError(f"{where}: a {kind} rule takes no {', '.join(sorted(unknown))}.")
    if kind == "regex" and "pattern" not in rule or kind == "count_items" and "count" not in rule:
        raise ProbeFileError(f"{where}: a {kind} rule needs {'a pattern' if kind == 'regex' else 'a count'}.")
    if kind == "language" and rule.get("language") not in languages:
        raise ProbeFileError(f"{where}: language {rule.get('language')!r} has no word list under 'languages'.")
    if rule.get("pattern") is not None:
        try:
            re.compile(rule["pattern"])
        except re.error as exc:
            raise ProbeFileError(f"{where}: the pattern {rule['pattern']!r} is not a valid regex ({exc}).") from None
    return rule


@functools.lru_cache(maxsize=4)
def load_rehearsal_rules(path: Path = REHEARSAL_RULES_FILE) -> dict:
    """The rehearsed prompts' rules (backend/evaluation/rehearsal_rules.yaml), each checked: prompt -> rule."""
    data = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
    languages = load_probe_set().languages
    return {prompt: check_rule(rule, f"{Path(path).name}, prompt {prompt!r}", languages)
            for prompt, rule in (data.get("rules") or {}).items()}
