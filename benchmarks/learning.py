"""Benchmark: does the quick preset's DPO and KTO raise the chosen-over-rejected margin on held-out pairs of the
real embedded model, and keep everyday answers?

These were learning tests (tests/test_learning.py) until each `make test` trained the real model three times;
the test module now trains it once (SFT). This script runs the same checks and prints the figures: per method,
the mean held-out margin (log p(chosen) - log p(rejected)) of base and tuned model, how many of the 12 held-out
pairs rose, the everyday answers kept, and the time. The checks the tests made are printed as PASS or MISS:
mean margin up by more than 1.0, at least 90% of the pairs raised, at least 80% of the everyday answers
the base model got right kept.
Run: .venv/bin/python benchmarks/learning.py [dpo] [kto]   (a temporary workspace; the model cache is
TUNELOOP_MODEL_CACHE's or the default)."""
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.conftest import model_with_adapter, write_jsonl  # noqa: E402
from tests.preference_data import HELD_OUT_TOPICS, TRAIN_TOPICS, dpo_rows, held_out_pairs, kto_rows  # noqa: E402
from tests.scoring import preference_margins  # noqa: E402

ROWS = {"dpo": dpo_rows, "kto": kto_rows}


def held_out_margin(adapter=None) -> list[float]:
    model, tokenizer = model_with_adapter(None, adapter)
    return preference_margins(model, tokenizer, held_out_pairs())


def main(methods: list[str]) -> int:
    assert not set(TRAIN_TOPICS) & set(HELD_OUT_TOPICS)
    os.environ["TUNELOOP_HOME"] = tempfile.mkdtemp(prefix="learning-")
    from backend import workspace
    base = held_out_margin()
    mean = lambda values: sum(values) / len(values)
    for method in methods:
        data = write_jsonl(Path(os.environ["TUNELOOP_HOME"]) / f"{method}.jsonl", ROWS[method](TRAIN_TOPICS))
        started = time.time()
        result = subprocess.run([sys.executable, "app.py", "train", "--data", str(data), "--preset", "quick", "--json"],
                                cwd=ROOT, capture_output=True, text=True)
        took = time.time() - started
        if result.returncode != 0:
            print(f"{method}: training failed: {result.stderr.strip()[-500:]}")
            continue
        summary = json.loads(result.stdout.strip().splitlines()[-1])
        tuned = held_out_margin(workspace.run_dir(summary["run_id"]) / "adapter")
        raised = sum(t > b for t, b in zip(tuned, base))
        kept, right = summary["probe"]["kept"], summary["probe"]["base_right"]
        checks = {"margin up > 1.0": mean(tuned) > mean(base) + 1.0, "raised >= 90%": raised >= 0.9 * len(base),
                  "everyday kept >= 80%": kept >= 0.8 * right}
        print(f"{method} (quick preset, {len(ROWS[method](TRAIN_TOPICS))} rows, {summary['metrics']['steps']} steps, "
              f"{took:.0f} s with the run's start): held-out margin base {mean(base):.2f} -> tuned {mean(tuned):.2f}, "
              f"{raised} of {len(base)} pairs raised, everyday kept {kept} of {right}; "
              + ", ".join(f"{name} {'PASS' if ok else 'MISS'}" for name, ok in checks.items()), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main([m for m in sys.argv[1:] if m in ROWS] or list(ROWS)))
