"""A disk that fills up during training: on a small tmpfs workspace where this machine may mount one (the database
fills up with it), and by injecting ENOSPC into the training worker everywhere (tests/faults/inject). The run fails
with the reason in words, the runner goes on, and nothing half-written looks finished: resumed after space is freed,
the run finishes from its last complete checkpoint."""
import logging
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from backend import workspace
from backend.errors import RunStateError
from backend.jobs.runner import JobRunner
from backend.train.checkpoints import problem
from backend.jobs.worker import DISK_FULL
from tests.conftest import tiny_config

INJECT = Path(__file__).resolve().parent / "inject"


@pytest.fixture
def small_disk(tmp_path, monkeypatch):
    """A 32 MB tmpfs holding the whole workspace (database included); skipped where mounting is not allowed."""
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=32m", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({done.stderr.decode().strip()}); the injected ENOSPC test covers it")
    monkeypatch.setenv("TUNELOOP_HOME", str(mount / "home"))
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def test_a_small_disk_that_fills_during_training(tiny_model, chat_file, small_disk, caplog):
    caplog.set_level(logging.INFO, logger="tuneloop.runner")
    runner = JobRunner(poll_seconds=0.2)
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6, save_every=2))
        ballast = small_disk / "ballast"  # someone else's files fill the disk, leaving the run 1 MB
        ballast.write_bytes(b"\0" * max(0, shutil.disk_usage(small_disk).free - 1024 * 1024))
        _wait_for(lambda: runner.store.get(run_id)["status"] != "running" and runner.current is None
                  and runner.store.get(run_id)["status"] != "queued" or _full_retries(caplog))
        ballast.unlink()  # space freed: what could not be recorded on the full disk is recorded now
        run = runner.wait(run_id, timeout=120)
        assert (run["status"], run["reason"]) == ("failed", DISK_FULL)
        _nothing_half_written_looks_finished(runner, run_id)
        _resume_finishes(runner, run_id)
    finally:
        runner.close()


def test_enospc_injected_into_the_training_worker(tiny_model, chat_file, monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TUNELOOP_FAULT", "enospc:/checkpoint-4/")  # the second checkpoint: the disk is full
    runner = JobRunner(poll_seconds=0.2)
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6, save_every=2))
        run = runner.wait(run_id, timeout=300)
        assert (run["status"], run["reason"]) == ("failed", DISK_FULL)
        _nothing_half_written_looks_finished(runner, run_id)
        monkeypatch.delenv("TUNELOOP_FAULT")  # space freed
        _resume_finishes(runner, run_id)
    finally:
        runner.close()


def _full_retries(caplog) -> bool:
    return any(r.name == "tuneloop.runner" and r.exc_info and "disk that holds the workspace is full"
               in str(r.exc_info[1]) for r in caplog.records)


def _nothing_half_written_looks_finished(runner, run_id):
    with pytest.raises(RunStateError):
        runner.store.finished_adapter(run_id)
    assert not (workspace.run_dir(run_id) / "adapter").exists()
    assert runner.store.finished() == []
    checkpoints = sorted((workspace.run_dir(run_id) / "checkpoints").glob("checkpoint-*"))
    assert all(problem(c) is None for c in checkpoints[:-1])  # only the newest may be cut short: resume skips it


def _resume_finishes(runner, run_id):
    """The same runner, still alive, trains the run again from its last complete checkpoint to the end."""
    assert runner._thread.is_alive()
    runner.resume(run_id)
    run = runner.wait(run_id, timeout=300)
    assert run["status"] == "done", run.get("reason")
    assert run["final_metrics"]["steps"] == 6
    runner.store.finished_adapter(run_id)


def _wait_for(condition, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
