"""Which kind of data (sft, dpo, kto) and which format a file holds, which column feeds which field, how sure."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from backend.errors import DataError

from .normalize import HH_MARKER, RowProblem, _maybe_json, _is_message, is_missing, parse_label

# Canonical field -> column names that mean it (normalised: lower case, '_' for spaces and dashes), best first.
FIELD_ALIASES: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "conversations", "conversation", "chat", "dialog", "dialogue"),
    "chosen_messages": ("chosen_messages", "chosen_conversation", "chosen_conversations"),
    "rejected_messages": ("rejected_messages", "rejected_conversation", "rejected_conversations"),
    "system": ("system", "system_prompt", "system_message"),
    "tools": ("tools", "functions"),
    "history": ("history",),
    "instruction": ("instruction", "instructions"),
    "input": ("input", "context", "inputs"),
    "prompt": ("prompt", "question", "query", "user", "human", "request", "q", "user_input", "user_message"),
    "completion": ("completion", "answer", "response", "output", "assistant", "gpt", "reply", "target", "a", "bot",
                   "assistant_response", "model_response"),
    "chosen": ("chosen", "chosen_response", "chosen_answer", "preferred", "accepted"),
    "rejected": ("rejected", "rejected_response", "rejected_answer", "dispreferred"),
    "label": ("label", "kto_tag", "kto_label", "desirable", "is_desirable", "thumbs", "thumbs_up", "feedback", "good", "is_good"),
}
STRONG = {"messages", "conversations", "chosen_messages", "rejected_messages", "system", "tools", "history", "instruction",
          "input", "output", "prompt", "completion", "question", "answer", "response", "query", "chosen", "rejected",
          "label", "kto_tag"}
COLUMN_FIELD = {alias: f for f, aliases in FIELD_ALIASES.items() for alias in aliases}
MESSAGE_FIELDS = {"messages", "chosen_messages", "rejected_messages"}
SAMPLE = 200
LOW_CONFIDENCE = 0.6


@dataclass
class Detection:
    kind: str
    format: str
    converter: str
    mapping: dict[str, str]
    confidence: float
    notices: list[str] = field(default_factory=list)


def norm(column: str) -> str:
    return "_".join(str(column).strip().lstrip("\ufeff").lower().replace("-", " ").split())


def field_name(name: str) -> str | None:
    """A field given on the command line (--map FIELD=column): canonical names and their aliases."""
    key = norm(name)
    return key if key in FIELD_ALIASES else COLUMN_FIELD.get(key)


def _assign(columns: list[str], user: dict[str, str]) -> tuple[dict[str, str], dict[str, list[str]]]:
    """field -> column (user mapping first, then the best alias); also the runner-up columns of each field."""
    taken = set(user.values())
    candidates: dict[str, list[str]] = {}
    for column in columns:
        if column in taken:
            continue
        f = COLUMN_FIELD.get(norm(column))
        if f and f not in user:
            candidates.setdefault(f, []).append(column)
    assigned = dict(user)
    others = {}
    for f, cols in candidates.items():
        cols.sort(key=lambda c: FIELD_ALIASES[f].index(norm(c)))
        assigned[f] = cols[0]
        if len(cols) > 1:
            others[f] = cols[1:]
    return assigned, others


# Rules, tried in order: (kind, format, converter, required fields, optional fields).
RULES = [
    ("dpo", "chosen_rejected_messages", "dpo_implicit_prompt", ("chosen_messages", "rejected_messages"), ("system",)),
    ("dpo", "{style}_preference", "dpo_prompt_chosen_rejected", ("messages", "chosen", "rejected"), ("system", "tools")),
    ("dpo", "alpaca_preference", "dpo_prompt_chosen_rejected", ("instruction", "chosen", "rejected"), ("input", "system", "history")),
    ("dpo", "prompt_chosen_rejected", "dpo_prompt_chosen_rejected", ("prompt", "chosen", "rejected"), ("input", "system")),
    ("dpo", "{implicit}", "dpo_implicit_prompt", ("chosen", "rejected"), ("system",)),
    ("kto", "{style}_label", "kto_messages", ("messages", "label"), ("system", "tools")),
    ("kto", "alpaca_label", "kto_prompt_completion", ("instruction", "completion", "label"), ("input", "system", "history")),
    ("kto", "prompt_completion_label", "kto_prompt_completion", ("prompt", "completion", "label"), ("input", "system")),
    ("sft", "{style}", "sft_messages", ("messages",), ("system", "tools")),
    ("sft", "alpaca", "sft_prompt_completion", ("instruction", "completion"), ("input", "system", "history")),
    ("sft", "{pc}", "sft_prompt_completion", ("prompt", "completion"), ("input", "system", "history")),
]


def _style(records: list[dict], column: str) -> str:
    for record in records:
        value = _maybe_json(record.get(column))
        if isinstance(value, list) and value and isinstance(value[0], dict):
            return "sharegpt" if "from" in value[0] else "messages"
    return "messages"


def _shape_ok(f: str, value: Any, implicit: bool) -> bool:
    if is_missing(value):
        return False
    if f == "label":
        try:
            parse_label(value)
            return True
        except RowProblem:
            return False
    value = _maybe_json(value)
    if f in MESSAGE_FIELDS or (implicit and f in ("chosen", "rejected")):
        if isinstance(value, list) and value and all(_is_message(m) for m in value):
            return True
        return f not in MESSAGE_FIELDS and isinstance(value, str) and bool(HH_MARKER.search(value))
    if isinstance(value, str):
        return bool(value.strip())
    return isinstance(value, (int, float, list, dict))


def detect(records: list[dict], columns: list[str], mapping: dict[str, str] | None = None, kind: str | None = None,
           name: str = "the file") -> Detection:
    if kind is not None and kind not in ("sft", "dpo", "kto"):
        raise DataError(f"Unknown kind '{kind}'. Use sft, dpo or kto.")
    user = _user_mapping(mapping or {}, columns)
    assigned, others = _assign(columns, user)
    if "prompt" not in assigned and "instruction" not in assigned and "input" in assigned and (
            "completion" in assigned or "chosen" in assigned):
        assigned["prompt"] = assigned.pop("input")  # input/output files: 'input' is the question
    sample = records[:SAMPLE]
    found = None
    for rule in RULES:
        if all(f in assigned for f in rule[3]):
            if kind is None or rule[0] == kind:
                found = rule
                break
            if found is None:
                found = ("other",) + rule
    if found is None or found[0] == "other":
        raise DataError(_explain_failure(name, columns, assigned, kind, found))
    rule_kind, fmt, converter, required, optional = found
    used = {f: assigned[f] for f in (*required, *optional) if f in assigned}
    implicit = converter == "dpo_implicit_prompt" and "chosen" in required
    fmt = fmt.format(
        style=_style(sample, assigned.get("messages", "")),
        implicit="chosen_rejected_text" if sample and isinstance(sample[0].get(assigned.get("chosen", "")), str)
        and not isinstance(_maybe_json(sample[0].get(assigned.get("chosen", ""))), list) else "chosen_rejected_conversations",
        pc="prompt_completion" if norm(assigned.get("prompt", "")) == "prompt" and norm(assigned.get("completion", "")) == "completion"
        else "two_column",
    )
    # How sure: the names (known or everyday), then how many sampled rows have the right shape.
    name_score = min((1.0 if f in user or norm(used[f]) in STRONG else 0.85) for f in required)
    if fmt == "two_column" and not all(f in user for f in required):
        name_score = min(name_score, 0.9)
    good = sum(all(_shape_ok(f, r.get(used[f]), implicit) for f in required) for r in sample)
    fraction = good / len(sample) if sample else 0.0
    confidence = name_score * (0.3 + 0.7 * fraction)
    notices = []
    for f, cols in others.items():
        if f in used:
            confidence *= 0.9
            extra = ", ".join(f"'{c}'" for c in cols)
            notices.append(f"Used '{used[f]}' as the {f} column; {extra} also fit. To use another, say so with --map {f}=COLUMN.")
    if "tools" in used:
        notices.append(f"The '{used['tools']}' column (tool descriptions) was added to each example's system message.")
    unused = [c for c in columns if c not in used.values()]
    if unused:
        notices.append("Columns not used: " + ", ".join(f"'{c}'" for c in unused[:10]) + (" ..." if len(unused) > 10 else "") + ".")
    return Detection(rule_kind, fmt, converter, used, round(confidence, 3), notices)


def _user_mapping(mapping: dict[str, str], columns: list[str]) -> dict[str, str]:
    out = {}
    by_lower = {c.lower(): c for c in columns}
    for f, column in mapping.items():
        canon = field_name(f)
        if canon is None:
            raise DataError(f"Unknown field '{f}' in the mapping. Fields: {', '.join(FIELD_ALIASES)}.")
        actual = column if column in columns else by_lower.get(str(column).lower())
        if actual is None:
            shown = ", ".join(f"'{c}'" for c in columns[:12])
            raise DataError(f"Column '{column}' (given for {canon}) is not in the file. Columns found: {shown}.")
        out[canon] = actual
    return out


def _explain_failure(name: str, columns: list[str], assigned: dict[str, str], kind: str | None, other) -> str:
    cols = ", ".join(f"'{c}'" for c in columns[:10]) + (" ..." if len(columns) > 10 else "")
    if other is not None:
        fields = ", ".join(other[4])
        return (f"{name} looks like {other[1]} data (it has {fields}), not {kind}. "
                f"Drop --kind, or pick a file with {kind} examples.")
    hint = "Rename the columns, or say which is which with --map prompt=COLUMN --map completion=COLUMN."
    if not columns:
        return f"{name} holds no columns or fields. Each example needs e.g. a prompt and a completion. {hint}"
    has = lambda *fs: [assigned[f] for f in fs if f in assigned]  # noqa: E731
    if has("chosen") and not has("rejected") or has("rejected") and not has("chosen"):
        there, missing = ("chosen", "rejected") if has("chosen") else ("rejected", "chosen")
        return f"{name} has a '{assigned[there]}' column but no '{missing}' column (columns: {cols}). Preference data needs both. {hint}"
    if has("prompt", "instruction"):
        found = [assigned[f] for f in ("instruction", "prompt", "input") if f in assigned]
        words = " and ".join(f"'{c}'" for c in found)
        return (f"{name} has the column{'s' if len(found) > 1 else ''} {words} but no answer column (columns: {cols}). "
                f"Name it answer, response, output or completion, or say which it is with --map completion=COLUMN.")
    if has("completion"):
        return (f"{name} has an answer column '{assigned['completion']}' but no question column (columns: {cols}). "
                f"Name it prompt, question or instruction, or say which it is with --map prompt=COLUMN.")
    if has("label"):
        return (f"{name} has a label column '{assigned['label']}' but no prompt/completion or messages columns "
                f"(columns: {cols}). {hint}")
    return (f"{name} has the columns {cols}, none of them a known prompt, answer or messages column. {hint}")
