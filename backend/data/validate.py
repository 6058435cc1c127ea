"""Row by row: convert each record with the detected format, keep the good rows, list the bad ones with reasons."""
from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

from .detect import Detection
from .normalize import CONVERTERS, RowProblem, squash
from .report import MAX_ERRORS_KEPT, RowError
from .result import ReadResult

PROBLEM_WORDS = {
    "invalid_json": "invalid JSON", "not_object": "not an example object", "bad_columns": "wrong number of values",
    "missing_field": "missing field", "empty_content": "empty text", "unknown_role": "unknown role",
    "no_final_assistant": "no final assistant answer", "same_answers": "chosen same as rejected",
    "bad_label": "unrecognised label", "duplicate": "duplicate", "bad_shape": "wrong shape", "not_text": "not text",
    "bad_prompt": "prompt not ending with the user", "prompt_mismatch": "chosen and rejected prompts differ",
}
PLACEHOLDER = re.compile(r"\{\{[A-Za-z_]\w*\}\}")  # {{name}}; not {{ github.repository }} templates


@dataclass
class Validated:
    examples: list[dict] = field(default_factory=list)
    example_rows: list[int] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)
    invalid_rows: int = 0
    problems: dict[str, int] = field(default_factory=dict)  # words -> count
    duplicates: int = 0
    placeholders: list[str] = field(default_factory=list)
    placeholder_examples: int = 0


def _key(example: dict) -> bytes:
    def clean(value):
        if isinstance(value, str):
            return squash(value)
        if isinstance(value, list):
            return [clean(v) for v in value]
        if isinstance(value, dict):
            return {k: clean(v) for k, v in value.items()}
        return value
    text = json.dumps(clean(example), sort_keys=True, ensure_ascii=False)
    return hashlib.blake2b(text.encode("utf-8", "surrogatepass"), digest_size=16).digest()


def validate(read: ReadResult, detection: Detection) -> Validated:
    convert = CONVERTERS[detection.converter]
    mapping = detection.mapping
    out = Validated()
    problems: list[RowError] = list(read.errors)
    seen: dict[bytes, int] = {}
    names: dict[str, None] = {}
    for row, record in read.records:
        try:
            example = convert(record, mapping)
        except RowProblem as p:
            problems.append(RowError(row, str(p), p.code))
            continue
        except RecursionError:
            problems.append(RowError(row, "nested too deeply to read", "bad_shape"))
            continue
        key = _key(example)
        first = seen.get(key)
        if first is not None:
            out.duplicates += 1
            problems.append(RowError(row, f"duplicate of row {first} (same text, ignoring spaces)", "duplicate"))
            continue
        seen[key] = row
        text = json.dumps(example, ensure_ascii=False) if "{{" in str(record) else ""
        if text and PLACEHOLDER.search(text):
            out.placeholder_examples += 1
            if len(names) < 5:
                names.update(dict.fromkeys(m.group(0) for m in PLACEHOLDER.finditer(text)))
        out.examples.append(example)
        out.example_rows.append(row)
    problems.sort(key=lambda e: e.row)
    out.invalid_rows = len(problems)
    out.errors = problems[:MAX_ERRORS_KEPT]
    for e in problems:
        words = PROBLEM_WORDS.get(e.code, e.code or "other")
        out.problems[words] = out.problems.get(words, 0) + 1
    out.placeholders = list(names)[:5]
    return out
