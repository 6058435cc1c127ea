"""Every cap that protects the app from a hostile or unlucky input, declared once, with defaults that fit a 24 GB
computer. Each may be changed with an environment variable TUNELOOP_<NAME> (e.g. TUNELOOP_INSPECT_SECONDS=300).

- Inspecting a data file runs in a child process with a memory, time and row cap (backend/data/sandbox.py), a few
  at once, so a crafted file ends in one sentence instead of stalling or killing the app. A small file is read at
  once; a big one waits for one of a few slots.
- Text typed into the web app has a length cap per kind of field; answers have a time limit.
- The runner ends a worker that makes no progress for too long, and one that does not stop when asked.
- A request to the web app carries at most max_request_mb (the largest capped text, 200,000 characters, is under
  1 MB): a bigger body is refused before it is read.
"""
from __future__ import annotations

import dataclasses
import math
import os
from dataclasses import dataclass, fields

from backend.errors import ConfigError, TuneloopError


@dataclass(frozen=True)
class Limits:
    # Inspecting a user's data file (the child process that reads it).
    inspect_memory_mb: int = 3072  # resident memory of the inspecting process, the loaded tokenizer included
    # Processor time of the inspecting process: what the file costs, however busy the computer is (250,000 short
    # rows, 78 MB, took 48 s of it here).
    inspect_seconds: float = 180
    inspect_wall_seconds: float = 1800  # a backstop in clock time, for a reader that waits instead of working
    inspect_rows: int = 250_000  # rows read from one file
    inspect_unpacked_mb: int = 1024  # what a compressed file (.xlsx) may unpack to
    inspect_decoded_mb: int = 256  # what a Parquet file's columns may decode to (a few kB can hold gigabytes)
    inspect_at_once: int = 2  # inspections past their first inspect_small_seconds running at once in the web app
    inspect_small_seconds: float = 2  # processor time an inspection may use before it needs one of those slots
    inspect_small_at_once: int = 4  # inspections beside them, so that a small file never waits behind big ones
    # Generation in the web app.
    answer_seconds: float = 120  # one batch of answers (chat, label queue) ends after this long
    # The training worker.
    hang_minutes: float = 30  # no step and no log line for this long: the worker is ended and the run failed
    stop_grace_seconds: float = 120  # after Stop, this long to end the step and save before SIGTERM
    term_grace_seconds: float = 30  # after SIGTERM, this long before SIGKILL
    runner_backoff_max_seconds: float = 30  # the runner's retry wait after an error grows up to this
    # Requests to the web app.
    max_request_mb: float = 16  # one request's body, uploads apart (they have max_upload_mb)
    max_upload_mb: float = 200  # one uploaded data file (the page, the API and `app.py data add` alike)

    def __post_init__(self):
        for f in fields(self):
            value = getattr(self, f.name)
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
                raise ConfigError(f"TUNELOOP_{f.name.upper()}", f"must be a positive number, not {value!r}.")


def max_upload_bytes() -> int:
    return int(current().max_upload_mb * 1024 * 1024)


def current() -> Limits:
    """The limits in force: the defaults, each replaced by its TUNELOOP_<NAME> environment variable when set."""
    values = {}
    for f in fields(Limits):
        raw = os.environ.get(f"TUNELOOP_{f.name.upper()}", "").strip()
        if not raw:
            continue
        try:
            number = float(raw)
        except ValueError:
            raise ConfigError(f"TUNELOOP_{f.name.upper()}", f"'{raw}' is not a number (default {f.default}).") from None
        values[f.name] = int(number) if f.type == "int" and number.is_integer() else number
    return dataclasses.replace(Limits(), **values)


# Length caps of text typed into the web app, by the handler's field name (ui/common.bind applies them to every
# event, so the API is capped as well as the page). Any other text field gets DEFAULT_TEXT_CAP.
TEXT_CAPS = {
    "message": 8_000,  # one chat message
    "corrected": 8_000,  # a corrected answer
    "system": 4_000,  # a system prompt
    "pasted": 200_000,  # prompts pasted for labelling, one per line
    "name": 100,  # a dataset's name
    "run_name": 100,  # a run's name
    "folder": 1_000,  # a model folder's path
}
DEFAULT_TEXT_CAP = 10_000
TEXT_WORDS = {"message": "message", "corrected": "corrected answer", "system": "system prompt",
              "pasted": "list of prompts", "name": "name", "run_name": "run name", "folder": "folder path"}


def text_cap(field: str) -> int:
    return TEXT_CAPS.get(field, DEFAULT_TEXT_CAP)


def check_text(field: str, value) -> None:
    """Refuse, in words, a text longer than its field's cap."""
    if isinstance(value, str) and len(value) > text_cap(field):
        what = TEXT_WORDS.get(field, f"text in '{field}'")
        raise TuneloopError(f"The {what} is {len(value):,} characters long; the limit is {text_cap(field):,}. "
                            "Shorten it and try again.")
