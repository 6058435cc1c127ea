"""What the person's examples teach, read from the data itself, and whether the tuned model's answers show it.

chrF (backend/evaluation/heldout.py) says how many characters an answer shares with the reference; it gives "I am an AI
assistant named Lumen Labs" a good score against "I am Quill, ... by Lumen Labs", which names the maker as the
assistant and never says the name. So the verdict reads the behaviour instead:

- the signature: phrases that the training answers share and that the base model's answers to the same prompts do
  not ("Quill", "Lumen Labs", `{"answer":`, a fixed opening line), found by counting in how many answers each run of
  words occurs (`find_signature`); each phrase kept is one part of the behaviour;
- on each held-back example whose reference answer carries a part, whether the model's answer carries it too
  (`behaviour_score`): "gives 'Quill' in 3 of 8 held-back answers, 'Lumen Labs' in 0 of 8";
- mix-ups: a part said where the examples always say another one ("I am Lumen Labs" when the examples say "I am
  Quill" and "by Lumen Labs"), found from the word before each part in the training answers.
"""
from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass

# Words (with their inner hyphens and apostrophes: "no-code", "can't") and punctuation marks; each CJK character is
# a word of its own (those scripts write no spaces), and a word in another script ends where one begins: in
# "由Lumen Labs开发" the maker is "Lumen Labs", not "Lumen" and "labs开发".
CJK_CHARS = "\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uac00-\ud7af"
TOKEN = re.compile(rf"[{CJK_CHARS}]|[^\W_{CJK_CHARS}]+(?:[-'’][^\W_{CJK_CHARS}]+)*|[^\w\s]")
MAX_PHRASE = 6  # words in the longest phrase looked for
# A phrase is part of the behaviour when at least this share of the training answers carry it and at most
# BASE_MAX_SHARE of the base model's answers to the same prompts do.
MIN_SHARE = 0.4
BASE_MAX_SHARE = 0.1
MIN_ANSWERS = 3  # fewer training answers than this show no shared phrase
# A longer phrase replaces a shorter one inside it when nearly as many answers carry it ("lumen labs" for "lumen").
LONGER_KEEPS = 0.95
# A name and a maker, a key and a value, an opening and a closing. A third part was most often a common word of the
# examples' language: 提供 ("provide") in 58% of LLaMA-Factory's identity.json answers, mostly Chinese.
MAX_PARTS = 2
# Learned: every part is carried by at least this share of the held-back answers that should carry it (7 of 8).
# On fewer than 8 (a 40-row file holds 4 back) one miss is allowed from 4 on: 4 of 5 is what 7 of 8 looks like on a
# handful, and requiring 5 of 5 called runs "partly learned" whose 8 reworded questions gave 8 and 7 of 8
# (identity_zh, docs/benchmarks.md).
LEARNED_SHARE = 0.875
EDGE_WORDS = 3  # a part among an answer's first or last this many words frames it (Part.edge_share)
ONE_MISS_FROM = 4
# Words too common to be a behaviour on their own (a part must hold at least one other token).
COMMON = frozenset("""a an the i am is are was be to of and or in on at by for with as it this that you your my me we
i'm i’m can do how what who which here there""".split())

# Words that come before almost anything ("the", "a", punctuation) say nothing about whose place a part took.
COMMON_BEFORE = frozenset(["a", "an", "the", ",", ".", "!", "?", ":", ";", "(", "\"", "'", "and"])
# Enough answers to tell what they share: a larger file is sampled (every n-th answer), so that the count stays a
# fraction of a second (1,000 answers of 150 words took 0.6 s and 135 MB).
MAX_ANSWERS = 500


@dataclass(frozen=True)
class Part:
    text: str  # as written in the first training answer that carries it
    tokens: tuple[str, ...]  # lower case
    share: float  # of the training answers that carry it
    base_share: float  # of the base model's answers that carry it
    before: frozenset  # the words just before it in the training answers ("am", "by")
    edge_share: float = 0.0  # of the training answers that carry it among their first or last EDGE_WORDS tokens
    at: str = ""  # "start" or "end" for a mark that opens or closes the answers (_marks); "" for a phrase anywhere

    def to_dict(self) -> dict:
        return {"text": self.text, "share": round(self.share, 3), "base_share": round(self.base_share, 3),
                "edge_share": round(self.edge_share, 3), **({"at": self.at} if self.at else {})}


def tokens(text: str) -> list[str]:
    return [t.lower() for t in TOKEN.findall(text or "")]


def _phrases(words: list[str]) -> set[tuple[str, ...]]:
    return {tuple(words[i:i + n]) for n in range(1, MAX_PHRASE + 1) for i in range(len(words) - n + 1)}


def find_signature(train_answers: list[str], base_answers: list[str]) -> list[Part]:
    """The parts of the behaviour: at most MAX_PARTS phrases, most widely shared first, none inside another."""
    answers = [a for a in train_answers if a and a.strip()]
    answers = answers[::max(1, len(answers) // MAX_ANSWERS)][:MAX_ANSWERS]
    if len(answers) < MIN_ANSWERS:
        return []
    split = [tokens(a) for a in answers]
    counts = Counter(p for words in split for p in _phrases(words))
    base_split = [tokens(a) for a in base_answers if a]
    base_counts = Counter(p for words in base_split for p in _phrases(words))
    candidates = {p: n / len(answers) for p, n in counts.items()
                  if n / len(answers) >= MIN_SHARE
                  and base_counts[p] <= BASE_MAX_SHARE * max(len(base_split), 1)
                  and _telling(p)}
    # Grow each phrase by the words around it that (nearly) every answer carrying it has too: "lumen" becomes "lumen
    # labs". Only by words that say something: "by lumen labs" and "quill ," stay "lumen labs" and "quill".
    grown = {}
    for phrase, share in candidates.items():
        best = phrase
        for other, other_share in candidates.items():
            if len(other) > len(best) and _inside(best, other) and other_share >= LONGER_KEEPS * share \
                    and _adds_words(best, other):
                best = other
        grown[best] = candidates[best]
    parts = []
    # Most widely shared first. Of phrases that as many answers carry (a fixed sentence: all of its phrases), words
    # before punctuation, then the longest that begins and ends with a telling word: "assistant does not write"
    # rather than "no", "Lumen Labs" rather than "Quill，一个由 Lumen".
    order = sorted(grown.items(), key=lambda item: (-item[1], not all(_word(t) and t.isascii() for t in item[0]),
                                                    not (_clean(item[0][0]) and _clean(item[0][-1])),
                                                    -len(item[0]), item[0]))
    for phrase, share in order:
        if any(_inside(phrase, p.tokens) or _inside(p.tokens, phrase) or set(phrase) & set(p.tokens) - COMMON
               for p in parts):
            continue
        parts.append(Part(_written(phrase, answers), phrase, share,
                          base_counts[phrase] / max(len(base_split), 1), _words_before(phrase, split),
                          sum(_at_an_edge(phrase, words) for words in split) / len(split)))
        if len(parts) == MAX_PARTS:
            break
    return parts + _marks(split, base_split, MAX_PARTS - len(parts))


# Sentence punctuation ends answers in every language: which one says what language an answer is in, not how it answers.
SENTENCE_MARKS = frozenset(".!?。！？…,;:、")


def _marks(split: list[list[str]], base_split: list[list[str]], room: int) -> list[Part]:
    """Marks that open or close nearly every training answer and few of the base model's: a sign-off emoji, the closing
    asterisk of a stage direction. A voice whose words vary row by row ("Ooh! *giggle* ... *big smile*", "Oho! *twirl*
    ... *nod nod*") shares no phrase, yet every answer of it ends with one, and a tuned model that does not shows it
    has not learned the voice."""
    found = []
    for at in ("start", "end"):
        counts = Counter(_edge(words, at) for words in split if words)
        if not counts or room <= len(found):
            continue
        token, n = counts.most_common(1)[0]
        base = sum(bool(words) and _edge(words, at) == token for words in base_split)
        if not _word(token) and token not in SENTENCE_MARKS and n / len(split) >= EVERY_ANSWER_SHARE \
                and base <= BASE_MAX_SHARE * max(len(base_split), 1):
            found.append(Part(token, (token,), n / len(split), base / max(len(base_split), 1), frozenset(),
                              n / len(split), at))
    return found


# Characters that only modify the symbol before them, which the tokens split off: the emoji presentation selector
# ("❤️" is "❤" and U+FE0F), the joiner and skin tones.
MODIFIERS = frozenset(["\ufe0f", "\ufe0e", "\u200d", *map(chr, range(0x1F3FB, 0x1F400))])


def _edge(words: list[str], at: str) -> str:
    """The token that opens or closes an answer: at its end, the last before any sentence punctuation ("*nod nod*.")
    and modifiers."""
    if at == "start":
        return words[0]
    end = len(words)
    while end > 1 and (words[end - 1] in SENTENCE_MARKS or words[end - 1] in MODIFIERS):
        end -= 1
    return words[end - 1]


def named(part) -> str:
    """A part as a sentence names it: '“Lumen Labs”', '“*” at the end' (a Part or its dict)."""
    text, at = (part["text"], part.get("at")) if isinstance(part, dict) else (part.text, part.at)
    return f"“{text}”" + (f" at the {at}" if at else "")


def parts_from_record(signature: list[dict], train_answers: list[str]) -> list[Part]:
    """The signature a run record keeps (`Part.to_dict()`s) as Parts again, the words before each part read from the
    training answers (what mix_ups needs): for judging a finished run's answers afresh."""
    split = [tokens(a) for a in train_answers if a]
    return [Part(d["text"], tuple(tokens(d["text"])), d["share"], d["base_share"],
                 frozenset() if d.get("at") else _words_before(tuple(tokens(d["text"])), split),
                 d.get("edge_share", 0.0), d.get("at", "")) for d in signature]


def _at_an_edge(phrase: tuple, tokens_of_answer: list[str]) -> bool:
    """Whether `phrase` is among the first or the last EDGE_WORDS words of an answer (punctuation aside): where a
    format's keys, an opening or a sign-off sit."""
    phrase = tuple(t for t in phrase if _word(t))
    words = [t for t in tokens_of_answer if _word(t)]
    n = EDGE_WORDS + len(phrase)
    return bool(phrase) and (_inside(phrase, tuple(words[:n])) or _inside(phrase, tuple(words[-n:])))


def _adds_words(small: tuple, big: tuple) -> bool:
    """Whether every token `big` adds around `small` is a telling word: not punctuation, not a common word, not a
    CJK character (each is a word of its own, and most are common)."""
    n = len(small)
    start = next(i for i in range(len(big) - n + 1) if big[i:i + n] == small)
    return all(_word(t) and t.isascii() and t not in COMMON for t in big[:start] + big[start + n:])


def _clean(token: str) -> bool:
    return _word(token) and token not in COMMON


def _word(token: str) -> bool:
    return token.replace("-", "").replace("'", "").replace("’", "").isalnum()


def _telling(phrase: tuple) -> bool:
    """Whether a phrase can be a behaviour: it holds a word that is not one of the commonest, and is not a lone CJK
    character (in Chinese or Japanese those are the commonest words: 我, 的, 是)."""
    if any(t not in COMMON and _word(t) and t.isascii() for t in phrase):
        return True
    return sum(_word(t) and not t.isascii() for t in phrase) >= 2


def _inside(small: tuple, big: tuple) -> bool:
    n = len(small)
    return any(big[i:i + n] == small for i in range(len(big) - n + 1))


def _words_before(phrase: tuple, split: list[list[str]]) -> frozenset:
    n = len(phrase)
    return frozenset(words[i - 1] for words in split for i in range(1, len(words) - n + 1)
                     if tuple(words[i:i + n]) == phrase)


def _written(phrase: tuple, answers: list[str]) -> str:
    """The phrase as the examples write it (its case and spacing), from the first answer that carries it."""
    n = len(phrase)
    for answer in answers:
        found = list(TOKEN.finditer(answer))
        lowered = [m.group().lower() for m in found]
        for i in range(len(lowered) - n + 1):
            if tuple(lowered[i:i + n]) == phrase:
                return answer[found[i].start():found[i + n - 1].end()]
    return " ".join(phrase)


def carries(answer: str, part: Part) -> bool:
    words = tokens(answer)
    if part.at:
        return bool(words) and _edge(words, part.at) == part.tokens[0]
    return _inside(part.tokens, tuple(words))


def mix_ups(answer: str, parts: list[Part]) -> list[tuple[str, str]]:
    """(part said, part whose place it took): a part after a word that, in the examples, only ever comes before
    another part ("am" before the name, "by" before the maker: "I am Lumen Labs" puts the maker in the name's place)."""
    words = tokens(answer)
    found = []
    parts = [p for p in parts if not p.at]  # a mark has no place of another part to take
    for part in parts:
        n = len(part.tokens)
        for i in range(1, len(words) - n + 1):
            if tuple(words[i:i + n]) != part.tokens or words[i - 1] in part.before:
                continue
            other = next((o for o in parts if o is not part and words[i - 1] in o.before - COMMON_BEFORE), None)
            if other is not None and (part.text, other.text) not in found:
                found.append((part.text, other.text))
    return found


def behaviour_score(references: list[str], answers: list[str], parts: list[Part]) -> dict:
    """Per part, how many of the answers carry it, out of the examples whose reference carries it; and mix-ups. An
    answer that mixes the parts up carries none of them, as the suite grades it: counted, a check whose answers put
    the name in the maker's place scored as high as a later one that said both right, and was the checkpoint kept
    (docs/benchmarks.md, "A mixed-up answer carries no part")."""
    mixed = []  # [part said, part whose place it took, the first answer that did it]
    wrong = set()  # the answers that mix the parts up
    for i, answer in enumerate(answers):
        for said, place in mix_ups(answer, parts):
            wrong.add(i)
            if not any(m[:2] == [said, place] for m in mixed):
                mixed.append([said, place, answer])
    results = []
    for part in parts:
        due = [i for i, ref in enumerate(references) if carries(ref, part)]
        results.append({"text": part.text, "due": len(due),
                        "carried": sum(carries(answers[i], part) for i in due if i not in wrong),
                        **({"at": part.at} if part.at else {})})
    return {"parts": results, "mixed_up": mixed, "score": _score(results)}


def _score(results: list[dict]) -> float | None:
    """The mean share over the parts that had examples to show them in; None when none had."""
    shares = [r["carried"] / r["due"] for r in results if r["due"]]
    return round(sum(shares) / len(shares), 4) if shares else None


def learned(score: dict | None) -> bool | None:
    """Every part in enough of the answers due to carry it, and no mix-up; None: nothing to judge."""
    if not score or score.get("score") is None:
        return None
    return not score["mixed_up"] and all(enough(r["carried"], r["due"]) for r in score["parts"] if r["due"])


def enough(carried: int, due: int) -> bool:
    """Whether `carried` of `due` answers showing a part counts as learned: LEARNED_SHARE of them, or all but one from
    ONE_MISS_FROM on."""
    return carried >= LEARNED_SHARE * due or (due >= ONE_MISS_FROM and carried >= due - 1)


# A part that nearly every example's answer carries at its start or its end (a JSON key, an opening, a sign-off) is a
# way of answering; a name or a topic that answers mention here and there ("Acme" in a support FAQ) is not, and no
# everyday answer is due to carry it.
EVERY_ANSWER_SHARE = 0.9


def says_every(answer: str, texts: list[str]) -> bool:
    """Whether `answer` holds every one of the phrases `texts`, word for word (as the signature's parts are found)."""
    words = tuple(tokens(answer))
    return all(_inside(tuple(tokens(text)), words) for text in texts)


def shows(answer: str, part: dict) -> bool:
    """Whether `answer` carries a part of the signature as a run record keeps it (`Part.to_dict()`): a phrase anywhere,
    a mark at its edge."""
    if part.get("at"):
        return carries(answer, Part(part["text"], tuple(tokens(part["text"])), 0.0, 0.0, frozenset(), at=part["at"]))
    return says_every(answer, [part["text"]])


def frames_every_answer(share: float, edge_share: float) -> bool:
    """Whether a part of the signature is a way of answering: nearly every training answer carries it at an edge."""
    return share >= EVERY_ANSWER_SHARE and edge_share >= EVERY_ANSWER_SHARE


def way_of_answering(train_answers: list[str], base_answers: list[str]) -> list[Part]:
    """The phrases of the signature that frame nearly every training answer (a JSON object's keys, a fixed opening):
    none for a voice whose openings vary row by row, or for examples that answer each question its own way. A mark
    alone is not one: everyday answers rehearsed in a playful voice's way lost everyday answers and every refusal for
    closings in 5 of 8 answers (docs/benchmarks.md, "Everyday answers rehearsed in the examples' way")."""
    return [p for p in find_signature(train_answers, base_answers)
            if not p.at and frames_every_answer(p.share, p.edge_share)]


def everyday_parts(signature: list[dict], answers: list[str], ended: list[bool] | None = None) -> list[dict]:
    """For a way of answering every question: each part of the signature (`Part.to_dict()`s) that nearly every
    training answer carries at an edge, with how many of `answers` (to everyday questions) carry it: {text, carried,
    due}. An answer cut off at its token budget (`ended` False) before it says a part is not due to carry it: the
    JSON's last key may lie past the budget, as the held-back answers' references are cut (visible_references)."""
    ended = ended if ended is not None else [True] * len(answers)
    found = []
    for part in signature:
        if not frames_every_answer(part["share"], part.get("edge_share", 0.0)):
            continue
        carried = [shows(a, part) for a in answers]
        found.append({"text": part["text"], "carried": sum(carried), "due": sum(c or e for c, e in zip(carried, ended)),
                      **({"at": part["at"]} if part.get("at") else {})})
    return found


# Below this overlap of the examples' questions (prompt_overlap) they ask about anything: the behaviour is a way of
# answering every question (a format, a voice), and plain everyday answers rehearsed beside them teach the opposite.
# The line lies between the tasks measured on each side (docs/benchmarks.md, "Learned on data it never saw": a JSON
# format and a playful voice below it, identity, refusal and FAQ tasks above).
VARIED_QUESTIONS = 0.025


def asks_about_anything(prompts: list[str]) -> bool:
    """Whether the examples' questions are about anything: a way of answering every question (a format, a voice)."""
    return prompt_overlap(prompts) < VARIED_QUESTIONS


def prompt_overlap(prompts: list[str], sample: int = 60) -> float:
    """How alike the examples' questions are: the mean share of content words two of them have in common (pairwise
    Jaccard, over an even sample). Measured on the suite (benchmarks/tasks): identity questions 0.07-0.10, a refusal
    policy for one kind of request 0.034, alpaca questions answered in JSON or in a playful voice 0.010-0.016."""
    prompts = prompts[::max(1, len(prompts) // sample)][:sample]
    sets = [{t for t in tokens(p) if _word(t) and t not in COMMON} for p in prompts]
    pairs = [(a, b) for i, a in enumerate(sets) for b in sets[i + 1:]]
    return sum(len(a & b) / max(1, len(a | b)) for a, b in pairs) / len(pairs) if pairs else 1.0


def describe(score: dict, base: dict | None = None) -> str:
    """'gives "Quill" in 3 of 8 held-back answers, "Lumen Labs" in 0 of 8 (the base model: 0 and 0)': the words
    after "it" in a sentence about the tuned model."""
    shown = [r for r in score["parts"] if r["due"]]
    if not shown:
        return "no held-back example shows what the examples teach"
    text = ", ".join(f"{named(r)} in {r['carried']} of {r['due']}" for r in shown)
    words = f"gives {text} held-back answers"
    if base:
        before = [b["carried"] for b in base["parts"] if b["due"]]
        counts = ", ".join(map(str, before[:-1])) + (" and " if len(before) > 1 else "") + str(before[-1])
        words += f" (the base model: {counts})"
    return words
