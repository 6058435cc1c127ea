"""Numbers about the valid examples: token lengths (with the model's tokenizer or an estimate), turns, labels, split."""
from __future__ import annotations

import math
import random
import statistics
from typing import Any

from backend.config import default
from backend.words import plural

CHARS_PER_TOKEN = 4
MAX_CHARS_TOKENIZED = 200_000  # longer texts: tokenize this much and extrapolate, so one huge row stays fast
CHUNK = 512
MAX_VALIDATION = 200
MIN_ROWS_FOR_VALIDATION = 10
SHARE = default("validation_split")  # held back to check learning, unless asked otherwise


def conversations(kind: str, example: dict) -> list[list[dict]]:
    """The conversations an example trains on: sft its messages; dpo prompt+chosen and prompt+rejected; kto prompt+completion."""
    if kind == "sft":
        return [example["messages"]]
    if kind == "dpo":
        return [example["prompt"] + example["chosen"], example["prompt"] + example["rejected"]]
    return [example["prompt"] + example["completion"]]


def _estimate(conversation: list[dict]) -> int:
    return sum(math.ceil(len(m["content"]) / CHARS_PER_TOKEN) + 4 for m in conversation)


def _plain(conversation: list[dict]) -> str:
    return "".join(f"{m['role']}: {m['content']}\n" for m in conversation)


def _render(tokenizer, convs: list[list[dict]]) -> list[str]:
    try:
        texts = tokenizer.apply_chat_template(convs, tokenize=False)
        if isinstance(texts, list) and len(texts) == len(convs) and all(isinstance(t, str) for t in texts):
            return texts
    except Exception:
        pass
    out = []
    for conv in convs:  # one bad conversation (a template that refuses a role order) must not stop the others
        try:
            out.append(tokenizer.apply_chat_template(conv, tokenize=False))
        except Exception:
            out.append(_plain(conv))
    return out


def _count(tokenizer, texts: list[str]) -> list[int]:
    heads = [t[:MAX_CHARS_TOKENIZED] for t in texts]
    # The Rust tokenizer itself, where it neither pads nor truncates: the same ids in about 13% less time.
    fast = getattr(tokenizer, "_tokenizer", None)
    if hasattr(fast, "encode_batch") and getattr(fast, "padding", 1) is None and getattr(fast, "truncation", 1) is None:
        ids = [encoding.ids for encoding in fast.encode_batch(heads, add_special_tokens=False)]
    else:
        ids = tokenizer(heads, add_special_tokens=False)["input_ids"]
    return [len(i) if len(t) <= MAX_CHARS_TOKENIZED else math.ceil(len(i) * len(t) / MAX_CHARS_TOKENIZED)
            for i, t in zip(ids, texts)]


def token_lengths(kind: str, examples: list[dict], tokenizer=None) -> tuple[list[int], str]:
    """One length per example (the longer of its conversations) and how it was counted."""
    per_example = [conversations(kind, ex) for ex in examples]
    if tokenizer is None:
        return [max(_estimate(c) for c in convs) for convs in per_example], "estimate"
    flat = [c for convs in per_example for c in convs]
    counts: list[int] = []
    for start in range(0, len(flat), CHUNK):
        counts += _count(tokenizer, _render(tokenizer, flat[start:start + CHUNK]))
    lengths, i = [], 0
    for convs in per_example:
        lengths.append(max(counts[i:i + len(convs)]))
        i += len(convs)
    return lengths, "tokenizer"


BINS = 24  # about this many bars across the examples' lengths


def _nice_width(span: float, bins: int) -> int:
    """The smallest of 1, 2, 5, 10, 20, 50, ... tokens that covers `span` in at most `bins` bins."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if step * factor * bins >= span:
                return step * factor
        step *= 10


def histogram(values: list[int], limit: int, bins: int = BINS) -> dict:
    """Counts of the examples' lengths in bins of a round width, from the shortest example to the longest (not from
    0 to the limit: 40 examples of 48 to 59 tokens against a limit of 512 made two bars, and DPO pairs of 97 to 4,577
    tokens put every pair under the limit into two bars as well). `cut`: per bin, how many are longer than `limit`,
    so a bar the limit falls inside is drawn part kept, part cut."""
    if not values:
        return {"edges": [0, 1], "counts": [0], "cut": [0]}
    low, high = min(values), max(values)
    width = _nice_width(high - low + 1, bins)
    start = low // width * width
    count = (high - start) // width + 1
    counts, cut = [0] * count, [0] * count
    for v in values:
        counts[(v - start) // width] += 1
        cut[(v - start) // width] += v > limit
    return {"edges": [start + i * width for i in range(count + 1)], "counts": counts, "cut": cut}


def make_split(n: int, seed: int = 0, fraction: float = SHARE) -> dict[str, list[int]]:
    """Seeded train/validation split: `fraction` of the rows, at most 200, none below 10 rows."""
    if n < MIN_ROWS_FOR_VALIDATION or fraction <= 0:
        return {"train": list(range(n)), "validation": []}
    size = min(MAX_VALIDATION, max(1, round(n * fraction)), n - 1)
    order = list(range(n))
    random.Random(seed).shuffle(order)
    validation = sorted(order[:size])
    chosen = set(validation)
    return {"train": [i for i in range(n) if i not in chosen], "validation": validation}


def _tidy(x: float) -> int | float:
    return int(x) if float(x).is_integer() else round(x, 1)


def _summary(values: list[int]) -> dict:
    if not values:
        return {"min": 0, "median": 0, "mean": 0, "p95": 0, "max": 0}
    ordered = sorted(values)
    return {
        "min": ordered[0], "median": _tidy(statistics.median(ordered)), "mean": round(sum(ordered) / len(ordered), 1),
        "p95": ordered[min(len(ordered) - 1, math.ceil(0.95 * len(ordered)) - 1)], "max": ordered[-1],
    }


def compute(kind: str, examples: list[dict], rows: list[int], lengths: list[int], counted_with: str,
            max_length: int, split: dict[str, list[int]], seed: int, fraction: float = SHARE) -> tuple[dict, list[str]]:
    """The stats dict and the warnings it leads to."""
    warnings = []
    turns = [sum(m["role"] != "system" for m in conversations(kind, ex)[0]) for ex in examples]
    turn_counts: dict[str, int] = {}
    for t in sorted(turns):
        turn_counts[str(t)] = turn_counts.get(str(t), 0) + 1
    over = [(length, row) for length, row in zip(lengths, rows) if length > max_length]
    cut = sum(length - max_length for length, _ in over)
    longest = max(zip(lengths, rows), default=(0, 0))
    stats: dict[str, Any] = {
        "kind": kind,
        "examples": len(examples),
        "turns": {**_summary(turns), "histogram": turn_counts},
        "multi_turn": sum(1 for t in turns if t > 2),
        "tokens": {
            "counted_with": counted_with, **_summary(lengths), "total": sum(lengths), "max_length": max_length,
            "over_max_length": len(over), "tokens_cut": cut, "longest_row": longest[1],
            "over_rows": [{"row": row, "tokens": length, "cut": length - max_length} for length, row in over[:200]],
            "histogram": histogram(lengths, max_length),
        },
        "split": {"train": len(split["train"]), "validation": len(split["validation"]), "seed": seed, "fraction": fraction},
    }
    if over:
        warnings.append(
            f"{len(over):,} example{'s are' if len(over) > 1 else ' is'} longer than the max length of {max_length} tokens; "
            f"{cut:,} tokens would be cut in all (the longest, row {longest[1]}, has {longest[0]:,}). "
            "The rows are kept; raise the max length or shorten them.")
    if kind == "kto":
        good = sum(1 for ex in examples if ex["label"])
        bad = len(examples) - good
        stats["labels"] = {"desirable": good, "undesirable": bad,
                           "desirable_share": round(good / len(examples), 3) if examples else 0.0}
        if examples and (good == 0 or bad == 0):
            which = "good (desirable)" if bad == 0 else "bad (undesirable)"
            warnings.append(f"Every example is labelled {which}. KTO learns from the contrast: add some of the other kind.")
        elif examples and min(good, bad) / max(good, bad) < 0.25:
            warnings.append(f"The labels are unbalanced: {good:,} good and {bad:,} bad. Training still works, "
                            "but a closer balance (no more than about 4 to 1) usually does better.")
    if 0 < len(examples) < MIN_ROWS_FOR_VALIDATION:
        warnings.append(f"Only {plural(len(examples), 'usable example')}: no validation split was made. "
                        "A few hundred examples usually teach a model much more.")
    return stats, warnings


def describe(stats: dict) -> list[str]:
    """Stats in words, for DataReport.summary()."""
    if not stats.get("examples"):
        return []
    t, turns = stats["tokens"], stats["turns"]
    how = "counted with the model's tokenizer" if t["counted_with"] == "tokenizer" else \
        f"estimated at about {CHARS_PER_TOKEN} characters per token"
    lines = [
        f"Length in tokens ({how}): median {t['median']:,}, 95% under {t['p95']:,}, longest {t['max']:,} (row {t['longest_row']}); "
        f"max length {t['max_length']:,}: {t['over_max_length']:,} longer.",
        f"Turns per example (without system): median {turns['median']}, from {turns['min']} to {turns['max']}; "
        f"{stats['multi_turn']:,} multi-turn.",
    ]
    if "labels" in stats:
        lab = stats["labels"]
        lines.append(f"Labels: {lab['desirable']:,} good, {lab['undesirable']:,} bad.")
    s = stats["split"]
    lines.append(f"Split: {s['train']:,} for training, {s['validation']:,} for validation (seed {s['seed']}).")
    return lines
