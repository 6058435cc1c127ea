"""Hostile and unlucky data files, inspected the way the app and the command line inspect them: in a child process
under the memory, time and row caps of backend/limits.py. Each file ends in a report or in one sentence that names
the file and its row or size; each test reads the inspecting process's peak resident memory (measured from /proc and
getrusage) and holds it under the memory cap, and holds the time under the time cap (the child is not ended by it).
"""
import contextlib
import dataclasses
import json
import signal
import threading
import time

import psutil
import pytest

from backend.data import sandbox
from backend.limits import Limits
from backend.words import size_text
from tests.faults import bombs

# Tighter than the defaults, so a bomb that got past a cap would show here quickly.
LIMITS = Limits(inspect_memory_mb=1500, inspect_seconds=90, inspect_unpacked_mb=64)


@pytest.fixture(scope="module", autouse=True)
def warm_inspector(tmp_path_factory, model_cache):
    """The fork server loads the tokenizer once (about 20 s here); every test after it starts at once."""
    sandbox.warm_up()
    result = sandbox.inspect(bombs.normal_jsonl(tmp_path_factory.mktemp("warm")), limits=LIMITS)
    assert result.report is not None, result.error


def bounded(result, cap=None):
    """The inspection ended as expected (by `cap`, or in its own words when None), and its process stayed under
    the memory cap."""
    assert result.cap == cap, result.error
    assert 0 < result.peak_rss_mb < LIMITS.inspect_memory_mb, result.peak_rss_mb
    return result


def test_xlsx_dimension_bomb_reads_its_real_rows_only(tmp_path):
    path = bombs.xlsx_dimension_bomb(tmp_path)
    assert path.stat().st_size < 10_000  # a few kB that claim 17 billion cells
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.report.rows == 3 and result.report.valid_rows == 3
    assert result.report.columns == ["prompt", "completion"]


def test_parquet_repeat_bomb_is_refused_by_its_declared_row_count(tmp_path):
    path = bombs.parquet_repeat_bomb(tmp_path, rows=1_000_000)
    assert path.stat().st_size < 20_000  # kilobytes that stand for a million rows
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.error == (f"{path.name} holds 1,000,000 rows; the limit is 250,000 rows. Split it into smaller "
                            "files, or raise the limit with TUNELOOP_INSPECT_ROWS.")


def test_parquet_bomb_under_the_row_cap_is_ended_by_the_memory_cap(tmp_path):
    """200,000 rows (under the row cap) of one 20 kB text: 4 GB once unpacked, from a 2 kB file. The decoded-size cap
    stops it first (test_parquet_under_the_row_cap_that_decodes_past_the_size_cap_is_stopped_there); raised out of
    the way here, the memory cap still ends it."""
    path = bombs.parquet_repeat_bomb(tmp_path, rows=200_000, text="x" * 20_000)
    limits = dataclasses.replace(LIMITS, inspect_decoded_mb=100_000)
    result = bounded(sandbox.inspect(path, limits=limits), cap="memory")
    assert result.error.startswith(f"Reading {path.name} ({size_text(path.stat().st_size)}) needed more than 1,500 MB of "
                                   "memory, the limit (it had read ")
    assert "TUNELOOP_INSPECT_MEMORY_MB" in result.error


def test_parquet_under_the_row_cap_that_decodes_past_the_size_cap_is_stopped_there(tmp_path):
    """200,000 rows of one dictionary-encoded 2,000-character text: 400 MB once decoded, from a 2 kB file. Read
    whole, it held an inspection slot and most of the memory cap for a report; it is stopped at the decoded-size
    cap instead, in one sentence."""
    path = bombs.parquet_repeat_bomb(tmp_path, rows=200_000, text="x" * 2_000)
    assert path.stat().st_size < 100_000
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.error is not None and result.report is None
    assert result.error.startswith(f"{path.name} is {size_text(path.stat().st_size)} but its columns decode to more "
                                   "than 256 MB, the limit "
                                   "(reading stopped at row ")
    assert "TUNELOOP_INSPECT_DECODED_MB" in result.error


def test_xlsx_zip_bomb_is_refused_before_it_is_unpacked(tmp_path):
    path = bombs.xlsx_zip_bomb(tmp_path, unpacked_mb=96)
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.error.startswith(f"{path.name} is {size_text(path.stat().st_size)} but unpacks to 96.")
    assert "over the 64.0 MB limit" in result.error


def test_200_mb_of_tiny_jsonl_rows_stops_at_the_row_cap(tmp_path):
    path = bombs.tiny_rows_jsonl(tmp_path, megabytes=199)
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.error == (f"{path.name} has more than 250,000 rows (reading stopped at row 250,001); the limit is "
                            "250,000 rows. Split it into smaller files, or raise the limit with TUNELOOP_INSPECT_ROWS.")


def test_a_file_that_takes_too_long_is_ended_by_the_time_cap(tmp_path):
    path = tmp_path / "slow.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Question {i}?", "completion": f"Answer {i}."}) + "\n"
                            for i in range(100_000)))
    result = sandbox.inspect(path, limits=Limits(inspect_memory_mb=1500, inspect_seconds=2))
    assert result.cap == "time" and result.peak_rss_mb < 1500
    assert result.error.startswith(f"Reading {path.name} (") and "took longer than 2 s, the limit" in result.error
    assert "TUNELOOP_INSPECT_SECONDS" in result.error


def test_time_the_machine_spends_on_others_is_not_counted_against_a_file(tmp_path):
    """The time cap counts the inspecting process's own processor time: a file that needs a second of it is read
    even when the process waits longer than the cap for the processor (a busy machine; here it is stopped)."""
    path = tmp_path / "ordinary.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}."}) + "\n" for i in range(10_000)))
    cap = 5
    results = []
    thread = threading.Thread(target=lambda: results.append(
        sandbox.inspect(path, limits=Limits(inspect_memory_mb=1500, inspect_seconds=cap))))
    before = set(_inspecting())
    thread.start()
    child = _wait_for_new_child(before)
    child.send_signal(signal.SIGSTOP)
    stopped = time.monotonic()
    while time.monotonic() < stopped + cap + 1 and thread.is_alive():  # the cap passes while it waits
        time.sleep(0.05)
    with contextlib.suppress(psutil.NoSuchProcess):  # ended by a cap that counted the wait
        child.send_signal(signal.SIGCONT)
    thread.join(timeout=300)
    assert results[0].error is None, results[0].error
    assert results[0].error is None and results[0].report.valid_rows == 10_000


def test_a_big_inspection_waits_stopped_for_a_slot_and_says_so(tmp_path):
    """With one slot for big inspections, the second of two files that turn out big (past inspect_small_seconds of
    processor time) waits, stopped, until the first is done, says that it waits, and is then read whole."""
    path = tmp_path / "ordinary.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}."}) + "\n" for i in range(10_000)))
    limits = Limits(inspect_memory_mb=1500, inspect_at_once=1, inspect_small_seconds=0.3)
    waited, results = [], {}

    def inspect(i):
        results[i] = sandbox.inspect(path, limits=limits, on_wait=lambda: waited.append(i))
    threads = [threading.Thread(target=inspect, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=300)
    assert [results[i].error for i in range(2)] == [None, None]
    assert [results[i].report.valid_rows for i in range(2)] == [10_000, 10_000]
    assert len(waited) == 1


def test_a_reader_that_dies_is_one_sentence(tmp_path):
    """A reading process killed from outside (a crash in a C library looks the same)."""
    path = tmp_path / "slow.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}."}) + "\n" for i in range(100_000)))
    results = []
    thread = threading.Thread(target=lambda: results.append(sandbox.inspect(path, limits=LIMITS)))
    before = set(_inspecting())
    thread.start()
    child = _wait_for_new_child(before)
    child.send_signal(signal.SIGKILL)
    thread.join(timeout=60)
    result = results[0]
    assert result.cap == "crash"
    assert result.error.startswith(f"Reading {path.name} (") and "ended by SIGKILL" in result.error


@pytest.mark.parametrize("make,expected", [
    (bombs.empty, "empty.jsonl is empty (0 bytes). Pick the file that holds your examples."),
    (bombs.binary, "data.jsonl holds binary data, not text."),
    (bombs.gzipped, "chats.jsonl is a gzip-compressed file, not a text data file. Unpack it first."),
    (bombs.pdf, "examples.csv is a PDF document, not a text data file."),
    (bombs.deeply_nested_json, "nested.json is not usable JSON: it is nested too deeply."),
])
def test_a_file_that_is_not_data_is_refused_in_one_sentence(tmp_path, make, expected):
    result = bounded(sandbox.inspect(make(tmp_path), limits=LIMITS))
    assert result.error.startswith(expected)


@pytest.mark.parametrize("make,encoding", [(bombs.utf16, "utf-16"), (bombs.cp1252, "cp1252")])
def test_utf16_and_cp1252_files_are_read(tmp_path, make, encoding):
    result = bounded(sandbox.inspect(make(tmp_path), limits=LIMITS))
    report = result.report
    assert report.valid_rows == 30 and report.encoding == encoding
    assert report.examples[0]["messages"][0]["content"] in ("Où est 0?", "Café 0?")


def test_the_report_comes_back_as_a_preview_that_cannot_be_stored(tmp_path):
    from backend.data import DatasetStore
    from backend.db import connect
    path = tmp_path / "many.jsonl"
    path.write_text("".join(json.dumps({"prompt": f"Q{i}?", "completion": f"A{i}."}) + "\n" for i in range(500)))
    result = bounded(sandbox.inspect(path, limits=LIMITS))
    assert result.report.valid_rows == 500 and len(result.report.examples) == sandbox.PREVIEW
    with pytest.raises(ValueError, match="preview"):
        DatasetStore(connect()).add(result.report)
    stored = sandbox.add(path, name="many", limits=LIMITS).raise_error()  # read again and stored in the child
    assert stored.stored == "many" and len(DatasetStore(connect()).rows("many")) == 500


def test_the_web_process_never_reads_the_file(tmp_path, monkeypatch, home):
    """The Data tab's check and save work with every reader of this process broken: the file is read in children."""
    from backend.data import read, tables
    from backend.jobs.runner import JobRunner
    from ui import data_tab
    from ui.common import Context

    def refuse(*args, **kwargs):
        raise AssertionError("the web process read a data file")

    for module, name in ((read, "read_file"), (read, "decode"), (tables, "read_csv"), (tables, "read_parquet"),
                         (tables, "read_xlsx")):
        monkeypatch.setattr(module, name, refuse)
    ctx = Context(JobRunner())
    path = bombs.normal_jsonl(tmp_path)
    shown = data_tab.on_upload(ctx, {"upload": str(path), "kind": "auto", "max_length": 512,
                                     "progress": lambda *a, **k: None})
    assert shown[0].report.valid_rows == 30
    saved = data_tab.save_dataset(ctx, {"checked": shown[0], "name": "normal"})
    assert "Saved as **normal**" in saved[0]
    refused = data_tab.on_upload(ctx, {"upload": str(bombs.gzipped(tmp_path)), "kind": "auto", "max_length": 512,
                                       "progress": lambda *a, **k: None})
    assert refused[0] is None and "gzip-compressed" in refused[1]


def _inspecting() -> list:
    """The inspecting children alive now (children of the fork server)."""
    from multiprocessing import forkserver
    pid = forkserver._forkserver._forkserver_pid
    return psutil.Process(pid).children() if pid else []


def _wait_for_new_child(before: set):
    import time
    deadline = time.time() + 60
    while time.time() < deadline:
        new = [p for p in _inspecting() if p not in before]
        if new:
            return new[0]
        time.sleep(0.02)
    raise AssertionError("no inspecting process started")
