"""Prompts to label: pasted (one per line) or taken from a stored dataset (each example's question)."""
from __future__ import annotations

from backend.errors import DataError

MAX_PROMPTS = 2000


def prompts_from_text(text: str) -> list[list[dict]]:
    """One prompt per non-empty line, repeats dropped."""
    lines = [line.strip() for line in (text or "").splitlines()]
    prompts = _unique([[{"role": "user", "content": line}] for line in lines if line])
    if not prompts:
        raise DataError("No prompts: paste one question or instruction per line.")
    return prompts[:MAX_PROMPTS]


def prompts_from_dataset(db, name: str, limit: int | None = None) -> list[list[dict]]:
    """The prompt of each example of a stored dataset: its messages before the last answer."""
    from backend.data import DatasetStore
    rows = DatasetStore(db).rows(name)
    prompts = _unique(p for p in map(example_prompt, rows) if p)
    if not prompts:
        raise DataError(f"Dataset '{name}' holds no prompt that ends with a user's message.")
    return prompts[:limit or MAX_PROMPTS]


def example_prompt(row: dict) -> list[dict] | None:
    """sft rows: the turns before the last assistant turn; dpo/kto rows: their prompt."""
    messages = row.get("prompt") if "prompt" in row else row.get("messages") or []
    if "prompt" not in row:
        last = max((i for i, m in enumerate(messages) if m.get("role") == "assistant"), default=len(messages))
        messages = messages[:last]
    if isinstance(messages, str):
        messages = [{"role": "user", "content": messages}]
    if not messages or messages[-1].get("role") != "user":
        return None
    return [{"role": m["role"], "content": m["content"]} for m in messages]


def _unique(prompts) -> list[list[dict]]:
    seen, out = set(), []
    for prompt in prompts:
        key = tuple((m["role"], m["content"]) for m in prompt)
        if key not in seen:
            seen.add(key)
            out.append(prompt)
    return out
