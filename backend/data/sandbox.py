"""Inspecting a user's data file in a child process, under the caps of backend/limits.py.

A crafted or unlucky file (a sheet that claims a million rows, a few kilobytes of Parquet that unpack to a
million, a ZIP bomb, 200 MB of tiny rows) must cost one sentence, never the app: the file is read, detected,
validated and measured in a child process that may use so much memory (its address space is capped, and the
parent ends it when its resident memory passes the cap), so much processor time, and so many rows. The web process
never holds the file: it gets back the report with a preview of the examples, and saving a dataset reads the file
again in a child, which stores it.

The time cap counts the child's own processor time, so a file that fits on an idle computer fits on a busy one.
Every inspection starts at once; one that is still working after `inspect_small_seconds` of processor time is a big
one, and needs one of `inspect_at_once` slots: while all are taken it is stopped (SIGSTOP) until one is free. So a
small file never waits behind big ones, and big ones share the processor a few at a time.

The children are forked from a fork server that has already imported the reading code and loaded the built-in
tokenizer (backend/data/_preload.py), so an inspection starts in milliseconds instead of the seconds those imports
take. Each child does one job and exits, returning all its memory.

    result = inspect(path, kind="sft")      # Inspection: .report (a preview) or .error (a sentence), .peak_rss_mb
    result = add(path, name="chats")        # the same, and the dataset stored (result.stored)
"""
from __future__ import annotations

import dataclasses
import multiprocessing
import os
import resource
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend import limits as limits_mod
from backend import workspace
from backend.errors import DataError
from backend.words import size_text

from .report import DataReport

PREVIEW = 20  # examples kept in the report the web process gets back
POLL_SECONDS = 0.05
_PRELOAD = "backend.data._preload"
_configured = False


@dataclass
class Inspection:
    """What inspecting one file gave: a report (examples trimmed to a preview) or a sentence saying why not."""
    report: DataReport | None = None
    error: str | None = None
    columns: list[str] = field(default_factory=list)  # the file's columns when it was read but not usable
    cap: str | None = None  # "memory", "time" or "crash" when the child was ended; None otherwise
    peak_rss_mb: float = 0.0  # the inspecting process's peak resident memory
    stored: str | None = None  # add(): the dataset's name
    path: str = ""  # the file inspected
    options: dict = field(default_factory=dict)  # mapping, kind, max_length, tokenizer: to store it the same way

    def raise_error(self) -> "Inspection":
        if self.error:
            raise DataError(self.error)
        return self


@dataclass
class _Job:
    action: str  # "inspect" or "add"
    path: str
    options: dict
    env: dict  # the caller's TUNELOOP_* settings: the fork server's own may be older
    store: dict = field(default_factory=dict)  # add(): name, source, upload
    memory_mb: int = 0
    seconds: float = 0  # processor time
    wall_seconds: float = 0  # clock time while running (not while waiting for a slot)
    small_seconds: float = 0  # processor time before it needs a slot
    at_once: int = 1  # slots for big inspections


def inspect(path, *, mapping: dict | None = None, kind: str | None = None, max_length: int | None = None,
            tokenizer: bool = True, limits: limits_mod.Limits | None = None, on_wait=None) -> Inspection:
    """Inspect a file in a child process. `tokenizer`: count tokens with the built-in model's tokenizer (else
    estimate them). `on_wait()` is called if it turns out big and must wait for a slot."""
    options = dict(mapping=mapping, kind=kind, max_length=max_length, tokenizer=tokenizer)
    return _run(_job("inspect", path, options, {}, limits), on_wait)


def add(path, *, name: str | None = None, source: str | None = None, upload: str | None = None,
        mapping: dict | None = None, kind: str | None = None, max_length: int | None = None, tokenizer: bool = True,
        limits: limits_mod.Limits | None = None, on_wait=None) -> Inspection:
    """Inspect a file in a child process and store it as a dataset there (DatasetStore.add). `upload`: the app's
    copy of an uploaded file, removed with the dataset."""
    options = dict(mapping=mapping, kind=kind, max_length=max_length, tokenizer=tokenizer)
    store = dict(name=name, source=source, upload=upload)
    return _run(_job("add", path, options, store, limits), on_wait)


def warm_up() -> None:
    """Start the fork server now (it loads the tokenizer in the background), so the first upload does not wait."""
    context = _context()
    if context.get_start_method() == "forkserver":
        from multiprocessing import forkserver
        forkserver.ensure_running()


# --- the parent's side ------------------------------------------------------------------------------------------

def _job(action, path, options, store, limits) -> _Job:
    limits = limits or limits_mod.current()
    env = {k: v for k, v in os.environ.items() if k.startswith("TUNELOOP_")}
    env["TUNELOOP_HOME"] = workspace.home_setting()
    env = {**env, **_limit_env(limits)}
    return _Job(action, str(Path(path).resolve()), options, env, store, limits.inspect_memory_mb,
                limits.inspect_seconds, limits.inspect_wall_seconds, limits.inspect_small_seconds,
                limits.inspect_at_once)


def concurrency(limits: limits_mod.Limits | None = None) -> int:
    """How many inspections the web app may run at once: the big ones' slots and the small ones beside them."""
    limits = limits or limits_mod.current()
    return limits.inspect_at_once + limits.inspect_small_at_once


def _limit_env(limits: limits_mod.Limits) -> dict:
    return {f"TUNELOOP_{f.name.upper()}": str(getattr(limits, f.name)) for f in dataclasses.fields(limits)}


def _context():
    global _configured
    methods = multiprocessing.get_all_start_methods()
    if "forkserver" not in methods:  # Windows: a fresh interpreter per file (slower to start, same caps)
        return multiprocessing.get_context("spawn")
    context = multiprocessing.get_context("forkserver")
    if not _configured:
        context.set_forkserver_preload([_PRELOAD])  # ignored when the server already runs
        _configured = True
    return context


def _run(job: _Job, on_wait=None) -> Inspection:
    path = Path(job.path)
    context = _context()
    receive, send = context.Pipe(duplex=False)
    progress = context.Value("q", 0, lock=False)
    process = context.Process(target=_child, args=(send, progress, job), name="tuneloop-inspect", daemon=True)
    process.start()
    send.close()
    try:
        result = _watch(process, receive, progress, job, path, on_wait)
        result.path, result.options = job.path, dict(job.options)
        return result
    finally:
        if process.is_alive():
            process.kill()
        process.join(timeout=10)
        receive.close()


def _watch(process, receive, progress, job: _Job, path: Path, on_wait=None) -> Inspection:
    """Wait for the child's answer, ending it past the time or memory cap, and holding it stopped while it waits
    for a slot once it has turned out to be a big one."""
    cap_kb = job.memory_mb * 1024
    peak_kb = 0
    slot = _Slot(process.pid, job.at_once, on_wait)
    running, last = 0.0, time.monotonic()  # clock time while running
    try:
        while True:
            if receive.poll(POLL_SECONDS):
                try:
                    outcome, payload, child_peak_kb = receive.recv()
                except (EOFError, OSError):  # it died while answering
                    process.join(timeout=5)
                    return _ended(job, path, progress, "crash", peak_kb, process)
                return _outcome(outcome, payload, max(peak_kb, child_peak_kb), job, path, progress)
            now = time.monotonic()
            running += 0 if slot.waiting else now - last
            last = now
            rss_kb, hwm_kb = _memory_kb(process.pid)
            peak_kb = max(peak_kb, hwm_kb, rss_kb)
            if rss_kb > cap_kb:
                process.kill()
                return _ended(job, path, progress, "memory", peak_kb, process)
            processor = _processor_seconds(process.pid)
            used = running if processor is None else processor
            if used > job.seconds:
                process.kill()
                return _ended(job, path, progress, "time", peak_kb, process)
            if running > job.wall_seconds:
                process.kill()
                return _ended(job, path, progress, "clock", peak_kb, process)
            if used > job.small_seconds:
                slot.take()
            if not process.is_alive() and not receive.poll(0):
                process.join(timeout=5)
                return _ended(job, path, progress, "crash", peak_kb, process)
    finally:
        slot.give_back()


class _Slot:
    """One of `at_once` slots for big inspections (in this process), taken by the child `pid` once it needs one:
    while none is free the child is stopped, and continued when it gets one."""

    _lock = threading.Lock()
    _semaphores: dict[int, threading.Semaphore] = {}

    def __init__(self, pid: int, at_once: int, on_wait=None):
        self.pid, self.held, self.waiting, self.on_wait = pid, False, False, on_wait
        with self._lock:
            self.semaphore = self._semaphores.setdefault(at_once, threading.Semaphore(at_once))

    def take(self) -> None:
        if self.held or not hasattr(signal, "SIGSTOP"):  # Windows: no stopping; big ones all run
            return
        self.held = self.semaphore.acquire(blocking=False)
        if self.held and self.waiting:
            self._signal(signal.SIGCONT)
            self.waiting = False
        elif not self.held and not self.waiting:
            self._signal(signal.SIGSTOP)
            self.waiting = True
            if self.on_wait:
                self.on_wait()

    def give_back(self) -> None:
        if self.held:
            self.semaphore.release()
            self.held = False
        if self.waiting:  # ended while stopped: continued, so that it can die
            self._signal(signal.SIGCONT)
            self.waiting = False

    def _signal(self, number) -> None:
        try:
            os.kill(self.pid, number)
        except ProcessLookupError:
            pass


def _outcome(outcome: str, payload, peak_kb: int, job: _Job, path: Path, progress) -> Inspection:
    peak = peak_kb / 1024
    if outcome == "report":
        return Inspection(report=payload, peak_rss_mb=peak)
    if outcome == "stored":
        name, report = payload
        return Inspection(report=report, stored=name, peak_rss_mb=peak)
    if outcome == "error":
        message, columns = payload
        return Inspection(error=message, columns=columns, peak_rss_mb=peak)
    if outcome == "memory":  # the address-space cap made an allocation fail inside the child
        return _ended(job, path, progress, "memory", peak_kb, None)
    raise RuntimeError(f"unknown outcome {outcome!r} from the inspecting process")


def _ended(job: _Job, path: Path, progress, cap: str, peak_kb: int, process) -> Inspection:
    """One sentence for a child that was ended: which file, how big, which row it had reached, what to do."""
    name = path.name
    try:
        size = size_text(path.stat().st_size)
    except OSError:
        size = "size unknown"
    row = int(progress.value)
    where = f"it had read {row:,} rows" if row else "before it had read a row"
    if cap == "memory":
        message = (f"Reading {name} ({size}) needed more than {job.memory_mb:,} MB of memory, the limit ({where}). "
                   "Split it into smaller files, or raise the limit with TUNELOOP_INSPECT_MEMORY_MB.")
    elif cap == "time":
        message = (f"Reading {name} ({size}) took longer than {job.seconds:g} s, the limit (processor time; {where}). "
                   "Split it into smaller files, or raise the limit with TUNELOOP_INSPECT_SECONDS.")
    elif cap == "clock":
        cap = "time"
        message = (f"Reading {name} ({size}) went on for {job.wall_seconds:g} s, the limit in clock time, while using "
                   f"little processor time ({where}): the computer is very busy or the file cannot be read. Try again "
                   "later, or raise the limit with TUNELOOP_INSPECT_WALL_SECONDS.")
    else:
        process_end = _exit_words(process.exitcode if process is not None else None)
        message = (f"Reading {name} ({size}) stopped unexpectedly ({process_end}, {where}). "
                   "Save it again as JSONL or CSV and try again.")
    return Inspection(error=message, cap=cap, peak_rss_mb=peak_kb / 1024)


def _exit_words(code) -> str:
    if code is not None and code < 0:
        try:
            return f"the reading process was ended by {signal.Signals(-code).name}"
        except ValueError:
            return f"the reading process was ended by signal {-code}"
    return f"the reading process exited with code {code}"


def _processor_seconds(pid: int) -> float | None:
    """The processor time a process has used (user and system, all its threads), from /proc; None where there is
    none (then clock time counts instead)."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS


_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") and "SC_CLK_TCK" in os.sysconf_names else 100


def _memory_kb(pid: int) -> tuple[int, int]:
    """(resident, peak resident) memory of a process in kB, from /proc; (0, 0) where there is none."""
    try:
        with open(f"/proc/{pid}/status") as status:
            values = dict(line.split(":", 1) for line in status if line.startswith(("VmRSS", "VmHWM")))
    except OSError:
        return 0, 0
    return (int(values.get("VmRSS", "0 kB").split()[0]), int(values.get("VmHWM", "0 kB").split()[0]))


# --- the child's side -------------------------------------------------------------------------------------------

def _child(send, progress, job: _Job) -> None:
    """One job in a fresh child: apply the caller's settings and the caps, do it, send (outcome, payload, peak)."""
    for key in [k for k in os.environ if k.startswith("TUNELOOP_")]:
        del os.environ[key]
    os.environ.update(job.env)
    # Arrow's own allocator reserves far more address space than it uses, which the address-space cap would
    # count; the system allocator's use is what the cap means.
    os.environ["ARROW_DEFAULT_MEMORY_POOL"] = "system"
    from . import caps
    caps.share_progress(progress)
    _cap_resources(job)
    try:
        outcome, payload = _do(job)
    except MemoryError:
        outcome, payload = "memory", None
    except RecursionError:
        outcome, payload = "error", (f"{Path(job.path).name} is nested too deeply to read. Save it as flat JSONL "
                                     "(one example per line) or CSV.", [])
    peak_kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        send.send((outcome, payload, peak_kb))
    except MemoryError:
        send.send(("memory", None, peak_kb))


def _cap_resources(job: _Job) -> None:
    """The address space may grow by the memory cap beyond what the loaded libraries already reserve (the parent
    also watches resident memory); CPU time is capped too, in case the parent is gone."""
    try:
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        reserved = _address_space_bytes()
        limit = reserved + job.memory_mb * 1024 * 1024
        if hard == resource.RLIM_INFINITY or limit < hard:
            resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        cpu = int(job.seconds * 2) + 10
        soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
        if hard == resource.RLIM_INFINITY or cpu < hard:
            resource.setrlimit(resource.RLIMIT_CPU, (cpu, hard))
    except (ValueError, OSError):  # a system that refuses: the parent's watch still holds
        pass


def _address_space_bytes() -> int:
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmSize"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 0


def _do(job: _Job):
    from backend.errors import DataError as _DataError

    from .pipeline import inspect_file
    from .read import read_file

    options = dict(job.options)
    tokenizer = None
    if options.pop("tokenizer"):
        from backend.models.loading import load_tokenizer
        tokenizer = load_tokenizer()  # already loaded in the fork server
    try:
        read = read_file(job.path)
    except _DataError as exc:
        return "error", (str(exc), [])
    try:
        report = inspect_file(job.path, read=read, tokenizer=tokenizer, **options)
    except _DataError as exc:
        return "error", (str(exc), list(read.columns))
    del read
    if job.action == "add":
        from backend.db import connect

        from .store import DatasetStore
        try:
            name = DatasetStore(connect()).add(report, **job.store)
        except _DataError as exc:
            return "error", (str(exc), list(report.columns))
        return "stored", (name, preview(report))
    return "report", preview(report)


def preview(report: DataReport) -> DataReport:
    """The report with its examples trimmed to the first PREVIEW: all the numbers, little of the data."""
    return dataclasses.replace(report, examples=report.examples[:PREVIEW],
                               example_rows=report.example_rows[:PREVIEW], lengths=[], preview_only=True)
