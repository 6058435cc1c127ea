"""Processes by identity, not by pid alone: a pid is reused once its process has ended, so a training worker is
known by its pid and the moment it started. Signals go to a worker's whole process group (a launcher's children
with it)."""
from __future__ import annotations

import os
import signal


def start_time(pid: int) -> float | None:
    """When a process started, in seconds since the computer booted (field 22 of /proc/PID/stat); None when there is
    no such process, or no /proc to ask."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return int(fields[19]) / os.sysconf("SC_CLK_TCK")


def alive(pid: int | None, started: float | None = None) -> bool:
    """True while the process `pid` runs and, when `started` is given, is the one that started then (a zombie, dead
    but not yet reaped, counts as gone)."""
    if not pid:
        return False
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return False
    except OSError:  # no /proc: ask the process itself (the start time cannot be checked)
        try:
            os.kill(pid, 0)
        except OSError:
            return False
        return True
    if fields[0] == "Z":
        return False
    return started is None or abs(int(fields[19]) / os.sysconf("SC_CLK_TCK") - started) < 0.05


def signal_group(pid: int, sig: int) -> bool:
    """Send `sig` to the process group `pid` leads (the worker and whatever it started), or to the process alone when
    it leads none. Never to this process's own group. False when there was nothing left to signal."""
    try:
        group = os.getpgid(pid)
    except (ProcessLookupError, OSError):
        return False
    try:
        if group == pid and group != os.getpgid(0):
            os.killpg(group, sig)
        else:
            os.kill(pid, sig)
    except ProcessLookupError:
        return False
    return True


def own_process_group() -> None:
    """Make this process the leader of a new session and process group (called first thing in the worker): the
    runner can then end it with everything it started, and a Ctrl-C in the terminal goes to the app, which asks the
    run to save and stop, instead of killing the worker mid-step."""
    try:
        os.setsid()
    except OSError:  # already a group leader
        pass


def signal_name(sig: int) -> str:
    try:
        return signal.Signals(sig).name
    except ValueError:
        return str(sig)


def oom_kills() -> int | None:
    """How many processes the kernel's out-of-memory killer has ended since boot, on the whole computer (every
    cgroup's too): line oom_kill of /proc/vmstat. None where it cannot be read."""
    try:
        with open("/proc/vmstat") as vmstat:
            for line in vmstat:
                if line.startswith("oom_kill "):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return None
