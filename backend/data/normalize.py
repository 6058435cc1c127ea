"""Per-format converters: one source record -> one canonical row, or a RowProblem saying what is wrong.

Canonical rows (roles are system/user/assistant/tool, contents are strings):
  sft: {"messages": [...]}                                   last message is the assistant's
  dpo: {"prompt": [... user], "chosen": [assistant], "rejected": [assistant]}
  kto: {"prompt": [...], "completion": [assistant], "label": bool}
"""
from __future__ import annotations

import json
import math
import re
from typing import Any, Callable

ROLES = {
    "system": "system",
    "user": "user", "human": "user", "prompter": "user", "customer": "user",
    "assistant": "assistant", "gpt": "assistant", "bot": "assistant", "model": "assistant", "ai": "assistant",
    "chatgpt": "assistant", "function_call": "assistant", "tool_call": "assistant", "tool_calls": "assistant",
    "tool": "tool", "observation": "tool", "function": "tool", "ipython": "tool",
    "tool_response": "tool", "function_response": "tool",
}
ROLE_KEYS = ("role", "from", "speaker", "author", "sender")
CONTENT_KEYS = ("content", "value", "text", "message")
TRUE_LABELS = {"true", "t", "yes", "y", "1", "1.0", "+1", "good", "desirable", "positive", "pos",
               "thumbs up", "thumbsup", "thumb up", "up", "like", "accept", "accepted", "ok",
               "\U0001f44d", "\u2705", "\u2714", "\u2713", "+"}
FALSE_LABELS = {"false", "f", "no", "n", "0", "0.0", "-1", "bad", "undesirable", "negative", "neg",
                "thumbs down", "thumbsdown", "thumb down", "down", "dislike", "reject", "rejected",
                "\U0001f44e", "\u274c", "\u2716", "\u2717", "-"}
HH_MARKER = re.compile(r"(?:^|\n+)[ \t]*(Human|Assistant)[ \t]*:[ \t]?")
TOOLS_INTRO = "You can call these tools:\n"


class RowProblem(Exception):
    """One row cannot be used; the message says why (without the row number)."""

    def __init__(self, message: str, code: str):
        super().__init__(message)
        self.code = code


# ---------------------------------------------------------------- contents and messages

def squash(text: str) -> str:
    return " ".join(text.split())


def is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def text_of(value: Any, where: str) -> str:
    """A content value as text: strings, numbers, typed part lists ([{"type": "text", "text"|"value": ...}])."""
    if isinstance(value, str):
        return value
    if is_missing(value):
        raise RowProblem(f"'{where}' is missing", "missing_field")
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else str(value)
    if isinstance(value, dict):
        kind = value.get("type", "text")
        if kind not in ("text", None) and not any(k in value for k in ("text", "value")):
            raise RowProblem(f"'{where}' holds a {kind} part; only text can be trained", "not_text")
        for key in ("text", "value", "content"):
            if key in value and not is_missing(value[key]):
                return text_of(value[key], where)
        raise RowProblem(f"'{where}' holds an object without text", "not_text")
    if isinstance(value, list):
        return "\n".join(text_of(part, where) for part in value)
    raise RowProblem(f"'{where}' is not text", "not_text")


def _maybe_json(value: Any) -> Any:
    if isinstance(value, str) and value.lstrip()[:1] in ("[", "{"):
        try:
            parsed = json.loads(value)
        except (ValueError, RecursionError):
            return value
        if isinstance(parsed, dict) and any(k in parsed for k in ROLE_KEYS):
            return parsed
        if isinstance(parsed, list) and parsed and all(isinstance(m, dict) and any(k in m for k in ROLE_KEYS) for m in parsed):
            return parsed
    return value


def _is_message(value: Any) -> bool:
    return isinstance(value, dict) and any(k in value for k in ROLE_KEYS)


def message(raw: dict, where: str, number: int) -> dict | None:
    """One source message as {"role", "content"}; None for an empty system message (dropped)."""
    role_value = next((raw[k] for k in ROLE_KEYS if k in raw and raw[k] is not None), None)
    if not isinstance(role_value, str) or not role_value.strip():
        raise RowProblem(f"message {number} in '{where}' has no role (expected 'role' or 'from')", "missing_field")
    role = ROLES.get(role_value.strip().lower())
    if role is None:
        raise RowProblem(
            f"message {number} in '{where}' has an unknown role '{role_value[:40]}' (use system, user, assistant or tool)",
            "unknown_role")
    content = next((raw[k] for k in CONTENT_KEYS if k in raw and not is_missing(raw[k])), None)
    calls = raw.get("tool_calls") or raw.get("function_call")
    if calls and (content is None or (isinstance(content, str) and not content.strip())):
        content = json.dumps(calls, ensure_ascii=False)
    if content is None:
        raise RowProblem(f"message {number} ({role}) in '{where}' has no content", "missing_field")
    text = text_of(content, where)
    if not text.strip():
        if role == "system":
            return None
        raise RowProblem(f"message {number} ({role}) in '{where}' is empty", "empty_content")
    return {"role": role, "content": text}


def hh_messages(text: str, where: str) -> list[dict]:
    """"\\n\\nHuman: ... \\n\\nAssistant: ..." text as messages."""
    parts = HH_MARKER.split(text)
    if len(parts) < 3:
        raise RowProblem(f"'{where}' is plain text without 'Human:' / 'Assistant:' turns, and there is no prompt column", "missing_field")
    out = []
    if parts[0].strip():
        out.append({"role": "system", "content": parts[0].strip()})
    for i in range(1, len(parts), 2):
        content = parts[i + 1].strip()
        role = "user" if parts[i] == "Human" else "assistant"
        if not content:
            raise RowProblem(f"turn {(i + 1) // 2} ({role}) in '{where}' is empty", "empty_content")
        out.append({"role": role, "content": content})
    return out


def to_messages(value: Any, where: str, default_role: str | None) -> list[dict]:
    """Messages from a message list, one message, a JSON string of those, plain text (as default_role) or HH text."""
    value = _maybe_json(value)
    if is_missing(value):
        raise RowProblem(f"'{where}' is missing", "missing_field")
    if _is_message(value):
        value = [value]
    if isinstance(value, list) and any(_is_message(m) for m in value) and all(isinstance(m, dict) for m in value):
        out = [msg for i, raw in enumerate(value, start=1) if (msg := message(raw, where, i)) is not None]
        if not out:
            raise RowProblem(f"'{where}' holds no message with text", "empty_content")
        return out
    if isinstance(value, list) and not value:
        raise RowProblem(f"'{where}' is an empty list", "empty_content")
    if isinstance(value, list) and any(isinstance(m, dict) and not m.get("type") for m in value):
        raise RowProblem(f"'{where}' holds messages without a role (expected 'role'/'content' or 'from'/'value')", "missing_field")
    if default_role is None:
        if not isinstance(value, str):
            raise RowProblem(f"'{where}' is neither a list of messages nor Human:/Assistant: text", "bad_shape")
        return hh_messages(value, where)
    text = text_of(value, where)
    if not text.strip():
        raise RowProblem(f"'{where}' is empty", "empty_content")
    return [{"role": default_role, "content": text}]


def parse_label(value: Any, where: str = "label") -> bool:
    if isinstance(value, bool):
        return value
    if is_missing(value):
        raise RowProblem(f"'{where}' is missing", "missing_field")
    if isinstance(value, (int, float)):
        if value == 1:
            return True
        if value in (0, -1):
            return False
    elif isinstance(value, str):
        key = re.sub(r"[\ufe0f\U0001f3fb-\U0001f3ff]", "", value).strip().lower().replace("_", " ").replace("-", " ")
        key = " ".join(key.split()) or value.strip()
        if value.strip() in ("-1", "-"):
            key = value.strip()
        if key in TRUE_LABELS:
            return True
        if key in FALSE_LABELS:
            return False
    shown = str(value)[:40]
    raise RowProblem(
        f"label '{shown}' is not understood (use true/false, 1/0, yes/no, good/bad or a thumbs up/down)", "bad_label")


# ---------------------------------------------------------------- building blocks of the converters

def _get(record: dict, mapping: dict, field: str) -> Any:
    column = mapping.get(field)
    return None if column is None else record.get(column)


def _require(record: dict, mapping: dict, field: str) -> Any:
    value = _get(record, mapping, field)
    if is_missing(value):
        raise RowProblem(f"'{mapping[field]}' is missing", "missing_field")
    if isinstance(value, str) and not value.strip():
        raise RowProblem(f"'{mapping[field]}' is empty", "empty_content")
    return value


def _system(record: dict, mapping: dict) -> list[dict]:
    parts = []
    value = _get(record, mapping, "system")
    if not is_missing(value) and text_of(value, mapping.get("system", "system")).strip():
        parts.append(text_of(value, mapping["system"]))
    tools = _get(record, mapping, "tools")
    if not is_missing(tools) and tools not in ("", "[]", []):
        parts.append(TOOLS_INTRO + (tools if isinstance(tools, str) else json.dumps(tools, ensure_ascii=False)))
    return [{"role": "system", "content": "\n\n".join(parts)}] if parts else []


def _with_system(record: dict, mapping: dict, messages: list[dict]) -> list[dict]:
    system = _system(record, mapping)
    if not system:
        return messages
    if messages and messages[0]["role"] == "system":
        return [{"role": "system", "content": messages[0]["content"] + "\n\n" + system[0]["content"]}] + messages[1:]
    return system + messages


def _history(record: dict, mapping: dict) -> list[dict]:
    value = _maybe_json(_get(record, mapping, "history"))
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            pass
    if is_missing(value) or value == [] or value == "":
        return []
    where = mapping["history"]
    if not isinstance(value, list) or not all(isinstance(p, (list, tuple)) and len(p) == 2 for p in value):
        raise RowProblem(f"'{where}' should be a list of [prompt, response] pairs", "bad_shape")
    out = []
    for prompt, response in value:
        out.append({"role": "user", "content": text_of(prompt, where)})
        out.append({"role": "assistant", "content": text_of(response, where)})
    if any(not m["content"].strip() for m in out):
        raise RowProblem(f"'{where}' holds an empty turn", "empty_content")
    return out


def _user_prompt(record: dict, mapping: dict, field: str) -> list[dict]:
    """The prompt from a text/messages column, with the optional 'input' column joined after it."""
    value = _get(record, mapping, field)
    extra = _get(record, mapping, "input")
    extra = "" if is_missing(extra) else text_of(extra, mapping["input"])
    if is_missing(value) or (isinstance(value, str) and not value.strip()):
        if not extra.strip():
            problem = "missing" if is_missing(value) else "empty"
            raise RowProblem(f"'{mapping[field]}' is {problem}", "missing_field" if problem == "missing" else "empty_content")
        value = ""
    messages = to_messages(value, mapping[field], "user") if value != "" else []
    if extra.strip():
        if messages and messages[-1]["role"] == "user":
            messages[-1] = {"role": "user", "content": messages[-1]["content"] + "\n" + extra}
        else:
            messages.append({"role": "user", "content": extra})
    return _with_system(record, mapping, _history(record, mapping) + messages)


def _answer(value: Any, where: str, prompt: list[dict]) -> list[dict]:
    """One assistant answer; a full conversation that starts with the prompt is cut down to its answer."""
    messages = to_messages(value, where, "assistant")
    if len(messages) > 1:
        for whole, start in ((messages, prompt), (_no_system(messages), _no_system(prompt))):
            if len(whole) > len(start) and _same(whole[: len(start)], start):
                messages = whole[len(start):]
                break
    if len(messages) != 1:
        raise RowProblem(f"'{where}' holds {len(messages)} messages; it should hold one answer", "bad_shape")
    if messages[0]["role"] != "assistant":
        raise RowProblem(f"'{where}' is {_a(messages[0]['role'])} message; it should be the assistant's answer", "bad_shape")
    return messages


def _no_system(messages: list[dict]) -> list[dict]:
    return [m for m in messages if m["role"] != "system"]


def _same(a: list[dict], b: list[dict]) -> bool:
    return len(a) == len(b) and all(x["role"] == y["role"] and squash(x["content"]) == squash(y["content"]) for x, y in zip(a, b))


def _a(word: str) -> str:
    return ("an " if word[:1] in "aeiou" else "a ") + word


def _check_prompt(prompt: list[dict], where: str) -> list[dict]:
    if not any(m["role"] != "system" for m in prompt):
        raise RowProblem(f"the prompt in '{where}' has no user message", "missing_field")
    if prompt[-1]["role"] not in ("user", "tool"):
        raise RowProblem(f"the prompt in '{where}' ends with {_a(prompt[-1]['role'])} message; it should end with the user's message", "bad_prompt")
    return prompt


def _split_last(messages: list[dict], where: str) -> tuple[list[dict], list[dict]]:
    if messages[-1]["role"] != "assistant":
        raise RowProblem(f"'{where}' does not end with an assistant answer (the last message is from the {messages[-1]['role']})", "no_final_assistant")
    return _check_prompt(messages[:-1], where), messages[-1:]


def finish_sft(messages: list[dict], where: str) -> dict:
    if messages[-1]["role"] != "assistant":
        raise RowProblem(
            f"the conversation does not end with an assistant answer (the last message is from the {messages[-1]['role']})",
            "no_final_assistant")
    if not any(m["role"] in ("user", "tool") for m in messages):
        raise RowProblem(f"the conversation in '{where}' has no user message", "missing_field")
    return {"messages": messages}


# ---------------------------------------------------------------- converters, by format

def sft_messages(record: dict, mapping: dict) -> dict:
    messages = to_messages(_require(record, mapping, "messages"), mapping["messages"], None)
    return finish_sft(_with_system(record, mapping, messages), mapping["messages"])


def sft_prompt_completion(record: dict, mapping: dict) -> dict:
    field = "instruction" if "instruction" in mapping else "prompt"
    prompt = _user_prompt(record, mapping, field)
    completion = to_messages(_require(record, mapping, "completion"), mapping["completion"], "assistant")
    return finish_sft(prompt + completion, mapping[field])


def dpo_prompt_chosen_rejected(record: dict, mapping: dict) -> dict:
    field = "instruction" if "instruction" in mapping else ("messages" if "messages" in mapping else "prompt")
    if field == "messages":
        prompt = _with_system(record, mapping, to_messages(_require(record, mapping, field), mapping[field], "user"))
    else:
        prompt = _user_prompt(record, mapping, field)
    _check_prompt(prompt, mapping[field])
    chosen = _answer(_require(record, mapping, "chosen"), mapping["chosen"], prompt)
    rejected = _answer(_require(record, mapping, "rejected"), mapping["rejected"], prompt)
    return _pair(prompt, chosen, rejected)


def dpo_implicit_prompt(record: dict, mapping: dict) -> dict:
    """chosen and rejected are whole conversations (message lists or Human:/Assistant: text) sharing a prompt."""
    c_field, r_field = ("chosen_messages", "rejected_messages") if "chosen_messages" in mapping else ("chosen", "rejected")
    chosen = to_messages(_require(record, mapping, c_field), mapping[c_field], None)
    rejected = to_messages(_require(record, mapping, r_field), mapping[r_field], None)
    c_prompt, c_answer = _split_last(_with_system(record, mapping, chosen), mapping[c_field])
    r_prompt, r_answer = _split_last(_with_system(record, mapping, rejected), mapping[r_field])
    if not _same(c_prompt, r_prompt):
        raise RowProblem(
            f"'{mapping[c_field]}' and '{mapping[r_field]}' do not share the same conversation before the last answer",
            "prompt_mismatch")
    return _pair(c_prompt, c_answer, r_answer)


def _pair(prompt: list[dict], chosen: list[dict], rejected: list[dict]) -> dict:
    if squash(chosen[0]["content"]) == squash(rejected[0]["content"]):
        raise RowProblem("the chosen and the rejected answers are the same", "same_answers")
    return {"prompt": prompt, "chosen": chosen, "rejected": rejected}


def kto_prompt_completion(record: dict, mapping: dict) -> dict:
    label = parse_label(_get(record, mapping, "label"), mapping["label"])
    field = "instruction" if "instruction" in mapping else "prompt"
    prompt = _check_prompt(_user_prompt(record, mapping, field), mapping[field])
    completion = _answer(_require(record, mapping, "completion"), mapping["completion"], prompt)
    return {"prompt": prompt, "completion": completion, "label": label}


def kto_messages(record: dict, mapping: dict) -> dict:
    label = parse_label(_get(record, mapping, "label"), mapping["label"])
    messages = _with_system(record, mapping, to_messages(_require(record, mapping, "messages"), mapping["messages"], "user"))
    prompt, completion = _split_last(messages, mapping["messages"])
    return {"prompt": prompt, "completion": completion, "label": label}


CONVERTERS: dict[str, Callable[[dict, dict], dict]] = {
    "sft_messages": sft_messages,
    "sft_prompt_completion": sft_prompt_completion,
    "dpo_prompt_chosen_rejected": dpo_prompt_chosen_rejected,
    "dpo_implicit_prompt": dpo_implicit_prompt,
    "kto_prompt_completion": kto_prompt_completion,
    "kto_messages": kto_messages,
}
