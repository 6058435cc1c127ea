"""kill -9 at a chosen moment: a process runs a function with an audit hook (sys.addaudithook) that sends SIGKILL to
itself at the first matching file event, e.g. just as the Trainer opens a checkpoint's trainer_state.json. The process
dies there as it would from `kill -9` or a power cut, with no chance to clean up: deterministic, unlike a timed kill.
"""
import multiprocessing
import os
import signal
import sys
from functools import partial


def opening(*parts: str):
    """Matches the opening of a file for writing whose path contains every one of `parts`, in order."""
    return partial(_opening, parts)


def _opening(parts, event, args) -> bool:
    if event != "open" or not args or not isinstance(args[0], (str, os.PathLike)):
        return False
    path, mode = os.fspath(args[0]), args[1] if len(args) > 1 else "r"
    if not isinstance(path, str) or not isinstance(mode, str) or not any(c in mode for c in "wax+"):
        return False
    at = 0
    for part in parts:
        at = path.find(part, at)
        if at < 0:
            return False
        at += len(part)
    return True


def renaming_to(name: str):
    """Matches os.rename/os.replace of anything onto a path ending in `name`."""
    return partial(_renaming_to, name)


def _renaming_to(name, event, args) -> bool:
    return event == "os.rename" and len(args) > 1 and os.fspath(args[1]).endswith(name)


def die_at(matches, target, *args):
    """Run target(*args); SIGKILL this process at the first audit event `matches(event, args)` accepts."""
    def hook(event, event_args):
        if matches(event, event_args):
            os.kill(os.getpid(), signal.SIGKILL)
    sys.addaudithook(hook)
    target(*args)


def run_until_killed(matches, target, *args, timeout: float = 600) -> int:
    """Run target(*args) in a fresh process that kills itself at `matches`; its exit code (-9 when it did)."""
    process = multiprocessing.get_context("spawn").Process(target=die_at, args=(matches, target, *args))
    process.start()
    process.join(timeout)
    if process.is_alive():
        process.kill()
        process.join()
        raise AssertionError("the process did not reach the moment it was to be killed at")
    return process.exitcode
