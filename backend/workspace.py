"""Where Tuneloop keeps its state: one folder, TUNELOOP_HOME (default ./workspace)."""
import os
from pathlib import Path


def home() -> Path:
    path = Path(os.environ.get("TUNELOOP_HOME", "workspace")).resolve()
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
