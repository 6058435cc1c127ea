"""Typed errors. The backend raises these; the edges (CLI, web app) turn them into plain messages."""
import errno


class TuneloopError(Exception):
    """Something the user can fix. The message says what is wrong, where, and what to do."""


class ConfigError(TuneloopError):
    """A training setting has a bad value. `field` and `message` apart, for an edge that names the setting its way
    (the web form by its label)."""

    def __init__(self, field: str, message: str):
        self.field, self.message = field, message
        super().__init__(f"Setting '{field}': {message}")


class DataError(TuneloopError):
    """A dataset cannot be read or holds no usable example."""


class ModelError(TuneloopError):
    """A base model cannot be found or loaded."""


class RunNotFound(TuneloopError):
    def __init__(self, run_id: str):
        self.run_id = run_id
        super().__init__(f"No run called '{run_id}'. See the list with: python app.py runs")


class RunStateError(TuneloopError):
    """The run exists but is not in a state that allows the request (e.g. export before it finished)."""


class ExportError(TuneloopError):
    """An export cannot be made: the model, the format or the destination does not allow it."""


class ExportCheckFailed(ExportError):
    """A written file was loaded back and did not behave like the model it came from; it was not kept."""

    def __init__(self, message: str, result=None):
        self.result = result
        super().__init__(message)


class HubError(ExportError):
    """The Hugging Face Hub could not be reached or refused the upload. Never carries the token."""


class StorageError(TuneloopError):
    """The workspace's database could not be written: busy (locked by another program) for too long, or the disk is
    full. Nothing of the write was kept; trying again later works."""


# How libraries word a full disk: safetensors as "os error 28", SQLite as "database or disk is full".
FULL_WORDS = ("No space left on device", "os error 28", "StorageFull", "Disk quota exceeded", "database or disk is full")


def disk_full(exc: BaseException) -> bool:
    """Whether `exc`, or what it was raised from, is a full disk."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if (isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)) or \
                any(words in str(exc) for words in FULL_WORDS):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
