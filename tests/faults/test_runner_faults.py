"""The runner under faults that do not need a training run to show: a locked database in its loop, a pid reused by
another process, and a command line that must not take someone else's queued run."""
import logging
import sqlite3
import subprocess

import pytest

from backend import workspace

from backend.jobs import processes
from backend.db import connect
from backend.errors import StorageError
from backend.limits import Limits
from backend.jobs.runner import RECOVERED, JobRunner
from backend.runs import RunStore
from backend.jobs.trainer_lock import TrainerLock
from tests.conftest import tiny_config


def test_a_locked_database_in_the_runner_loop_is_logged_retried_with_backoff_then_the_run_trains(
        tiny_model, chat_file, caplog):
    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, chat_file, max_steps=2))
    db = connect()
    db.execute("PRAGMA busy_timeout=50")  # give up on the lock quickly, as a 30 s wait would after 30 s
    other = sqlite3.connect(workspace.db_path(), timeout=0, isolation_level=None)  # another program on the file
    other.execute("BEGIN EXCLUSIVE")
    caplog.set_level(logging.INFO, logger="tuneloop.runner")
    runner = JobRunner(db=db, poll_seconds=0.1, limits=Limits(runner_backoff_max_seconds=0.8))
    try:
        runner.start()
        _wait_for(lambda: len(_retries(caplog)) >= 5)
        assert store.get(run_id)["status"] == "queued"  # not claimed while the database is locked
        assert runner._thread.is_alive()
        other.execute("ROLLBACK")  # the other program lets go
        run = runner.wait(run_id, timeout=300)
    finally:
        other.close()
        runner.close()
    retries = _retries(caplog)
    waits = [record.args[0] for record in retries]
    assert waits[:5] == [0.1, 0.2, 0.4, 0.8, 0.8]  # doubling up to the cap, not a busy loop and not forever
    assert all(isinstance(r.exc_info[1], StorageError) for r in retries)
    assert "database is busy" in str(retries[0].exc_info[1])
    assert run["status"] == "done", run.get("reason")
    assert [m["step"] for m in store.metrics(run_id) if "train_loss" in m] == [1, 2]  # trained once, whole


def _retries(caplog):
    return [r for r in caplog.records if r.name == "tuneloop.runner" and r.msg.startswith("The runner hit an error")]


def _wait_for(condition, timeout: float = 60):
    import time
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


@pytest.fixture
def other_process():
    """A process that is not a training worker: it took the pid a dead worker had."""
    process = subprocess.Popen(["sleep", "300"])
    yield process
    process.kill()
    process.wait()


def _running_run(tiny_model, pid: int, pid_start: float) -> tuple[RunStore, str]:
    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl"))
    assert store.claim(run_id)
    store.update(run_id, pid=pid, pid_start=pid_start)
    return store, run_id


@pytest.mark.parametrize("trainer_lock", ["free", "held by another app"])
def test_a_reused_pid_is_recovered_as_failed_and_the_run_can_be_resumed_and_deleted(tiny_model, other_process,
                                                                                      trainer_lock):
    """The run's worker died; its pid now belongs to another process, which started later than the worker did."""
    started = processes.start_time(other_process.pid)
    store, run_id = _running_run(tiny_model, other_process.pid, pid_start=started - 120)
    assert processes.alive(other_process.pid)  # a pid-only check would call the dead worker alive
    holder = TrainerLock()
    if trainer_lock != "free":
        assert holder.acquire("another-run")
    try:
        runner = JobRunner()  # an app starting on the workspace
    finally:
        holder.release()
    run = store.get(run_id)
    assert (run["status"], run["reason"]) == ("failed", RECOVERED)
    store.queue_resume(run_id)  # what Resume does; the runner (not started here) would train it next
    assert store.get(run_id)["status"] == "queued" and store.get(run_id)["resume"] == 1
    runner.stop(run_id)
    store.delete(run_id)
    assert store.list() == [] and not workspace.run_dir(run_id).exists()


def test_the_live_worker_of_another_app_is_left_running(tiny_model, other_process):
    """The same check with the right start time: a worker that still trains for an app that died is not touched."""
    store, run_id = _running_run(tiny_model, other_process.pid, processes.start_time(other_process.pid))
    holder = TrainerLock()
    assert holder.acquire(run_id)
    try:
        JobRunner()
    finally:
        holder.release()
    assert store.get(run_id)["status"] == "running"


def test_the_command_line_never_trains_someone_elses_queued_run(tiny_model):
    store = RunStore(connect())
    theirs = store.create(tiny_config(tiny_model, "fake.jsonl"))
    runner = JobRunner(only_own=True, poll_seconds=0.01)
    for _ in range(3):
        runner._turn()  # the loop's turns, one by one
    assert store.get(theirs)["status"] == "queued" and not runner.lock.held
