"""Peak memory and time of inspecting each hostile file (tests/faults/bombs.py) under the caps the fault tests use.

    TUNELOOP_MODEL_CACHE=/work/cache/models .venv/bin/python benchmarks/bad_files.py

Prints one line per file: its size on disk, how the inspection ended (a report, a sentence, or a cap), the
inspecting process's peak resident memory (from /proc and getrusage, as sandbox.inspect reports it) and the wall time
of the inspection. The tests hold the memory under the cap; the times are printed here, not asserted there.
"""
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.data import sandbox  # noqa: E402
from backend.limits import Limits  # noqa: E402
from tests.faults import bombs  # noqa: E402

LIMITS = Limits(inspect_memory_mb=1500, inspect_seconds=90, inspect_unpacked_mb=64)  # as in test_hostile_files.py

CASES = [
    ("normal JSONL (30 rows)", bombs.normal_jsonl),
    ("xlsx dimension bomb", bombs.xlsx_dimension_bomb),
    ("Parquet repeat bomb, 1M rows", lambda d: bombs.parquet_repeat_bomb(d, rows=1_000_000)),
    ("Parquet bomb, 200k x 20 kB", lambda d: bombs.parquet_repeat_bomb(d, rows=200_000, text="x" * 20_000)),
    ("xlsx zip bomb (96 MB unpacked)", lambda d: bombs.xlsx_zip_bomb(d, unpacked_mb=96)),
    ("199 MB of tiny JSONL rows", lambda d: bombs.tiny_rows_jsonl(d, megabytes=199)),
    ("0-byte file", bombs.empty),
    ("binary", bombs.binary),
    ("gzip", bombs.gzipped),
    ("PDF", bombs.pdf),
    ("deeply nested JSON", bombs.deeply_nested_json),
    ("UTF-16", bombs.utf16),
    ("cp1252", bombs.cp1252),
]


def main():
    os.environ.setdefault("TUNELOOP_HOME", tempfile.mkdtemp(prefix="tuneloop-bench-"))
    sandbox.warm_up()
    with tempfile.TemporaryDirectory() as folder:
        sandbox.inspect(bombs.normal_jsonl(Path(folder), "warm.jsonl"), limits=LIMITS)  # the fork server is up
        print(f"{'file':34} {'size':>10} {'ended':>8} {'peak RSS':>10} {'time':>8}")
        for number, (name, make) in enumerate(CASES):
            case = Path(folder) / str(number)
            case.mkdir()
            path = make(case)
            start = time.monotonic()
            result = sandbox.inspect(path, limits=LIMITS)
            seconds = time.monotonic() - start
            ended = "report" if result.report is not None else (result.cap or "refused")
            size = path.stat().st_size
            print(f"{name:34} {_size(size):>10} {ended:>8} {result.peak_rss_mb:>7.0f} MB {seconds:>6.1f} s", flush=True)
            path.unlink()


def _size(n: int) -> str:
    return f"{n / 1024 / 1024:.1f} MB" if n >= 1024 * 1024 else f"{n / 1024:.1f} kB"


if __name__ == "__main__":
    main()
