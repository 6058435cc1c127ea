"""One trainer per workspace: a lock file held by whichever Tuneloop process is training a run (a web app, a second
web app, or `python app.py train`), from before it claims a run until the run's outcome is recorded.

Two processes on one workspace would otherwise each train a run at once, each memory check blind to the other. The
lock is an flock(2) on workspace/trainer.lock: the kernel lets it go when its holder dies, however it dies, so a
crashed app never leaves the workspace locked. The holder writes who it is into the file, for the others to say
whom they wait for.
"""
from __future__ import annotations

import fcntl
import json
import os
import sys
from pathlib import Path

from backend import workspace


class TrainerLock:
    def __init__(self, path: Path | None = None):
        self.path = Path(path) if path else workspace.home() / "trainer.lock"
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        return self._fd is not None

    def acquire(self, run_id: str | None = None) -> bool:
        """Take the lock if no other process (or other TrainerLock) holds it; False at once otherwise."""
        if self._fd is not None:
            return True
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            return False
        self._fd = fd
        self.describe(run_id)
        return True

    def describe(self, run_id: str | None) -> None:
        """Write who holds the lock and which run it trains (read by holder())."""
        if self._fd is None:
            return
        info = json.dumps({"pid": os.getpid(), "run": run_id, "command": " ".join(sys.argv[:3])[:200]})
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, info.encode(), 0)

    def release(self) -> None:
        if self._fd is None:
            return
        fd, self._fd = self._fd, None
        try:
            os.ftruncate(fd, 0)
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
            os.close(fd)

    def holder(self) -> dict | None:
        """Who trains now, {"pid", "run", "command"}, when another process (or TrainerLock) holds the lock; None
        when nobody does."""
        probe = TrainerLock(self.path)
        if probe.acquire():
            probe.release()
            return None
        try:
            return json.loads(self.path.read_text() or "{}") or {"pid": None, "run": None, "command": ""}
        except (OSError, ValueError):
            return {"pid": None, "run": None, "command": ""}


def holder_words(info: dict | None) -> str:
    if not info:
        return ""
    who = f"another Tuneloop process (pid {info['pid']})" if info.get("pid") else "another Tuneloop process"
    what = f" is training run {info['run']}" if info.get("run") else " is training"
    return who + what
