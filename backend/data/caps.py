"""The caps a reader applies while it reads one file: rows (backend/limits.py inspect_rows) and, for compressed
files, the unpacked size (xlsx) or the decoded size (Parquet). Every reader calls RowCap for each data row; in a
sandboxed child the count is shared with the parent, which names the row reached when the time or memory cap ends
the child."""
from __future__ import annotations

from backend import limits
from backend.errors import DataError
from backend.words import size_text

_progress = None  # a shared integer (multiprocessing.Value) in a sandboxed child; None elsewhere


def share_progress(value) -> None:
    """Count rows read into `value` (set once, in the sandbox's child process)."""
    global _progress
    _progress = value


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
        raise DataError(f"{name} is {size_text(size)} but unpacks to {size_text(unpacked)}, over the {size_text(cap)} "
                        "limit for what one file may unpack to. Save the sheet as CSV, or raise "
                        "TUNELOOP_INSPECT_UNPACKED_MB.")


class DecodedCap:
    """decoded(number, size) after each batch of a Parquet file: stops once its columns have decoded to more than
    the cap, in one sentence. Per-column-chunk sizes in the file's metadata are checked first (check_declared), but
    a dictionary-encoded column declares only its dictionary: one 5,000-character text repeated 200,000 times is
    a 2 kB file that decodes to 1 GB. So the decoded size is counted as it is read, before rows become records."""

    def __init__(self, name: str, size: int):
        self.name, self.size = name, size
        self.limit_mb = limits.current().inspect_decoded_mb
        self.limit = self.limit_mb * 1024 * 1024
        self.total = 0

    def check_declared(self, declared: int) -> None:
        if declared > self.limit:
            raise DataError(f"{self.name} is {size_text(self.size)} but its columns decode to {size_text(declared)}, "
                            f"over the {self.limit_mb:,} MB limit. {self._todo()}")

    def __call__(self, number: int, size: int) -> None:
        """`number`: the last row of the batch; `size`: the batch's decoded bytes."""
        self.total += size
        if self.total > self.limit:
            raise DataError(f"{self.name} is {size_text(self.size)} but its columns decode to more than "
                            f"{self.limit_mb:,} MB, the limit (reading stopped at row {number:,}). {self._todo()}")

    @staticmethod
    def _todo() -> str:
        return "Save a smaller part of it, or raise the limit with TUNELOOP_INSPECT_DECODED_MB."


def progress() -> int:
    return 0 if _progress is None else int(_progress.value)
