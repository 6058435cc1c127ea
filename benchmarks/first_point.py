"""Benchmark: how long a user waits for the first point on the loss chart, and for the end of a quick run.

The quick preset on tests/fixtures/identity_quill.jsonl (40 chat examples that give the assistant the name
"Quill"), queued the way the web app's Start button queues it (JobRunner.submit). The first loss point is the
first training-loss row in the database: the Progress tab draws it at its next tick (every 2 s), so in the
browser it shows at most 2 s later than printed here. The runner is the web app's (JobRunner(standby=True)), and
Start comes once its standby worker has loaded the training libraries, as it has by the time a person has added
data and picked a preset.
  warm: a workspace that has trained before (built-in model converted, everyday answers cached);
  new:  a brand-new workspace and model cache (the built-in model is converted, the everyday answers generated).
Printed per case: seconds from Start to the first loss point and to the end, the steps, the everyday answers
kept, and (with --held-out) how many of 8 differently worded questions the tuned model answers as Quill; with the
load average and this machine's matrix-product peak (benchmarks/speed.py's, in the precision the built-in model
trains in here) measured before and after each case, as docs/benchmarks.md gives every speed figure: the machine
is shared, and a figure without its load and peak cannot be compared.
Run: .venv/bin/python benchmarks/first_point.py [warm] [new] [--held-out]"""
import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
DATA = ROOT / "tests" / "fixtures" / "identity_quill.jsonl"


def one_run(home: Path, cache: Path, held_out: bool) -> dict:
    os.environ["TUNELOOP_HOME"], os.environ["TUNELOOP_MODEL_CACHE"] = str(home), str(cache)
    from backend.data import DatasetStore, inspect_file
    from backend.db import connect
    from backend.evaluation.reworded import rows_teach_about_itself
    from backend.presets import config_from_preset
    from backend.jobs.runner import JobRunner

    runner = JobRunner(standby=True)  # as the web app's: a worker loads the training libraries before Start
    try:
        runner.start()
        ready = runner.standby_ready(timeout=300)  # the page is open, and the data added, before Start is clicked
        store = DatasetStore(connect())
        name = store.add(inspect_file(DATA), name="quill")
        # as the Train tab fills it for this data (examples about the assistant take the preset's step for them)
        config = config_from_preset("quick", "sft", {"dataset": name},
                                    about_itself=rows_teach_about_itself(store.rows(name)))
        started = time.time()
        run_id = runner.submit(config)
        first = None
        while True:
            if first is None and any("train_loss" in m for m in runner.store.metrics(run_id)):
                first = time.time() - started
            run = runner.store.get(run_id)
            if run["status"] in ("done", "failed", "stopped"):
                break
            time.sleep(0.2)
        total = time.time() - started
    finally:
        runner.close()
    result = {"first": first, "total": total, "status": run["status"], "reason": run.get("reason"),
              "steps": (run.get("final_metrics") or {}).get("steps"), "kept": (run.get("probe") or {}).get("kept"),
              "asked": (run.get("probe") or {}).get("base_right"), "standby": ready}
    if held_out and run["status"] == "done":
        from benchmarks.forgetting import HELD_OUT, app
        answers = app("generate", "--run", run_id, "--max-new-tokens", "64", "--temperature", "0", "--json",
                      *[arg for q in HELD_OUT for arg in ("--prompt", q)])["outputs"]
        result["held_out"] = sum("quill" in a.lower() for a in answers)
    return result


def peak_now() -> str:
    """This machine's matrix-product peak now, in the precision a run of the built-in model trains in here."""
    from backend.models.loading import detect_hardware
    from benchmarks.speed import _peak_text, matmul_peak
    dtype = str(detect_hardware().dtype).removeprefix("torch.")  # torch.bfloat16 -> "bfloat16"
    return f"{dtype} matmul peak {_peak_text(matmul_peak(dtype))}"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("cases", nargs="*", choices=["warm", "new"], default=["warm"])
    parser.add_argument("--held-out", action="store_true", help="Also ask the 8 held-out name questions.")
    settings = parser.parse_args()
    shared_cache = Path(os.environ.get("TUNELOOP_MODEL_CACHE") or ROOT / "workspace" / "models")
    for case in settings.cases:
        scratch = Path(tempfile.mkdtemp(prefix=f"first-point-{case}-"))
        cache = scratch / "models" if case == "new" else shared_cache
        if case == "warm":  # a workspace that has trained before: the everyday answers are in the cache
            from backend.models.loading import resolve_model
            os.environ["TUNELOOP_MODEL_CACHE"] = str(cache)
            resolve_model(None)
        peak_before, load_before = peak_now(), "/".join(f"{x:.1f}" for x in os.getloadavg())
        result = one_run(scratch / "home", cache, settings.held_out)
        load = "/".join(f"{x:.1f}" for x in os.getloadavg())
        print(f"{case}: first loss point {result['first']:.1f} s after Start, run {result['status']} after "
              f"{result['total']:.0f} s ({result['steps']} steps), everyday answers kept {result['kept']} of {result['asked']}"
              + (f", held-out name questions {result['held_out']} of 8" if "held_out" in result else "")
              + (f"; {result['reason']}" if result["reason"] else "")
              + ("" if result["standby"] else "; no standby worker was ready")
              + f"; load {load_before} before, {load} after (1/5/15 min); {peak_before} before, {peak_now()} after",
              flush=True)
        shutil.rmtree(scratch, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
