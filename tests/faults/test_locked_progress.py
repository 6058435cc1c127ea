"""Another program holds the workspace's database longer than the worker's 30 s wait while a run trains: the worker
waits on (a line in the run's log each time it tries again) instead of failing the run, and records every step once
the lock goes. It failed the run in flight: "The workspace's database stayed busy ... for too long"."""
import sqlite3
import time

from backend import workspace
from backend.jobs.runner import JobRunner
from tests.conftest import tiny_config

WAITING = "The workspace's database is busy (another program holds it); training waits to record"


def test_a_lock_longer_than_the_wait_is_waited_out_and_the_run_finishes(tiny_model, chat_file):
    runner = JobRunner(poll_seconds=0.2)
    other = None
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=8))
        _wait_for(lambda: runner.store.metrics(run_id))  # in flight
        other = sqlite3.connect(workspace.db_path(), timeout=0, isolation_level=None)  # another program on the file
        other.execute("BEGIN EXCLUSIVE")
        log = workspace.run_dir(run_id) / "train.log"
        # held until the worker has given up once on its 30 s wait (or, unfixed, has failed the run)
        _wait_for(lambda: WAITING in log.read_text() or _ended(log), timeout=600)
        other.execute("ROLLBACK")
        other.close()
        other = None
        run = runner.wait(run_id, timeout=600)
    finally:
        if other is not None:
            other.close()
        runner.close()
    assert run["status"] == "done", run.get("reason")
    assert [m["step"] for m in runner.store.metrics(run_id) if "train_loss" in m] == list(range(1, 9))
    assert WAITING in log.read_text()


def _ended(log) -> bool:
    text = log.read_text()
    return "Run failed" in text or "Traceback" in text or "Run finished." in text


def _wait_for(condition, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
