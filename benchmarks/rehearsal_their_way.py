"""Benchmark: what answering the rehearsal in the examples' way costs before a run's first step
(backend/evaluation/rehearsal.in_their_way), against making the plain everyday answers themselves, in the same run.

For a task of benchmarks/tasks/ (format_json by default: the one whose examples frame every answer), the built-in model
is loaded as a run loads it on this machine; the plain answers to the default rehearsal's prompts are generated (what
a run does when they are not cached), then answered again in the examples' way for each seed. Prints the seconds, how
many answers came out in the examples' way, and the ratio to the plain answers' seconds, with the matrix-product peak
before and after.

Command: python benchmarks/rehearsal_their_way.py [--task format_json] [--seeds 42 7 3]"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", default="format_json")
    parser.add_argument("--seeds", type=int, nargs="+", default=[42, 7, 3])
    args = parser.parse_args(argv)
    from backend.config import RunConfig
    from backend.evaluation import rehearsal
    from backend.evaluation.rehearsal_prompts import REHEARSAL_PROMPTS
    from backend.models.loading import detect_hardware, load_model, load_tokenizer, resolve_model
    from benchmarks.tasks import build_rows, load_tasks, peak_now

    print(peak_now(), flush=True)
    (task,) = load_tasks([args.task])
    examples = build_rows(task)
    hardware = detect_hardware()
    path = str(resolve_model(None))
    model, tokenizer = load_model(path, hardware.quantization("auto"), hardware), load_tokenizer(path)
    prompts = REHEARSAL_PROMPTS[:RunConfig().rehearsal]
    began = time.monotonic()
    answers = rehearsal.generate_answers(model, tokenizer, prompts)
    plain_seconds = time.monotonic() - began
    rows = [{"messages": [{"role": "user", "content": p}, {"role": "assistant", "content": a}]}
            for p, a in zip(prompts, answers) if rehearsal.right(p, a)]
    print(f"plain answers: {len(rows)} of {len(prompts)} rehearsed, {plain_seconds:.1f} s", flush=True)
    for seed in args.seeds:
        began = time.monotonic()
        _, count = rehearsal.in_their_way(model, tokenizer, rows, examples, seed)
        seconds = time.monotonic() - began
        print(f"{args.task} seed {seed}: {count} of {len(rows)} in the examples' way, {seconds:.1f} s "
              f"({seconds / plain_seconds:.2f}x the plain answers)", flush=True)
    print(f"at the end: {peak_now()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
