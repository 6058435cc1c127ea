"""One process against several: step time and loss curve of the same run trained by 1 process and by N (issue 13).

The same SFT run (same data, seed and settings, batch_size 8) goes through the app's runner twice: once as the single
spawned worker (batch 8 per step), once through the launcher as N processes (`accelerate launch`, gloo on the CPU:
8/N examples per process per step). Printed: seconds per step (from the metrics the run writes, the first 2 steps
left out), wall time from submit to done (start-up included), the machine's load (`uptime`) before and after each run,
and the loss of each step side by side with the largest difference.

  python benchmarks/processes.py                      # a tiny random model (2 layers), 12 steps
  python benchmarks/processes.py --model builtin      # SmolLM2-135M, the built-in model
  python benchmarks/processes.py --dropout 0.05       # with LoRA dropout (each process draws its own masks)

This machine has 2 cores: 2 processes share them, so they are not faster here; on a computer with a GPU per process
the step time falls with the share of the batch.
"""
import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")


def uptime() -> str:
    try:
        return subprocess.run(["uptime"], capture_output=True, text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "(uptime not available)"


def tiny_model(folder: Path) -> str:
    from tests.conftest import write_tiny_model  # the tests' tiny model, the same weights
    return write_tiny_model(folder)


def chat_rows(count: int) -> list[dict]:
    """Short chats of a few different lengths, so that batches need padding as real data does."""
    tails = ["", " Nice to see you.", " It is a fine day, and I hope yours is going well."]
    return [{"messages": [{"role": "user", "content": f"Say hello number {i}."},
                          {"role": "assistant", "content": f"Hello number {i}!{tails[i % 3]}"}]} for i in range(count)]


def train(home: Path, values: dict, timeout: float) -> dict:
    """One run through the app's runner; its losses, seconds per step and wall time."""
    os.environ["TUNELOOP_HOME"] = str(home)
    from backend.config import build_config
    from backend.db import connect
    from backend.jobs.runner import JobRunner
    from backend.runs import RunStore

    runner = JobRunner(connect())
    start = time.perf_counter()
    run_id = runner.submit(build_config(values))
    run = runner.wait(run_id, timeout=timeout)
    wall = time.perf_counter() - start
    runner.close()
    metrics = [m for m in RunStore(connect()).metrics(run_id) if "train_loss" in m]
    elapsed = {m["step"]: m["elapsed"] for m in metrics}
    steps = sorted(elapsed)
    skip = 2 if len(steps) > 4 else 0
    per_step = ((elapsed[steps[-1]] - elapsed[steps[skip]]) / max(steps[-1] - steps[skip], 1)
                if len(steps) > 1 else float("nan"))
    return {"status": run["status"], "reason": run.get("reason"), "wall": wall, "per_step": per_step,
            "loss": {m["step"]: m["train_loss"] for m in metrics},
            "tokens_per_second": metrics[-1].get("tokens_per_second") if metrics else None}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="tiny", help="'tiny' (a random 2-layer model) or 'builtin' (%(default)s).")
    parser.add_argument("--processes", type=int, default=2, help="Processes of the second run (%(default)s).")
    parser.add_argument("--steps", type=int, default=12, help="Training steps per run (%(default)s).")
    parser.add_argument("--batch", type=int, default=8, help="Examples per step, all processes together (%(default)s).")
    parser.add_argument("--rows", type=int, default=48, help="Training examples (%(default)s).")
    parser.add_argument("--dropout", type=float, default=0.0, help="LoRA dropout (%(default)s, the default).")
    parser.add_argument("--timeout", type=float, default=900, help="Seconds each run may take (%(default)s).")
    args = parser.parse_args(argv)

    work = Path(tempfile.mkdtemp(prefix="tuneloop-multiprocess-"))
    from backend import workspace
    os.environ["TUNELOOP_MODEL_CACHE"] = str(workspace.model_cache())  # the usual one, before each run's own home
    from backend.models.loading import detect_hardware, resolve_model
    model = tiny_model(work / "tiny") if args.model == "tiny" else str(resolve_model(None))
    data = work / "chat.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in chat_rows(args.rows)))
    hardware = detect_hardware()
    values = dict(method="sft", model=model, dataset=str(data), max_steps=args.steps, batch_size=args.batch,
                  learning_rate=5e-4 if args.model == "builtin" else 1e-2, rehearsal=0, probe=False,
                  validation_split=0.0, lora_r=8, lora_alpha=16, lora_dropout=args.dropout, max_length=128,
                  save_every=1_000_000, seed=42)
    print(f"{args.model} model, {hardware.device} {hardware.dtype_name}, {os.cpu_count()} cores, {args.rows} rows, "
          f"{args.steps} steps, batch {args.batch}, LoRA dropout {args.dropout}", flush=True)
    results = {}
    for processes in (1, args.processes):
        print(f"before {processes} process(es): {uptime()}", flush=True)
        results[processes] = train(work / f"home-{processes}", dict(values, processes=processes), args.timeout)
        result = results[processes]
        print(f"after  {processes} process(es): {uptime()}", flush=True)
        if result["status"] != "done":
            print(f"{processes} process(es): {result['status']}: {result['reason']}")
            return 1

    from backend.config import batch_plan, build_config
    print("\n| processes | batch (per device x processes x accumulation) | s/step | tokens/s | wall s (start-up included) |")
    print("|---|---|---|---|---|")
    for processes, result in results.items():
        plan = batch_plan(build_config(dict(values, processes=processes)), processes)
        print(f"| {processes} | {plan.per_device} x {plan.processes} x {plan.grad_accum} | {result['per_step']:.3f} "
              f"| {result['tokens_per_second'] or 0:,.0f} | {result['wall']:.0f} |")
    one, several = results[1]["loss"], results[args.processes]["loss"]
    steps = sorted(set(one) & set(several))
    print(f"\n| step | loss, 1 process | loss, {args.processes} processes | difference |")
    print("|---|---|---|---|")
    for step in steps:
        print(f"| {step} | {one[step]:.6f} | {several[step]:.6f} | {several[step] - one[step]:+.6f} |")
    worst = max(abs(several[s] - one[s]) for s in steps)
    relative = max(abs(several[s] - one[s]) / abs(one[s]) for s in steps)
    print(f"\nLargest difference: {worst:.2g} ({relative:.2g} of the loss).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
