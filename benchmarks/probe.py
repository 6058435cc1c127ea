"""Benchmark: how long the forgetting probe takes after a run, on the built-in model with an untrained LoRA
adapter (the quick preset's shape), loaded as training loads it. Prints the probe's time (the first probe on a
base model, then a later one that finds the base answers cached), the machine load
(`uptime`) before and after, torch's thread count, a matrix-product speed measured in the same run, and how
many questions the base model got right per category (with an untrained adapter every one is kept).

Run: .venv/bin/python benchmarks/probe.py [--threads N]"""
import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def uptime() -> str:
    return subprocess.run(["uptime"], capture_output=True, text=True).stdout.strip()


def matmul_gflops(dtype) -> float:
    """fp32/bf16 matrix-product speed at one of the model's own shapes (512 x 576 x 1536)."""
    import torch
    a, b = torch.randn(512, 576, dtype=dtype), torch.randn(576, 1536, dtype=dtype)
    for _ in range(3):
        a @ b
    start, runs = time.perf_counter(), 50
    for _ in range(runs):
        a @ b
    return 2 * 512 * 576 * 1536 * runs / (time.perf_counter() - start) / 1e9


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    args = parser.parse_args()
    import torch
    from peft import LoraConfig, get_peft_model

    from backend.config import TARGET_MODULES
    from backend.models.loading import detect_hardware, load_model, load_tokenizer
    from backend.evaluation.grading import load_probe_set
    from backend.evaluation.probe import base_cache_path, run_probe

    if args.threads:
        torch.set_num_threads(args.threads)
    hardware = detect_hardware()
    tokenizer = load_tokenizer(None)
    model = load_model(None, "none", hardware)
    model = get_peft_model(model, LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, task_type="CAUSAL_LM",
                                             target_modules=TARGET_MODULES["attention+mlp"]))
    print(f"before: {uptime()}")
    print(f"torch threads {torch.get_num_threads()}, dtype {hardware.dtype_name}, "
          f"matmul {matmul_gflops(hardware.dtype):.0f} GFLOP/s ({hardware.dtype_name}, 512x576x1536)", flush=True)
    base_cache_path(model, tokenizer, load_probe_set().questions).unlink(missing_ok=True)
    start = time.time()
    result = run_probe(model, tokenizer)
    print(f"probe, first run on this base model: {result['asked']} questions, base and tuned answers generated, "
          f"{time.time() - start:.1f} s")
    print(f"after:  {uptime()}", flush=True)
    start = time.time()
    again = run_probe(model, tokenizer)
    print(f"probe, later runs (base answers cached): tuned answers generated, {time.time() - start:.1f} s")
    print(f"after:  {uptime()}")
    assert again["items"] == result["items"], "the same model answered differently the second time"
    print(result["summary"])
    for name, counts in result["by_category"].items():
        print(f"  {name:11} base right {counts['base_right']} of {counts['asked']}, kept {counts['kept']}")
    wrong = [i for i in result["items"] if not i["base_right"]]
    for item in wrong:
        print(f"  base wrong: {item['question']!r} -> {item['base'][:100]!r}")


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    main()
