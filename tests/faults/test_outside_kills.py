"""A training worker ended by a signal Tuneloop did not send: the run's reason says what is known (which signal, that
it came from outside) and speaks of memory only where the kernel counted an out-of-memory kill during the run, or,
where it cannot be asked, as the likely reading in words that say so. It said "may have run out of memory" for a
worker killed by hand."""
import os
import signal
import time

from backend.jobs import processes
from backend.jobs.runner import JobRunner, describe_exit
from tests.conftest import tiny_config


def test_a_worker_killed_by_hand_is_said_to_be_killed_from_outside_not_out_of_memory(tiny_model, chat_file,
                                                                                      monkeypatch):
    monkeypatch.setattr(processes, "oom_kills", lambda: 7, raising=False)  # the kernel counts no OOM kill meanwhile
    runner = JobRunner(poll_seconds=0.2)
    try:
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=400))
        _wait_for(lambda: runner.store.metrics(run_id))
        os.kill(runner.store.get(run_id)["pid"], signal.SIGKILL)
        run = runner.wait(run_id, timeout=120)
    finally:
        runner.close()
    assert run["status"] == "failed"
    assert run["reason"].startswith("The training process was killed from outside Tuneloop (signal SIGKILL)")
    assert "counted no out-of-memory kill" in run["reason"] and "may have run out of memory" not in run["reason"]


def test_what_is_said_for_each_way_a_worker_can_die():
    oom = describe_exit(-signal.SIGKILL, oom=True)
    assert "out of memory" in oom and "batch_size" in oom
    unknown = describe_exit(-signal.SIGKILL, oom=None)
    assert "killed from outside Tuneloop (signal SIGKILL)" in unknown and "If nobody ended it" in unknown
    term = describe_exit(-signal.SIGTERM, oom=False)
    assert term.startswith("The training process was ended from outside Tuneloop (signal SIGTERM)")
    assert "memory" not in term
    assert "crashed (signal SIGSEGV)" in describe_exit(-signal.SIGSEGV, oom=False)
    assert "exit code 3" in describe_exit(3, oom=None)


def test_the_kernels_out_of_memory_kills_are_counted_where_it_says():
    if os.path.exists("/proc/vmstat"):
        assert isinstance(processes.oom_kills(), int)


def _wait_for(condition, timeout: float = 300):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)
