"""GGUF export of the built-in model (SmolLM2-135M-Instruct) in each format: file size, time to write and
check it, and agreement with the merged (float32) model on the five check questions.

    TUNELOOP_MODEL_CACHE=/work/cache/models python benchmarks/export_formats.py [--formats f16 q8_0 q4_0]

Prints a markdown table (for docs/benchmarks.md) with the machine, date and load.
"""
import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.errors import ExportCheckFailed  # noqa: E402
from backend.export.bundle import export_gguf  # noqa: E402
from backend.export.gguf_check import reference  # noqa: E402
from backend.export.gguf import QUANTS, estimate_sizes  # noqa: E402
from backend.models.loading import resolve_model  # noqa: E402


def load() -> str:
    return Path("/proc/loadavg").read_text().split()[:3].__str__() if Path("/proc/loadavg").exists() else "?"


def cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "?"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--formats", nargs="+", default=list(QUANTS), choices=QUANTS)
    args = parser.parse_args()
    folder = resolve_model(None)
    print(f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {cpu()}, {os.cpu_count()} cores, load (1/5/15 min) {load()}")
    estimates = estimate_sizes(folder, args.formats)
    started = time.monotonic()
    ref = reference(folder)
    ref_seconds = time.monotonic() - started
    print(f"merged model's answers ({ref_seconds:.0f} s, largest |logit| {ref.logit_scale:.1f}): {ref.texts}")
    rows = []
    work = Path(tempfile.mkdtemp(prefix="export-formats-"))
    try:
        for quant in args.formats:
            began = time.monotonic()
            try:
                result = export_gguf(folder, work / quant, quant, "SmolLM2-135M-Instruct", ref=ref)
                c, size = result.check, result.size_bytes
            except ExportCheckFailed as refused:  # measured all the same: the table shows the refusal
                c, size = refused.result, 0
            seconds = time.monotonic() - began
            rows.append((quant, size, estimates[quant], seconds, c))
            print(f"{quant}: {c.summary()} ({seconds:.0f} s)")
            for question, merged, mine in c.answers:
                if merged != mine:
                    print(f"   {question!r}: merged {merged!r} / {quant} {mine!r}")
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(f"load after: {load()}")
    print()
    print("| format | file size | estimated beforehand | write + check | identical answers (of 5) | largest logit difference | verdict |")
    print("|---|---|---|---|---|---|---|")
    for quant, size, estimate, seconds, c in rows:
        ties = f" (+{c.near_ties} near-tie)" if c.near_ties else ""
        print(f"| {quant} | {size / 1e6:.1f} MB{'' if size else ' (not kept)'} | {estimate / 1e6:.1f} MB | {seconds:.0f} s | {c.agreeing}{ties} | "
              f"{c.max_logit_diff:.4f} | {'passed' if c.passed else 'refused'} |")
    print(f"\nThe merged model's own answers (the reference, computed once for all formats): {ref_seconds:.0f} s.")


if __name__ == "__main__":
    main()
