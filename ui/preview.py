"""Examples as people read them: conversations as turns, preference pairs side by side, rated answers with a badge."""
from ui.common import esc

ROLES = {"system": "Instructions", "user": "User", "assistant": "Assistant", "tool": "Tool"}
MAX_CHARS = 700


def _text(content) -> str:
    text = str(content)
    return esc(text if len(text) <= MAX_CHARS else text[:MAX_CHARS] + " ...")


def turns_html(messages: list[dict]) -> str:
    return "".join(f'<div class="tl-turn tl-{esc(m["role"])}">'
                   f'<div class="tl-role">{esc(ROLES.get(m["role"], m["role"]))}</div>'
                   f'<div class="tl-content">{_text(m["content"])}</div></div>' for m in messages)


def _side(css_class: str, badge: str, messages: list[dict]) -> str:
    return f'<div class="tl-side {css_class}"><div class="tl-badge">{badge}</div>{turns_html(messages)}</div>'


def example_html(kind: str, example: dict, row: int) -> str:
    head = f'<div class="tl-row">Row {row}</div>'
    if kind == "sft":
        body = turns_html(example["messages"])
    elif kind == "dpo":
        body = (turns_html(example["prompt"]) + '<div class="tl-pair">'
                + _side("tl-chosen", "Chosen (better)", example["chosen"])
                + _side("tl-rejected", "Rejected (worse)", example["rejected"]) + "</div>")
    else:
        good = bool(example["label"])
        body = turns_html(example["prompt"]) + _side("tl-chosen" if good else "tl-rejected",
                                                     "Marked good" if good else "Marked bad", example["completion"])
    return f'<div class="tl-example">{head}{body}</div>'


def examples_html(kind: str, examples: list[dict], rows: list[int], limit: int = 5, total: int | None = None) -> str:
    """The first `limit` examples; `total`: how many there are (`examples` may be a preview of them)."""
    if not examples:
        return ""
    shown = [example_html(kind, ex, row) for ex, row in list(zip(examples, rows))[:limit]]
    total = len(examples) if total is None else total
    more = f'<p class="tl-more">Showing {len(shown)} of {total:,} usable examples.</p>'
    return '<div class="tl-examples">' + "".join(shown) + more + "</div>"


CSS = """
.tl-examples { display: flex; flex-direction: column; gap: 12px; max-height: 720px; overflow-y: auto;
  padding-right: 4px; }
.tl-example { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px;
  background: var(--background-fill-primary); }
.tl-row { font-size: 12px; font-weight: 600; margin-bottom: 6px; }
.tl-turn { display: grid; grid-template-columns: 92px 1fr; gap: 8px; padding: 4px 0; }
.tl-role { font-weight: 600; font-size: 13px; }
.tl-content { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 14px; }
.tl-assistant .tl-content { background: var(--background-fill-secondary); border-radius: 6px; padding: 4px 8px; }
.tl-pair { display: grid; grid-template-columns: 1fr 1fr; gap: 10px; margin-top: 6px; }
.tl-side { border-radius: 6px; padding: 6px 8px; margin-top: 6px; }
.tl-side .tl-turn { grid-template-columns: 1fr; gap: 2px; }
.tl-side .tl-role { display: none; }
.tl-chosen { border-left: 4px solid #16a34a; background: rgba(22, 163, 74, 0.07); }
.tl-rejected { border-left: 4px solid #dc2626; background: rgba(220, 38, 38, 0.07); }
.tl-badge { font-size: 12px; font-weight: 700; text-transform: uppercase; letter-spacing: .03em; margin-bottom: 2px; }
.tl-chosen .tl-badge { color: #15803d; }
.tl-rejected .tl-badge { color: #b91c1c; }
.tl-more { font-size: 13px; color: var(--body-text-color-subdued); margin: 0; }
"""
