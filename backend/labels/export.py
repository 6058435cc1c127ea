"""Labels as training rows in TRL's conversational formats, and counts of what they amount to.

    kto: {"prompt": [messages], "completion": [{"role": "assistant", ...}], "label": true|false}   (thumbs)
    dpo: {"prompt": [messages], "chosen": [{"role": "assistant", ...}], "rejected": [...]}         (A/B left|right)
    sft: {"messages": [..., {"role": "assistant", "content": corrected}]}                           (edits)

The system prompt an answer was made with is part of the training prompt when every answer of the label
had the same one. Two sides made with different system prompts (a way to get two different answers) are
trained without either, so the model learns the preferred answer from the question alone.
"""
from __future__ import annotations

import json
import os
from pathlib import Path

from backend.words import plural

from .store import GOOD, PREFERS_ONE, VALUE_WORDS, VALUES, LabelStore

KINDS = ("kto", "dpo", "sft")


def kto_rows(db) -> list[dict]:
    return [row for _, row in _kto(db)]


def dpo_rows(db) -> list[dict]:
    return [row for _, row in _dpo(db)]


def sft_rows(db) -> list[dict]:
    return [row for _, row in _sft(db)]


def _kto(db):
    return [(label, {"prompt": _prompt(label), "completion": _assistant(label["answer"]),
                     "label": label["value"] == GOOD}) for label in LabelStore(db).list("thumb")]


def _dpo(db):
    pairs = []
    for label in LabelStore(db).list("ab"):
        if label["value"] not in PREFERS_ONE or label.get("prompt_b"):
            continue  # a tie or "both bad" prefers neither; answers to two different conversations share no prompt
        chosen, rejected = (label["answer"], label["answer_b"]) if label["value"] == "left" \
            else (label["answer_b"], label["answer"])
        pairs.append((label, {"prompt": _prompt(label), "chosen": _assistant(chosen),
                              "rejected": _assistant(rejected)}))
    return pairs


def _sft(db):
    return [(label, {"messages": _prompt(label) + _assistant(label["corrected"])})
            for label in LabelStore(db).list("edit")]


ROWS = {"kto": kto_rows, "dpo": dpo_rows, "sft": sft_rows}
LABELLED = {"kto": _kto, "dpo": _dpo, "sft": _sft}


def rows_for(db, kind: str) -> list[dict]:
    from backend.errors import DataError
    if kind not in ROWS:
        raise DataError(f"Unknown kind '{kind}'; use one of: {', '.join(KINDS)}.")
    return ROWS[kind](db)


def export_rows(db, kind: str, anonymise: bool = False) -> list[dict]:
    """The rows of `kind` as training uses them, each with the labeller who gave it: the account name, or with
    `anonymise` 'labeller 1', 'labeller 2', ... numbered in the order of their first label of any kind."""
    rows_for(db, kind)  # an unknown kind refused in words
    names = anonymous_names(db) if anonymise else {}
    return [{**row, "labeller": names.get(label["labeller"], label["labeller"])}
            for label, row in LABELLED[kind](db)]


def anonymous_names(db) -> dict[str, str]:
    """{account name: 'labeller N'}, N by the order of each labeller's first standing or undone label."""
    order = db.rows("select coalesce(labeller, 'owner') as name, min(id) as first from labels group by name "
                    "order by first")
    return {row["name"]: f"labeller {i}" for i, row in enumerate(order, 1)}


def write_jsonl(rows: list[dict], path: Path | str) -> Path:
    """One JSON object per line; an empty file for no rows. Written beside and renamed: never half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        for row in rows:
            f.write(json.dumps(row, ensure_ascii=False) + "\n")
        f.flush()
        os.fsync(f.fileno())
    tmp.replace(path)
    return path


def label_stats(db, session: str | None = None, labeller: str | None = None) -> dict:
    """Counts of standing labels by kind and value, what they train, how many were undone, and per labeller
    (`labellers`: name -> thumbs, choices, edits); of one session or one labeller when given."""
    scope, params = "", []
    if session:
        scope, params = scope + " and session = ?", params + [session]
    if labeller:
        scope, params = scope + " and coalesce(labeller, 'owner') = ?", params + [labeller]
    counts = {(r["kind"], r["value"]): r["n"] for r in db.rows(
        f"select kind, value, count(*) as n from labels where undone = 0{scope} group by kind, value", params)}
    unpaired = db.value("select count(*) from labels where undone = 0 and kind = 'ab' and value in "
                        f"({', '.join('?' for _ in PREFERS_ONE)}) and prompt_b is not null{scope}",
                        [*PREFERS_ONE, *params])  # two conversations: no pair
    undone = db.value(f"select count(*) from labels where undone = 1{scope}", params)
    per_labeller: dict[str, dict] = {}
    for r in db.rows("select coalesce(labeller, 'owner') as name, kind, count(*) as n from labels where undone = 0"
                     f"{scope} group by name, kind order by name", params):
        per_labeller.setdefault(r["name"], {"thumbs": 0, "choices": 0, "edits": 0})[
            {"thumb": "thumbs", "ab": "choices", "edit": "edits"}[r["kind"]]] = r["n"]
    thumbs = {v: counts.get(("thumb", v), 0) for v in VALUES["thumb"]}
    choices = {v: counts.get(("ab", v), 0) for v in VALUES["ab"]}
    return {
        "thumbs": thumbs, "choices": choices, "edits": counts.get(("edit", "edit"), 0), "undone": undone,
        "kto_examples": thumbs["up"] + thumbs["down"],
        "dpo_pairs": sum(choices[v] for v in PREFERS_ONE) - unpaired,
        "sft_examples": counts.get(("edit", "edit"), 0),
        "not_trained": sum(n for v, n in choices.items() if v not in PREFERS_ONE) + unpaired,
        "different_conversations": unpaired,
        "labellers": per_labeller,
    }


def stats_lines(stats: dict) -> list[str]:
    """What `label_stats` counts, in words: the lines `labels stats` prints and the Label tab shows."""
    t, c = stats["thumbs"], stats["choices"]
    apart = stats["different_conversations"]
    thumbs = ", ".join(f"{t[v]} {words}" for v, words in VALUE_WORDS["thumb"].items())
    choices = ", ".join(plural(c[v], words) if v == "tie" else f"{c[v]} {words}"
                        for v, words in VALUE_WORDS["ab"].items())
    return [
        f"Thumbs: {thumbs} -> {plural(stats['kto_examples'], 'KTO example')}"
        + ("" if not stats["kto_examples"] or all(t.values()) else " (KTO needs both good and bad answers)"),
        f"A/B choices: {choices} -> {plural(stats['dpo_pairs'], 'DPO pair')} (ties and 'both bad' are kept but "
        "make no pair" + (f"; nor {'does' if apart == 1 else 'do'} {plural(apart, 'choice')} between answers to two "
                          "different conversations, from Chat" if apart else "") + ")",
        f"Corrections: {stats['edits']} -> {plural(stats['sft_examples'], 'SFT example')}",
        f"Undone: {stats['undone']} (kept, not trained on)",
    ] + (["By labeller: " + "; ".join(
        f"{name} {n['thumbs']} thumbs, {n['choices']} A/B, {n['edits']} corrections"
        for name, n in stats["labellers"].items())] if len(stats.get("labellers", {})) > 1 else [])


def stats_text(stats: dict) -> str:
    return "\n".join(stats_lines(stats))


def _prompt(label: dict) -> list[dict]:
    prompt = [m for m in label["prompt"]]
    systems = {(label.get("settings") or {}).get("system") or ""}
    if label["kind"] == "ab":
        systems.add((label.get("settings_b") or {}).get("system") or "")
    if len(systems) == 1 and (system := systems.pop()):
        prompt = [{"role": "system", "content": system}] + [m for m in prompt if m["role"] != "system"]
    return prompt


def _assistant(text: str) -> list[dict]:
    return [{"role": "assistant", "content": text}]
