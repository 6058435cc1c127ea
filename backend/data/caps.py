"""The caps a reader applies while it reads one file: rows (backend/limits.py inspect_rows) and, for compressed
files, the unpacked size. Every reader calls RowCap for each data row; in a sandboxed child the count is shared with
the parent, which names the row reached when the time or memory cap ends the child."""
from __future__ import annotations

from backend import limits
from backend.errors import DataError

_progress = None  # a shared integer (multiprocessing.Value) in a sandboxed child; None elsewhere


def share_progress(value) -> None:
    """Count rows read into `value` (set once, in the sandbox's child process)."""
    global _progress
    _progress = value


def _mb(n: float) -> str:
    return f"{n / 1024 / 1024:,.1f} MB"


class RowCap:
    """rows(number) for each data row read from `name`: counts it and stops past the row cap, in one sentence."""

    def __init__(self, name: str):
        self.name = name
        self.limit = limits.current().inspect_rows

    def __call__(self, number: int) -> None:
        if _progress is not None:
            _progress.value = number
        if number > self.limit:
            raise DataError(too_many_rows(self.name, self.limit))

    def check_total(self, total: int) -> None:
        """A file that declares its row count up front (Parquet) is refused before it is read."""
        if total > self.limit:
            raise DataError(f"{self.name} holds {total:,} rows; the limit is {self.limit:,} rows. Split it into "
                            "smaller files, or raise the limit with TUNELOOP_INSPECT_ROWS.")


def too_many_rows(name: str, limit: int) -> str:
    return (f"{name} has more than {limit:,} rows (reading stopped at row {limit + 1:,}); the limit is {limit:,} rows. "
            "Split it into smaller files, or raise the limit with TUNELOOP_INSPECT_ROWS.")


def check_unpacked(name: str, size: int, unpacked: int) -> None:
    """A compressed file (.xlsx is a ZIP) whose parts unpack to more than the cap is refused before it is opened.
    The sizes come from the archive's directory, and Python's zipfile never reads past a member's declared size."""
    cap = limits.current().inspect_unpacked_mb * 1024 * 1024
    if unpacked > cap:
        raise DataError(f"{name} is {_mb(size)} but unpacks to {_mb(unpacked)}, over the {_mb(cap)} limit for what one "
                        "file may unpack to. Save the sheet as CSV, or raise TUNELOOP_INSPECT_UNPACKED_MB.")


def progress() -> int:
    return 0 if _progress is None else int(_progress.value)
