"""Under each bomb, a second person's normal upload in the served app is answered within 5 seconds.

The app is served on a free port; two clients use the Data tab's upload event through Gradio's queue, as two
browsers would. One uploads a bomb; while its inspection runs, the other uploads a normal file. The 5 s is a stated
requirement of the issue, checked with a deadline (wait_until fails past it), not a speed measurement.
"""
import json
import socket
import time
from pathlib import Path

import psutil
import pytest
from gradio_client import Client, handle_file

from backend.jobs.runner import JobRunner
from tests.faults import bombs
from ui.app import build_app, launch

SECOND_USER_DEADLINE = 5.0  # seconds: the bound on the second upload's answer


def wait_until(predicate, timeout: float, what: str):
    """A deadline: returns once `predicate()` is true, fails if it is not within `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"not within the {timeout:g} s deadline: {what}")
        time.sleep(0.02)


SLOW_FILE_CAP = 8  # seconds: the time cap while the slow file is read (longer than the second user's 5 s)


def slow_file(folder: Path) -> Path:
    """A legitimate file far too big to inspect within SLOW_FILE_CAP on any machine: 240,000 rows (under the row
    cap) of about 40 words each. A 100,000-row file of two-word rows took 20 s on one machine and less on another."""
    path = folder / "slow.jsonl"
    words = " ".join(f"word{k}" for k in range(20))
    path.write_text("".join(json.dumps({"prompt": f"Question {i}: {words}?", "completion": f"Answer {i}: {words}."})
                            + "\n" for i in range(240_000)))
    return path


BOMBS = {
    "xlsx_dimension_bomb": (bombs.xlsx_dimension_bomb, "### Found"),
    "parquet_repeat_bomb": (bombs.parquet_repeat_bomb, "holds 1,000,000 rows; the limit is 250,000 rows"),
    "parquet_decoded_bomb": (lambda d: bombs.parquet_repeat_bomb(d, rows=200_000, text="x" * 20_000),
                             "its columns decode to more than 256 MB, the limit"),
    "xlsx_zip_bomb": (bombs.xlsx_zip_bomb, "over the 64.0 MB limit"),
    "tiny_rows_jsonl_200mb": (bombs.tiny_rows_jsonl, "has more than 250,000 rows"),
    "deeply_nested_json": (bombs.deeply_nested_json, "nested too deeply"),
    "slow_file": (slow_file, f"took longer than {SLOW_FILE_CAP} s, the limit"),
}


@pytest.fixture
def app(home, monkeypatch, model_cache):
    monkeypatch.setenv("TUNELOOP_INSPECT_MEMORY_MB", "1500")
    monkeypatch.setenv("TUNELOOP_INSPECT_UNPACKED_MB", "64")
    monkeypatch.setenv("TUNELOOP_INSPECT_SECONDS", "20")
    runner = JobRunner()
    demo = build_app(runner)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    launch(demo, port=port, prevent_thread_lock=True, quiet=True)
    yield demo, f"http://127.0.0.1:{port}"
    demo.close(verbose=False)
    runner.close()


def upload_event(demo):
    """The Data tab's upload event: its id in Gradio's API, and a function making its arguments for a file."""
    upload = next(b for b in demo.blocks.values() if getattr(b, "elem_id", None) == "tl-upload")
    fn = next(f for f in demo.fns.values() if any(t[0] == upload._id and t[1] == "upload" for t in f.targets))

    def arguments(path: Path) -> list:
        return [handle_file(str(path)) if c is upload else ("auto" if type(c).__name__ == "Radio" else 512)
                for c in fn.inputs]
    return fn._id, arguments


def inspecting() -> set:
    from multiprocessing import forkserver
    pid = forkserver._forkserver._forkserver_pid
    return {p.pid for p in psutil.Process(pid).children()} if pid else set()


@pytest.mark.parametrize("bomb", list(BOMBS))
def test_a_second_upload_is_answered_within_5_s_under_each_bomb(app, bomb, tmp_path, monkeypatch):
    demo, url = app
    fn_index, arguments = upload_event(demo)
    normal = bombs.normal_jsonl(tmp_path)
    first, second = Client(url, verbose=False), Client(url, verbose=False)
    warm = second.submit(*arguments(normal), fn_index=fn_index).result(timeout=300)  # the tokenizer, loaded once
    assert warm[0].startswith("### Found")

    make, expected = BOMBS[bomb]
    if bomb == "slow_file":
        monkeypatch.setenv("TUNELOOP_INSPECT_SECONDS", str(SLOW_FILE_CAP))
    before = inspecting()
    hostile = first.submit(*arguments(make(tmp_path)), fn_index=fn_index)
    # The bomb is being inspected (or was already refused) before the second person uploads.
    wait_until(lambda: hostile.done() or inspecting() - before, timeout=300, what="the bomb's inspection to start")
    normal_job = second.submit(*arguments(normal), fn_index=fn_index)
    wait_until(normal_job.done, timeout=SECOND_USER_DEADLINE, what=f"the second upload's answer under {bomb}")
    assert normal_job.result()[0].startswith("### Found: supervised fine-tuning")
    if bomb == "slow_file":  # runs until its time cap: the answer above came while it was being read
        assert not hostile.done()

    answer = hostile.result(timeout=300)[0]
    assert expected in answer


def test_a_small_upload_is_answered_while_two_big_ones_hold_both_slots(app, tmp_path):
    """Two people's big files take both slots for big inspections (inspect_at_once); a third person's small file is
    answered while both are still being read, instead of waiting for one of them to end (48.8 s, seen)."""
    demo, url = app
    fn_index, arguments = upload_event(demo)
    normal = bombs.normal_jsonl(tmp_path)
    clients = [Client(url, verbose=False) for _ in range(3)]
    warm = clients[2].submit(*arguments(normal), fn_index=fn_index).result(timeout=300)
    assert warm[0].startswith("### Found")

    big = slow_file(tmp_path)  # about 48 s of processor time to read whole: longer than the 20 s cap
    before = inspecting()
    jobs = [client.submit(*arguments(big), fn_index=fn_index) for client in clients[:2]]

    def big_ones():  # being read, and past inspect_small_seconds (2 s) of processor time
        children = [psutil.Process(pid) for pid in inspecting() - before]
        return [c for c in children if sum(c.cpu_times()[:2]) > 2.5]
    wait_until(lambda: len(big_ones()) >= 2 or any(job.done() for job in jobs), timeout=300,
               what="two big inspections")
    assert not any(job.done() for job in jobs)
    small = clients[2].submit(*arguments(normal), fn_index=fn_index)
    wait_until(lambda: small.done() or any(job.done() for job in jobs), timeout=300, what="an answer")
    assert small.done() and not any(job.done() for job in jobs), "the small file waited for a big one to end"
    assert small.result()[0].startswith("### Found: supervised fine-tuning")
    for child in big_ones():  # not read to their end: that costs the machine a minute and a half
        child.kill()
    for job in jobs:
        assert "stopped unexpectedly" in job.result(timeout=300)[0]
