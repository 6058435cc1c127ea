"""JobRunner: one run trains at a time, each in its own process; the rest wait in a queue.

The queue lives in the database (status 'queued'), so a restarted app picks up where it was. The runner
thread watches the worker process; a worker that dies without saying why is marked failed with a reason.

What keeps it honest when things go wrong:
- one trainer per workspace: a process trains only while it holds the workspace's trainer lock (trainer_lock.py),
  so two apps and the command line on one workspace never train two runs at once, and each run is trained once;
- the loop cannot die quietly: an error (a locked database, a full disk) is logged and the turn is tried again
  after a growing pause;
- a worker is known by its pid and its start time (processes.py), so a pid reused by another process does not
  keep a dead run 'running';
- a worker that makes no progress (no step, no log line) for `hang_minutes` is ended and its run failed with the
  reason; Stop asks through the STOP file, then SIGTERM, then SIGKILL, each after a grace period, to the worker's
  whole process group.
"""
import logging
import signal
import threading
import time
from dataclasses import dataclass

from backend import limits as limits_mod
from backend import workspace
from backend.jobs import processes
from backend.config import RunConfig
from backend.db import connect
from backend.runs import ACTIVE, ENDED, FAILED, QUEUED, RUNNING, STOPPED, RunStore
from backend.jobs.trainer_lock import TrainerLock, holder_words

log = logging.getLogger("tuneloop.runner")
RECOVERED = "The app closed while this run was training. Resume it to continue from its last checkpoint."
PROGRESS_CHECK_SECONDS = 5.0  # how often the watch reads the run's last step and log time


@dataclass
class _Ending:
    """The runner is ending a worker: why, and the status the run gets."""
    status: str
    reason: str
    term_sent: float | None = None  # monotonic time of SIGTERM
    killed: bool = False


class JobRunner:
    def __init__(self, db=None, poll_seconds: float = 0.5, only_own: bool = False,
                 limits: limits_mod.Limits | None = None, standby: bool = False):
        """`only_own`: train only the runs submitted or resumed through this runner (the command line), never
        someone else's queued run. `standby`: keep a worker started ahead while no run trains (launcher.Standby),
        so that a run's first step does not wait for the training libraries to load (the web app does)."""
        self.db = db or connect()
        self.store = RunStore(self.db)
        self.poll_seconds = poll_seconds
        self.only_own = only_own
        self.own: set[str] = set()
        self.limits = limits or limits_mod.current()
        self.lock = TrainerLock()
        self.current: str | None = None
        self.process = None
        self.waiting_for: dict | None = None  # who holds the trainer lock while this runner waits for it
        # (run_id, ending, exit code, disk full, out-of-memory kill seen) of a worker whose outcome is not recorded yet
        self._pending = None
        self._wake = threading.Event()
        self._closing = False
        self._thread = None
        self.keep_standby = standby
        self.standby = None
        self._standby_failed = False
        self._recover()

    # --- public ---------------------------------------------------------------------------------
    def check(self, config: RunConfig):
        """Refuse, in words, a run that cannot start: a missing or broken model, or a base run without a finished
        adapter. Called before anything is stored, so the error comes now rather than later from the worker."""
        from backend.models.loading import resolve_model
        resolve_model(config.model)
        if config.base_run and self.store.get(config.base_run)["status"] not in ACTIVE:
            self.store.finished_adapter(config.base_run)  # one still training or waiting is checked when this starts

    def submit(self, config: RunConfig) -> str:
        """Queue a run; it starts as soon as no other run is training. Returns the run id."""
        self.check(config)
        run_id = self.store.create(config)
        self.own.add(run_id)
        self.wake()
        return run_id

    def resume(self, run_id: str) -> str:
        self.store.queue_resume(run_id)
        self.own.add(run_id)
        self.wake()
        return run_id

    def wake(self):
        """Look at the queue now (a run was queued by someone else's transaction)."""
        self.start()
        self._wake.set()

    def stop(self, run_id: str):
        """Ask a run to stop: a queued run is taken off the queue; a running one ends its step and saves. The process
        that trains it ends the worker if it has not stopped after the grace period (see _watch)."""
        run = self.store.get(run_id)
        if run["status"] == QUEUED:
            self.store.set_status(run_id, STOPPED, reason="Stopped before it started.")
        elif run["status"] == RUNNING:
            (workspace.run_dir(run_id) / workspace.STOP_FILE).touch()

    def wait(self, run_id: str, timeout: float | None = None) -> dict:
        deadline = None if timeout is None else time.time() + timeout
        while True:
            run = self.store.get(run_id)
            if run["status"] in ENDED:
                return run
            if deadline and time.time() > deadline:
                raise TimeoutError(f"run {run_id} still {run['status']}")
            time.sleep(0.3)

    def standby_ready(self, timeout: float) -> bool:
        """Whether a standby worker has loaded the training libraries, waiting up to `timeout` seconds (the web app's
        page is open long before its Start is clicked; benchmarks and tests wait for that state)."""
        deadline = time.monotonic() + timeout
        while True:
            standby = self.standby
            if standby is not None and standby.ready(0.2):
                return True
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)

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
        if self._thread:  # long enough for the stop to go through every step of its escalation
            self._thread.join(timeout=self.limits.stop_grace_seconds + self.limits.term_grace_seconds + 30)
        if self.standby is not None:
            self.standby.close()
            self.standby = None

    # --- the loop -------------------------------------------------------------------------------
    def _loop(self):
        """Turns until closed. An error is logged and the turn tried again after a pause that doubles up to
        runner_backoff_max_seconds: a locked or full database must not end the thread that trains the queue."""
        backoff = 0.0
        while not self._closing:
            try:
                self._turn()
                backoff = 0.0
            except Exception:
                backoff = min(max(2 * backoff, self.poll_seconds), self.limits.runner_backoff_max_seconds)
                log.exception("The runner hit an error; trying again in %.1f s", backoff)
                self._pause(backoff)

    def _turn(self):
        """One look at the queue: record a pending outcome, then train the next run if the trainer lock is free."""
        self._settle()
        run_id = self._next()
        if run_id is None:
            self._keep_standby()
            self._pause(self.poll_seconds)
            return
        if not self.lock.acquire(run_id):
            self._note_waiting(run_id)
            self._pause(self.poll_seconds)
            return
        self.waiting_for = None
        try:
            self._recover_orphans()
            self._run_one(run_id)
        finally:
            if self._pending is None:  # an unrecorded outcome keeps the lock: nobody else trains until it is
                self.lock.release()

    def _next(self) -> str | None:
        if self.only_own:
            return self.store.next_queued(among=self.own) if self.own else None
        return self.store.next_queued()

    def _pause(self, seconds: float):
        self._wake.wait(seconds)
        self._wake.clear()

    def _keep_standby(self):
        """With nothing to train, have a standby worker that fits the next run (a new one if the environment
        changed). One that dies before it is used is not replaced: runs spawn their own worker."""
        if not self.keep_standby or self._closing or self._standby_failed:
            return
        from backend.jobs import launcher
        self._drop_unfit_standby()
        if self.standby is None and not self._standby_failed:
            self.standby = launcher.Standby(str(workspace.home()))

    def _drop_unfit_standby(self):
        if self.standby is None or self.standby.fits(str(workspace.home())):
            return
        if not self.standby.process.is_alive():
            log.warning("The standby training process ended unused (exit code %s); runs start their own.",
                        self.standby.exitcode)
            self._standby_failed = True
        self.standby.close()
        self.standby = None

    def _note_waiting(self, run_id: str):
        holder = self.lock.holder()
        if holder and holder != self.waiting_for:
            log.info("Run %s waits: %s.", run_id, holder_words(holder))
        self.waiting_for = holder

    def _run_one(self, run_id: str):
        from backend.jobs import launcher
        from backend.jobs.worker import disk_full
        if not self.store.claim(run_id):  # another Tuneloop process took it first
            return
        self.current = run_id
        (workspace.run_dir(run_id) / workspace.STOP_FILE).unlink(missing_ok=True)  # a stop asked of an earlier attempt
        process = launcher.worker_process(run_id, str(workspace.home()), self.store, self.standby)
        if process is self.standby:
            self.standby = None  # taken: a new one is started when the queue is empty again
        else:  # started under other settings, it must not load its libraries beside the run
            self._drop_unfit_standby()
        self.process = process
        oom_before = processes.oom_kills()
        process.start()
        self._record_worker(run_id, process.pid)
        ending = self._watch(run_id, process)
        self.current = None
        self.process = None
        # A worker that died on a full disk could not record why (the database shares the disk): judge it now.
        oom_after = processes.oom_kills()
        oom = None if oom_before is None or oom_after is None else oom_after > oom_before
        self._pending = (run_id, ending, exit_code(process), disk_full(workspace.run_dir(run_id)), oom)
        self._settle()

    def _record_worker(self, run_id: str, pid: int):
        try:
            self.store.update(run_id, pid=pid, pid_start=processes.start_time(pid))
        except Exception:  # the worker runs and is watched all the same; recovery falls back on the trainer lock
            log.exception("Could not record the worker of run %s (pid %s)", run_id, pid)

    def _settle(self):
        """Record the outcome of the worker that ended, unless the worker recorded it itself; then let the lock go."""
        if self._pending is None:
            return
        run_id, ending, code, full, oom = self._pending
        if self.store.get(run_id)["status"] == RUNNING:
            if ending is not None:
                self.store.set_status(run_id, ending.status, reason=ending.reason)
            else:  # the worker died without recording an outcome
                from backend.jobs.worker import DISK_FULL
                self.store.set_status(run_id, FAILED, reason=DISK_FULL if full and code else describe_exit(code, oom))
        self._pending = None
        self.lock.release()

    # --- watching a worker ------------------------------------------------------------------------
    def _watch(self, run_id: str, process) -> "_Ending | None":
        """Wait for the worker to end. End it (SIGTERM, then SIGKILL) when it has not stopped `stop_grace_seconds`
        after a stop was asked, or has made no progress for `hang_minutes`. Returns why it was ended, or None."""
        limits = self.limits
        stop_file = workspace.run_dir(run_id) / workspace.STOP_FILE
        stop_seen = None
        ending = None
        last_check = 0.0
        while wait_exit(process, self.poll_seconds) is None:
            now = time.monotonic()
            if ending is None:
                if stop_file.exists():
                    stop_seen = stop_seen or now
                    if now - stop_seen > limits.stop_grace_seconds:
                        ending = _Ending(STOPPED, stop_reason(limits.stop_grace_seconds))
                else:
                    stop_seen = None
                if ending is None and now - last_check > PROGRESS_CHECK_SECONDS:
                    last_check = now
                    idle = self._idle_seconds(run_id)
                    if idle is not None and idle > limits.hang_minutes * 60:
                        ending = _Ending(FAILED, hang_reason(limits.hang_minutes))
            if ending is not None:
                self._escalate(process, ending, now)
        return ending

    def _idle_seconds(self, run_id: str) -> float | None:
        """Seconds since the run last showed progress: its last metrics row, its log, or its start."""
        try:
            last = self.store.last_metrics_time(run_id) or 0
            started = self.store.get(run_id).get("started")
        except Exception:  # a busy database: judge at the next check
            return None
        log_file = workspace.run_dir(run_id) / workspace.RAW_LOG
        times = [last]
        if log_file.exists():
            times.append(log_file.stat().st_mtime)
        if started:
            from datetime import datetime
            times.append(datetime.fromisoformat(started).timestamp())
        return time.time() - max(times)

    def _escalate(self, process, ending: _Ending, now: float):
        """SIGTERM to the worker's process group at once, SIGKILL `term_grace_seconds` later."""
        if ending.term_sent is None:
            log.warning("Ending the worker of run %s (SIGTERM): %s", self.current, ending.reason)
            processes.signal_group(process.pid, signal.SIGTERM)
            ending.term_sent = now
        elif not ending.killed and now - ending.term_sent > self.limits.term_grace_seconds:
            log.warning("The worker of run %s did not end on SIGTERM: SIGKILL", self.current)
            processes.signal_group(process.pid, signal.SIGKILL)
            ending.killed = True

    # --- recovery -------------------------------------------------------------------------------
    def _recover(self):
        """At start: runs left running by a process that is gone are marked failed, and can be resumed."""
        held = self.lock.acquire()
        try:
            self._recover_orphans(lock_held=held)
        finally:
            if held:
                self.lock.release()

    def _recover_orphans(self, lock_held: bool = True):
        """Every running run (but this runner's own) whose worker, by pid and start time, is gone is an orphan: failed.
        A worker whose app died and which still runs records its own outcome. A run whose worker is not known yet is
        an orphan only with the trainer lock held: without it, it may be starting in the process that holds it."""
        for run in self.store.running():
            if run["id"] == self.current:
                continue
            if run["pid_start"] is None and not lock_held:
                continue
            if run["pid_start"] is not None and processes.alive(run["pid"], run["pid_start"]):
                continue
            self.store.set_status(run["id"], FAILED, reason=RECOVERED)


def wait_exit(process, timeout: float):
    """The exit code of a worker handle (multiprocessing.Process or subprocess.Popen) once it has ended, after
    waiting up to `timeout`; None while it runs."""
    if hasattr(process, "poll"):
        import subprocess
        try:
            return process.wait(timeout)
        except subprocess.TimeoutExpired:
            return None
    process.join(timeout)
    return process.exitcode


def exit_code(process):
    return process.returncode if hasattr(process, "poll") else process.exitcode


def stop_reason(grace: float) -> str:
    return (f"Asked to stop, it had not stopped {grace:g} s later, so it was ended. What it learned since its last "
            "checkpoint was not saved: resume it to go on from there.")


def hang_reason(minutes: float) -> str:
    return (f"No training step and no log line for {minutes:g} minutes: the training process seemed stuck and was "
            "ended. Resume it to continue from its last checkpoint; the log shows where it stopped.")


CRASH_SIGNALS = {signal.SIGSEGV, signal.SIGBUS, signal.SIGILL, signal.SIGFPE, signal.SIGABRT}
RESUME = "Resume the run to go on from its last checkpoint."


def describe_exit(code: int | None, oom: bool | None = None) -> str:
    """Why a worker ended without recording why, in what is known: the signal, and whether the kernel's
    out-of-memory killer ended a process meanwhile (`oom`: None where that cannot be read). Tuneloop's own SIGTERM
    and SIGKILL (stop, hang) are recorded with their reason before this is asked."""
    if code is None or code >= 0:
        return f"The training process ended unexpectedly (exit code {code}). Details are in the run's log."
    name = processes.signal_name(-code)
    if -code in CRASH_SIGNALS:
        return f"The training process crashed (signal {name}) in a library it uses. Details are in the run's log."
    if -code != signal.SIGKILL:
        return f"The training process was ended from outside Tuneloop (signal {name}). {RESUME}"
    if oom:
        return ("The training process was killed (signal SIGKILL) while the system was out of memory: the kernel "
                "ended a process for lack of memory during the run, most likely this one. Try a smaller batch_size "
                f"or max_length, or 4-bit (QLoRA). {RESUME}")
    if oom is False:
        return ("The training process was killed from outside Tuneloop (signal SIGKILL): the kernel counted no "
                f"out-of-memory kill during the run, so a person or another program ended it. {RESUME}")
    return ("The training process was killed from outside Tuneloop (signal SIGKILL), by hand or by the system when "
            "memory ran out; this computer does not say which. If nobody ended it, try a smaller batch_size or "
            f"max_length. {RESUME}")
