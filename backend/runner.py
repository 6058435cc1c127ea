"""JobRunner: one run trains at a time, each in its own process; the rest wait in a queue.

The queue lives in the database (status 'queued'), so a restarted app picks up where it was. The runner
thread watches the worker process; a worker that dies without saying why is marked failed with a reason.
"""
import multiprocessing
import signal
import threading
import time

from backend import workspace
from backend.config import RunConfig
from backend.db import connect
from backend.runs import ACTIVE, ENDED, RunStore

STOP_GRACE_SECONDS = 120


class JobRunner:
    def __init__(self, db=None, poll_seconds: float = 0.5):
        self.db = db or connect()
        self.store = RunStore(self.db)
        self.poll_seconds = poll_seconds
        self.current: str | None = None
        self.process = None
        self._wake = threading.Event()
        self._closing = False
        self._thread = None
        self._recover()

    # --- public ---------------------------------------------------------------------------------
    def check(self, config: RunConfig):
        """Refuse, in words, a run that cannot start: a missing or broken model, or a base run without a finished
        adapter. Called before anything is stored, so the error comes now rather than later from the worker."""
        from backend.models import resolve_model
        resolve_model(config.model)
        if config.base_run and self.store.get(config.base_run)["status"] not in ACTIVE:
            self.store.finished_adapter(config.base_run)  # one still training or waiting is checked when this starts

    def submit(self, config: RunConfig) -> str:
        """Queue a run; it starts as soon as no other run is training. Returns the run id."""
        self.check(config)
        run_id = self.store.create(config)
        self.wake()
        return run_id

    def resume(self, run_id: str) -> str:
        self.store.queue_resume(run_id)
        self.wake()
        return run_id

    def wake(self):
        """Look at the queue now (a run was queued by someone else's transaction)."""
        self.start()
        self._wake.set()

    def stop(self, run_id: str):
        """Ask a run to stop: a queued run is taken off the queue; a running one ends its step and saves."""
        run = self.store.get(run_id)
        if run["status"] == "queued":
            self.store.set_status(run_id, "stopped", reason="Stopped before it started.")
        elif run["status"] == "running":
            (workspace.run_dir(run_id) / "STOP").touch()

    def wait(self, run_id: str, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.time() + timeout
        while True:
            run = self.store.get(run_id)
            if run["status"] in ENDED:
                return run
            if deadline and time.time() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']}")
            time.sleep(0.3)

    def start(self):
        if self._thread is None or not self._thread.is_alive():
            self._closing = False
            self._thread = threading.Thread(target=self._loop, name="tuneloop-runner", daemon=True)
            self._thread.start()

    def close(self, stop_current: bool = True):
        self._closing = True
        self._wake.set()
        if stop_current and self.current:
            self.stop(self.current)
        if self._thread:
            self._thread.join(timeout=STOP_GRACE_SECONDS)

    # --- the loop -------------------------------------------------------------------------------
    def _loop(self):
        while not self._closing:
            run_id = self.store.next_queued()
            if run_id is None:
                self._wake.wait(self.poll_seconds)
                self._wake.clear()
                continue
            self._run_one(run_id)

    def _run_one(self, run_id: str):
        from backend import worker
        context = multiprocessing.get_context("spawn")
        if not self.store.claim(run_id):  # another Tuneloop process took it first
            return
        self.current = run_id
        process = context.Process(target=worker.main, args=(run_id, str(workspace.home())), daemon=True)
        self.process = process
        process.start()
        self.store.update(run_id, pid=process.pid)
        process.join()
        self.current = None
        self.process = None
        run = self.store.get(run_id)
        if run["status"] == "running":  # the worker died without recording an outcome
            self.store.set_status(run_id, "failed", reason=describe_exit(process.exitcode))

    def _recover(self):
        """Runs left 'running' by an app that was killed are marked failed, and can be resumed."""
        for run in self.db.rows("select id, pid from runs where status = 'running'"):
            if run["pid"] and _alive(run["pid"]):
                continue  # trained by another Tuneloop process (the CLI beside the web app)
            self.store.set_status(run["id"], "failed", reason="The app closed while this run was training. "
                                  "Resume it to continue from its last checkpoint.")


def describe_exit(code: int | None) -> str:
    if code is not None and code < 0:
        name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
        hint = " The system may have run out of memory: try a smaller batch_size or max_length." if name == "SIGKILL" else ""
        return f"The training process was ended by the system ({name}).{hint} Details are in the run's log."
    return f"The training process ended unexpectedly (exit code {code}). Details are in the run's log."


def _alive(pid: int) -> bool:
    """True while the process runs (a zombie, dead but not yet reaped, counts as gone)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the process itself
        import os
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
