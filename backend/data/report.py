"""What inspecting a file found: DataReport (with to_json and a plain-language summary) and RowError."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NamedTuple

from backend.config import METHOD_TABLE
from backend.words import plural

KIND_NAMES = {m.name: m.kind for m in METHOD_TABLE.values()}  # a file's kind of data, in words
MAX_ERRORS_KEPT = 1000


class RowError(NamedTuple):
    row: int
    message: str
    code: str = ""

    def to_json(self) -> dict:
        return {"row": self.row, "message": self.message, "code": self.code}


@dataclass
class DataReport:
    source: str
    file_format: str
    kind: str
    format: str
    mapping: dict[str, str]
    confidence: float
    rows: int = 0
    valid_rows: int = 0
    invalid_rows: int = 0
    errors: list[RowError] = field(default_factory=list)  # first MAX_ERRORS_KEPT, ordered by row
    warnings: list[str] = field(default_factory=list)  # things that may hurt training
    notices: list[str] = field(default_factory=list)  # how the file was read
    examples: list[dict] = field(default_factory=list)  # canonical valid rows
    example_rows: list[int] = field(default_factory=list)  # the row number of each example
    lengths: list[int] = field(default_factory=list)  # token length of each example
    split: dict[str, list[int]] = field(default_factory=lambda: {"train": [], "validation": []})
    stats: dict[str, Any] = field(default_factory=dict)
    columns: list[str] = field(default_factory=list)
    encoding: str | None = None
    preview_only: bool = False  # examples trimmed to a preview (backend/data/sandbox.py): not storable

    def train_examples(self) -> list[dict]:
        return [self.examples[i] for i in self.split["train"]]

    def validation_examples(self) -> list[dict]:
        return [self.examples[i] for i in self.split["validation"]]

    def to_json(self) -> dict:
        return {
            "source": self.source,
            "file_format": self.file_format,
            "encoding": self.encoding,
            "kind": self.kind,
            "format": self.format,
            "mapping": self.mapping,
            "confidence": round(self.confidence, 3),
            "columns": self.columns,
            "rows": self.rows,
            "valid_rows": self.valid_rows,
            "invalid_rows": self.invalid_rows,
            "errors": [e.to_json() for e in self.errors],
            "warnings": self.warnings,
            "notices": self.notices,
            "split": {k: len(v) for k, v in self.split.items()},
            "stats": self.stats,
        }

    def summary(self, max_errors: int = 10) -> str:
        from .stats import describe  # the stats module knows how to word its numbers
        name = self.source.replace("\\", "/").rsplit("/", 1)[-1]
        lines = [
            f"{name}: {KIND_NAMES.get(self.kind, self.kind)}, format '{self.format}' "
            f"({self.file_format}{', ' + self.encoding if self.encoding and self.encoding != 'utf-8' else ''}); "
            f"sure at {self.confidence:.0%}.",
        ]
        if self.mapping:
            lines.append("Columns used: " + ", ".join(f"{col} -> {fld}" for fld, col in self.mapping.items()) + ".")
        lines.append(
            f"{plural(self.rows, 'row')}: {self.valid_rows:,} usable, {self.invalid_rows:,} skipped."
        )
        if self.errors:
            lines.append(f"Skipped rows (first {min(max_errors, len(self.errors))} of {self.invalid_rows:,}):")
            lines += [f"  row {e.row}: {e.message}" for e in self.errors[:max_errors]]
            counts = self.stats.get("problems", {})
            if len(counts) > 1 or self.invalid_rows > max_errors:
                lines.append("  in all: " + ", ".join(f"{what}: {n:,}" for what, n in counts.items()))
        lines += describe(self.stats)
        if self.warnings:
            lines.append("Warnings:")
            lines += [f"  - {w}" for w in self.warnings]
        if self.notices:
            lines.append("Notes:")
            lines += [f"  - {n}" for n in self.notices]
        return "\n".join(lines)
