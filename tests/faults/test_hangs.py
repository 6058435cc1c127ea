"""A training worker that hangs (injected: it stops for good while saving its first checkpoint, and ignores SIGTERM):
past `hang_minutes` without a step or a log line the runner ends it, SIGTERM then SIGKILL, and fails the run with the
reason; a Stop it does not answer is escalated the same way after `stop_grace_seconds`. The runner goes on."""
import logging
import os
import time
from pathlib import Path

import pytest

from backend.limits import Limits
from backend.jobs.runner import JobRunner, hang_reason, stop_reason
from tests.conftest import tiny_config

INJECT = Path(__file__).resolve().parent / "inject"


@pytest.fixture
def hanging_worker(monkeypatch):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(filter(None, [str(INJECT), os.environ.get("PYTHONPATH")])))
    monkeypatch.setenv("TUNELOOP_FAULT", "hang:/checkpoint-2/")


def _escalated(caplog) -> bool:
    return any(r.name == "tuneloop.runner" and "did not end on SIGTERM" in r.getMessage() for r in caplog.records)


def test_a_hung_worker_is_ended_and_its_run_failed_with_the_reason(tiny_model, chat_file, hanging_worker, caplog):
    caplog.set_level(logging.INFO, logger="tuneloop.runner")
    limits = Limits(hang_minutes=0.25, term_grace_seconds=2)
    runner = JobRunner(poll_seconds=0.2, limits=limits)
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6, save_every=2))
        run = runner.wait(run_id, timeout=600)
        assert (run["status"], run["reason"]) == ("failed", hang_reason(0.25))
        assert _escalated(caplog)  # it ignored SIGTERM, so it was killed
        assert runner.current is None and runner._thread.is_alive()  # the runner goes on
        assert max(m["step"] for m in runner.store.metrics(run_id)) <= 2  # it never went past the hang
    finally:
        runner.close()


def test_a_stop_the_worker_does_not_answer_is_escalated(tiny_model, chat_file, hanging_worker, caplog):
    caplog.set_level(logging.INFO, logger="tuneloop.runner")
    runner = JobRunner(poll_seconds=0.2, limits=Limits(stop_grace_seconds=2, term_grace_seconds=2))
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6, save_every=2))
        deadline = time.monotonic() + 600
        while not any(m["step"] >= 2 for m in runner.store.metrics(run_id)):  # at the hanging save
            assert time.monotonic() < deadline and runner.store.get(run_id)["status"] in ("queued", "running")
            time.sleep(0.2)
        runner.stop(run_id)
        run = runner.wait(run_id, timeout=120)
        assert (run["status"], run["reason"]) == ("stopped", stop_reason(2))
        assert _escalated(caplog)
    finally:
        runner.close()
