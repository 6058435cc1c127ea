"""What reading a file gives: records with the row numbers the user sees, unreadable rows, columns, notices."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .report import RowError


@dataclass
class ReadResult:
    path: Path
    file_format: str
    records: list[tuple[int, Any]] = field(default_factory=list)  # (row number, record)
    errors: list[RowError] = field(default_factory=list)  # rows that could not be read at all
    columns: list[str] = field(default_factory=list)
    notices: list[str] = field(default_factory=list)
    encoding: str | None = None

    @property
    def total_rows(self) -> int:
        return len(self.records) + len(self.errors)
