"""Faults injected into every Python process that starts with this folder on PYTHONPATH: the runner's training
workers included, which the tests cannot reach otherwise. Python imports `sitecustomize` at start-up; this one does
nothing unless TUNELOOP_FAULT names a fault:

    TUNELOOP_FAULT=enospc:<text>   the first file opened for writing whose path contains <text> fails with ENOSPC,
                                   and so does every later write under TUNELOOP_HOME: the disk stays full
    TUNELOOP_FAULT=hang:<text>     a process that opens such a file for writing stops there for good (no step, no log
                                   line), and ignores SIGTERM

Self-contained on purpose: it runs before the process knows where the project is.
"""
import os


def _install(spec: str) -> None:
    import errno
    import signal
    import sys
    import time

    kind, _, text = spec.partition(":")
    home = os.path.abspath(os.environ.get("TUNELOOP_HOME", "workspace"))
    full = []

    def writing(args) -> str | None:
        if not args or not isinstance(args[0], (str, bytes, os.PathLike)):
            return None
        path = os.fsdecode(os.fspath(args[0]))
        mode, flags = (args[1] if len(args) > 1 else None), (args[2] if len(args) > 2 else 0)
        if isinstance(mode, str):
            return path if any(c in mode for c in "wax+") else None
        return path if isinstance(flags, int) and flags & (os.O_WRONLY | os.O_RDWR | os.O_CREAT) else None

    def hook(event, args):
        if event != "open":
            return
        path = writing(args)
        if path is None:
            return
        if kind == "enospc":
            if text in path:
                full.append(path)
            if full and os.path.abspath(path).startswith(home):
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        elif kind == "hang" and text in path:
            try:
                signal.signal(signal.SIGTERM, signal.SIG_IGN)
            except ValueError:  # not the main thread: SIGTERM ends it then
                pass
            while True:
                time.sleep(3600)

    sys.addaudithook(hook)


if os.environ.get("TUNELOOP_FAULT"):
    _install(os.environ["TUNELOOP_FAULT"])
