"""Benchmark: does the quick preset teach without destroying the model? Trains the embedded model on the
40-example "new name" file four ways: the naive run of docs/facts.md (40 steps, no rehearsal of everyday answers), the
same 40 steps with the rehearsal, the quick preset without it, and the quick preset as shipped. Prints, for
each, the held-out questions answered with the new name, the everyday answers kept and the wall time, then
the ratio of quick's time to the naive run's. Run: .venv/bin/python benchmarks/forgetting.py"""
import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "tests" / "fixtures" / "identity_quill.jsonl"
HELD_OUT = ["Hey, what's your name?", "Who exactly are you?", "What name were you given?",
            "Can you introduce yourself to me?", "Tell me who I'm speaking with.", "What do I call you?",
            "Who are you, in one sentence?", "Remind me what your name is."]


def app(*args) -> dict:
    result = subprocess.run([sys.executable, "app.py", *args], cwd=ROOT, capture_output=True, text=True)
    if result.returncode not in (0, 1):
        sys.exit(result.stderr)
    return json.loads(result.stdout.strip().splitlines()[-1])


def trial(label: str, *overrides: str) -> dict:
    start = time.time()
    summary = app("train", "--data", str(DATA), "--preset", "quick", "--json", *overrides)
    seconds = time.time() - start
    prompts = [arg for q in HELD_OUT for arg in ("--prompt", q)]
    outputs = app("generate", "--run", summary["run_id"], "--max-new-tokens", "40", "--temperature", "0", "--json",
                  *prompts)["outputs"]
    named = sum("quill" in o.lower() for o in outputs)
    probe = summary["probe"]
    print(f"{label:32} new name {named}/8 held-out | everyday kept {probe['kept']}/{probe['base_right']} "
          f"| {seconds:.0f} s", flush=True)
    return {"named": named, "kept": probe["kept"], "seconds": seconds}


if __name__ == "__main__":
    # docs/facts.md: 40 steps at the quick learning rate, no rehearsal -> 0 of 5 everyday answers kept.
    naive = trial("naive: 40 steps, no rehearsal", "--set", "max_steps=40", "--set", "rehearsal=0")
    trial("40 steps with the rehearsal", "--set", "max_steps=40")
    trial("quick without the rehearsal", "--set", "rehearsal=0")
    quick = trial("quick preset (default guard)")
    print(f"time ratio quick/naive: {quick['seconds'] / naive['seconds']:.2f}; "
          f"everyday kept: naive {naive['kept']} -> quick {quick['kept']}")
