"""Where Tuneloop keeps its state: one folder, TUNELOOP_HOME (default ./workspace)."""
import os
import secrets
from pathlib import Path


def home_setting() -> str:
    """TUNELOOP_HOME as set, else the default: what a child process is given to find the same folder."""
    return os.environ.get("TUNELOOP_HOME", "workspace")


def home() -> Path:
    path = Path(home_setting()).resolve()
    path.mkdir(parents=True, exist_ok=True)
    return path


def db_path() -> Path:
    return home() / "tuneloop.db"


def model_cache() -> Path:
    """Converted base models and their everyday answers; TUNELOOP_MODEL_CACHE may point elsewhere (shared)."""
    path = Path(os.environ["TUNELOOP_MODEL_CACHE"]).resolve() if os.environ.get("TUNELOOP_MODEL_CACHE") else home() / "models"
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    path = home() / "runs"
    path.mkdir(parents=True, exist_ok=True)
    return path


def run_dir(run_id: str) -> Path:
    return runs_dir() / run_id


RAW_LOG = "train.log"  # in a run's folder: everything the training process writes, the libraries' output too
EVENTS_LOG = "events.log"  # in a run's folder: Tuneloop's own sentences, one line each, what Progress shows
STOP_FILE = "STOP"  # in a run's folder while a stop is asked: the trainer ends its step, saves and stops


def log_name(rank: int) -> str:
    """The raw log of one of a run's training processes: rank 0's is the run's."""
    return RAW_LOG if rank == 0 else f"train.rank{rank}.log"


def exports_dir() -> Path:
    """Exported models and label files: the only folder the web app serves files from (besides its uploads)."""
    path = home() / "exports"
    path.mkdir(parents=True, exist_ok=True)
    return path


def uploads_dir() -> Path:
    """Where the web app keeps uploaded files and the copies it serves (GRADIO_TEMP_DIR)."""
    path = home() / "uploads"
    path.mkdir(parents=True, exist_ok=True)
    return path


def write_text_atomic(path: Path, text: str):
    """Written beside and renamed: a crash leaves the old file or the new one, never half of one."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
