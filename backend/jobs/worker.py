"""The worker process: trains one run, writing status and metrics to the database.

Started by the runner in a fresh process, so that a crash or out-of-memory never takes the app down
and all memory is returned when the run ends.
"""
import os
import sys
import traceback
from pathlib import Path


def main(run_id: str, home: str):
    os.environ["TUNELOOP_HOME"] = home
    from backend.jobs.processes import own_process_group
    own_process_group()  # the runner signals the worker's group: the worker and anything it starts
    _exit_with_parent()
    from backend import workspace
    folder = workspace.run_dir(run_id)
    log_file = open(folder / workspace.RAW_LOG, "a", buffering=1)
    sys.stdout = sys.stderr = log_file
    os.dup2(log_file.fileno(), 1)
    os.dup2(log_file.fileno(), 2)

    from backend.db import connect
    from backend.runs import RunStore

    finish(RunStore(connect()), run_id)


def standby(conn, home: str):
    """A worker started ahead (launcher.Standby): load the training libraries, say so, wait for a run and train it.
    The app closing the pipe (it ended, or dropped this standby) ends it without training."""
    _exit_with_parent()
    before = dict(os.environ)
    import backend.train  # noqa: F401  first: it sets the OpenMP wait policy before torch loads
    import backend.train.dpo  # noqa: F401  TRL, datasets, PEFT and Transformers' trainer
    import backend.train.kto  # noqa: F401
    import backend.train.sft  # noqa: F401
    after = dict(os.environ)
    conn.send(sorted(k for k in set(before) | set(after) if before.get(k) != after.get(k)))  # ready
    try:
        run_id = conn.recv()
    except (EOFError, OSError):
        return
    conn.close()
    main(run_id, home)


def finish(store, run_id: str, crashes: bool = True) -> bool:
    """Train the run and record how it went in the database; False when it failed. crashes=False (rank 0 of several
    processes): an unexpected error is raised, not recorded, so that the launcher names the rank that failed first
    (a rank killed beside it makes this one fail too, with a lost connection)."""
    from backend import workspace
    from backend.errors import TuneloopError
    folder = workspace.run_dir(run_id)
    update, set_status = patiently(store.update), patiently(store.set_status)
    try:
        run = store.get(run_id)
        result = train_run(store, run)
        update(run_id, final_metrics=result["metrics"], probe=result["probe"], heldout=result["heldout"],
               outcome=result["outcome"], diagnosis=run_diagnosis(store, run, result))
        set_status(run_id, "stopped" if result["stopped"] else "done")
        _log(lambda: say(folder, "Run stopped; resume it with: python app.py resume " + run_id if result["stopped"]
                         else "Run finished."))
        return True
    except TuneloopError as exc:
        set_status(run_id, "failed", reason=str(exc))
        _log(lambda: say(folder, f"Run failed: {exc}"))
    except Exception as exc:  # anything else: a sentence in the database first, then the traceback in the log
        if not crashes:
            raise
        set_status(run_id, "failed", reason=explain_failure(exc, folder))
        _log(traceback.print_exc)
    return False


LOCK_WAIT_SECONDS = 900  # a run waits this long in all for a database another program holds, then fails


def patiently(write, wait: float = LOCK_WAIT_SECONDS):
    """`write` (a RunStore write) tried again while another program holds the workspace's database past the
    connection's own 30 s wait: the run in flight waits for it rather than fails. A line in the run's log at each
    try keeps the runner's hang watch from taking the wait for a stuck worker."""
    import time

    def call(*args, **kwargs):
        deadline = time.monotonic() + wait
        pause = 0.5
        while True:
            try:
                return write(*args, **kwargs)
            except Exception as exc:
                if not _locked(exc) or time.monotonic() > deadline:
                    raise
                _log(lambda: print("The workspace's database is busy (another program holds it); training waits to "
                                   f"record its progress, trying again in {pause:g} s."))
                time.sleep(pause)
                pause = min(2 * pause, 10.0)
    return call


def _locked(exc: BaseException) -> bool:
    import sqlite3
    return _caused_by(exc, lambda e: isinstance(e, sqlite3.OperationalError)
                      and any(word in str(e).lower() for word in ("locked", "busy")))


def _log(write):
    """Write to the run's log, unless that fails too (a full disk): the reason is in the database already."""
    try:
        write()
    except OSError:
        pass


def _exit_with_parent():
    """A worker whose app was killed stops too, instead of training on unseen (the next app start marks
    the run failed, and it can be resumed from its last checkpoint). On Linux the kernel does it."""
    import ctypes
    import signal

    try:
        libc = ctypes.CDLL(None, use_errno=True)
        PR_SET_PDEATHSIG = 1
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    except (OSError, AttributeError):
        return
    if os.getppid() == 1:  # the parent died before the request took effect
        os._exit(3)


def train_run(store, run: dict, writes: bool = True) -> dict:
    """writes=False: a rank other than 0 of a run trained by several processes, which writes nothing to the database."""
    from backend import workspace
    from backend.config import METHOD_TABLE, build_config
    from backend.data import load_examples
    from backend.train import run_training
    from backend.words import plural

    config = build_config(run["config"])
    folder = workspace.run_dir(run["id"])
    if writes and not os.environ.get("RANK"):  # several processes: the launcher cleared it before they started
        (folder / workspace.STOP_FILE).unlink(missing_ok=True)
    base_adapter = store.finished_adapter(config.base_run) if config.base_run else None
    kind, train_rows, eval_rows = load_examples(config.dataset, db=store.db,
                                                validation_fraction=config.validation_split)
    if kind != config.method:
        from backend.errors import DataError
        raise DataError(f"The data in '{config.dataset}' is {kind.upper()} data, but the run's method is "
                        f"{config.method.upper()}. {METHOD_TABLE[config.method].needs}")
    tell = (lambda text: say(folder, text)) if writes else print
    tell(f"Training {config.method.upper()} on {plural(len(train_rows), 'example')} ({len(eval_rows)} held out).")
    narrate = Narrator(tell)

    def record(step, row):
        store.add_metrics(run["id"], step, row)
        narrate(step, row)
    return run_training(
        config, folder, train_rows, eval_rows,
        on_metrics=patiently(record) if writes else _nothing,
        on_total_steps=patiently(lambda total: store.update(run["id"], total_steps=total)) if writes else _nothing,
        base_adapter=base_adapter, resume=bool(run.get("resume")), log=tell,
    )


def say(folder: Path, text: str):
    """A sentence for people: into the raw log, among the libraries' output, and into the readable one that Progress
    shows (events.log: the time, then the sentence)."""
    import time

    from backend import workspace
    print(text)
    try:
        with open(folder / workspace.EVENTS_LOG, "a") as events:
            events.write(f"{time.strftime('%H:%M:%S')}  {text}\n")
    except OSError:  # a full disk: the raw log and the database say what matters; this line is a convenience
        pass


class Narrator:
    """One readable line per check, from the metrics rows as they are recorded: the held-back loss beside the last
    training loss, what the held-back answers show, and each check after training."""

    def __init__(self, tell):
        self.tell, self.loss = tell, None

    def __call__(self, step: int, row: dict):
        from backend.train.behaviour_check import PROBE_SAMPLE
        if "train_loss" in row:
            self.loss = row["train_loss"]
        if "eval_loss" in row:
            self.tell(f"Check at step {step}: held-back loss {row['eval_loss']:.3g}"
                      + (f", training loss {self.loss:.3g}." if self.loss is not None else "."))
        if "heldout_behaviour" in row:
            self.tell(f"Check at step {step}: the held-back answers show {row['heldout_behaviour']:.0%} of what the "
                      f"examples teach; everyday answers kept: {row['everyday_kept']} of {PROBE_SAMPLE}.")
        if "checking" in row:
            self.tell(f"Training done at step {step}. Checking {row['checking']} ({row['check']} of "
                      f"{row['of_checks']}).")


def _nothing(*_):
    pass


def run_diagnosis(store, run: dict, result: dict) -> list[dict] | None:
    """The plain-words findings about a run that ran to its end (a run stopped by hand has no end to read)."""
    if result["stopped"]:
        return None
    from backend.evaluation.diagnosis import diagnose
    outcome = result["outcome"]
    return diagnose(store.metrics(run["id"]), result["probe"], run["config"], outcome["train_examples"],
                    outcome.get("early_stopping"), heldout=result["heldout"], checks=outcome.get("behaviour_checks"),
                    their_way=outcome.get("everyday_their_way", 0))


FREE_BYTES_FULL = 64 * 1024 * 1024  # a failed write on a disk with less free space than this: the disk is full
DISK_FULL = ("The disk is full: the run could not write its checkpoint, log or results. Free some space on the disk "
             "that holds the workspace, then resume the run; it goes on from its last complete checkpoint.")


def disk_full(folder: Path) -> bool:
    """Whether the disk that holds `folder` is (nearly) full: asked when a worker died without recording why, which
    it cannot do when the database shares that disk."""
    import shutil
    try:
        return shutil.disk_usage(folder).free < FREE_BYTES_FULL
    except OSError:
        return False


def explain_failure(exc: Exception, folder: Path | None = None) -> str:
    """A sentence for the run's failure. `folder`: the run's folder, whose disk is looked at when a write failed
    (libraries word a full disk in many ways, PyTorch's writer as "file write failed")."""
    from backend.errors import disk_full as full_disk_error
    text = f"{type(exc).__name__}: {exc}"
    full = full_disk_error(exc)
    if not full and folder is not None and _caused_by(exc, lambda e: "write" in str(e).lower()):
        full = disk_full(folder)
    if full:
        return DISK_FULL
    if "database is locked" in text:
        return ("The workspace's database stayed busy (locked by another program) for too long. Close what holds "
                "it, then resume the run.")
    if "out of memory" in text.lower() or isinstance(exc, MemoryError):
        return ("The run ran out of memory. Lower batch_size or max_length, or use 4-bit (QLoRA). "
                "Details are in the run's log.")
    first = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
    return f"Training stopped with an error: {first}. The full details are in the run's log."


def _caused_by(exc: BaseException, test) -> bool:
    """Whether `exc`, or an exception it was raised from or while handling, passes `test`."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if test(exc):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return False
