"""Speed, side by side: Tuneloop's trainer, plain TRL (its defaults) and LLaMA-Factory's CLI on the same work.

Every contender trains the same rows (LLaMA-Factory's own demo files: identity + alpaca for SFT, the DPO demo,
the KTO demo), the same base model, LoRA rank and targets, batch, max length, steps and precision, once per
repeat, the contenders taking turns so that a busy machine slows them all alike. Each run trains exactly one
pass over steps x batch rows (or --epochs passes over fewer rows), so all contenders see the same tokens. Timing is the trainer's own train_runtime
(all three use the Hugging Face Trainer): model loading and data preparation are left out, checkpoint and
evaluation pauses during training are counted. Real tokens are the non-padding tokens each trainer counted itself
(TRL's num_tokens; LLaMA-Factory with include_num_input_tokens_seen=non_padding); where a trainer keeps no count
(KTO in TRL), the rows rendered here with the model's chat template and cut at max length (LLaMA-Factory's
smollm2 template renders the same text).
A matrix-product benchmark in the same run gives the machine's peak, and the share of it each trainer reaches
(LoRA training costs about 4 x parameters FLOPs per token).

Set-up once: benchmarks/setup_peers.sh (LLaMA-Factory into .bench/llamafactory; plain TRL uses the project venv).
Run:   .venv/bin/python benchmarks/speed.py                                  (full: 3 repeats, sft dpo kto)
       .venv/bin/python benchmarks/speed.py --steps 3 --repeats 1 --methods sft   (a quick check)
       .venv/bin/python benchmarks/speed.py --contenders tuneloop@HEAD~1,tuneloop --repeats 3   (a lever, A/B)
"""
import argparse
import json
import os
import random
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BENCH = ROOT / ".bench"
PEERS = ROOT.parent / "shared" / "data" / "peers" / "llamafactory"
MODEL = Path(os.environ.get("TUNELOOP_MODEL_CACHE", "/work/cache/models")) / "SmolLM2-135M-Instruct"
LLAMAFACTORY_CLI = BENCH / "llamafactory" / "bin" / "llamafactory-cli"
CONTENDERS = ("tuneloop", "trl", "llamafactory")
METHODS = ("sft", "dpo", "kto")
LEARNING_RATE = {"sft": 5e-4, "dpo": 2e-4, "kto": 1e-4}  # Tuneloop's quick preset; speed does not depend on it
BETA = 0.1


# --- the work ------------------------------------------------------------------------------------------------

def workload(method: str, rows_needed: int, seed: int, max_length: int) -> list[dict]:
    """Rows from LLaMA-Factory's demo files in their own format (alpaca or sharegpt): a seeded sample of those
    whose prompt takes at most half of max_length. TRL drops a row whose prompt alone fills max_length, where
    LLaMA-Factory shortens the prompt to keep part of the answer: with such rows they would not do the same work."""
    if method == "sft":
        identity = json.loads((PEERS / "identity.json").read_text())
        for row in identity:  # the file's placeholders, filled as LLaMA-Factory's README asks
            row["output"] = row["output"].replace("{{name}}", "Quill").replace("{{author}}", "Tuneloop")
        rows = identity + json.loads((PEERS / "alpaca_en_demo.json").read_text())
    else:
        rows = json.loads((PEERS / f"{method}_en_demo.json").read_text())
    random.Random(seed).shuffle(rows)
    tokenizer = _tokenizer()
    fitting = []
    for row in rows:
        converted = as_trl(method, row)
        prompt = converted["messages"][:-1] if method == "sft" else converted["prompt"]
        if len(tokenizer.apply_chat_template(prompt, tokenize=True, add_generation_prompt=True,
                                             return_dict=False)) <= max_length // 2:
            fitting.append(row)
        if len(fitting) == rows_needed:
            return fitting
    sys.exit(f"{method}: {rows_needed} rows needed (steps x batch), the demo file has {len(fitting)} whose prompt "
             f"fits in half of max length {max_length}.")


def _tokenizer():
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(MODEL)


def as_trl(method: str, row: dict) -> dict:
    """The same row in TRL's conversational format, joined as LLaMA-Factory documents it."""
    def turns(messages):
        roles = {"human": "user", "gpt": "assistant", "system": "system"}
        return [{"role": roles.get(m.get("from"), m.get("role")), "content": m.get("value", m.get("content"))}
                for m in messages]
    if method == "sft":
        user = row["instruction"] + ("\n" + row["input"] if row.get("input") else "")
        return {"messages": [{"role": "user", "content": user}, {"role": "assistant", "content": row["output"]}]}
    if method == "dpo":
        return {"prompt": turns(row["conversations"]), "chosen": turns([row["chosen"]]),
                "rejected": turns([row["rejected"]])}
    messages = turns(row["messages"])
    return {"prompt": messages[:-1], "completion": messages[-1:], "label": bool(row["label"])}


def real_tokens(method: str, rows: list[dict], max_length: int) -> int:
    """Non-padding tokens trained on: each sequence in the model's chat template, cut at max_length."""
    tokenizer = _tokenizer()

    def length(messages):
        return min(len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False)), max_length)
    total = 0
    for row in map(lambda r: as_trl(method, r), rows):
        if method == "sft":
            total += length(row["messages"])
        elif method == "dpo":  # the prompt goes through once with each answer
            total += length(row["prompt"] + row["chosen"]) + length(row["prompt"] + row["rejected"])
        else:
            total += length(row["prompt"] + row["completion"])
    return total


# --- the machine's peak ----------------------------------------------------------------------------------------

def matmul_peak(dtype_name: str) -> dict:
    """Best GFLOP/s of a torch matrix product at the model's own shape (512 tokens x 576 x 1536) and at 2048^3.
    Each shape gets about 3 s; 2048^3 is skipped where one product would take over 10 s (bf16 on a CPU without
    native bf16 instructions runs at well under 1 GFLOP/s)."""
    import torch
    dtype = getattr(torch, dtype_name)
    best = {}
    for m, k, n in ((512, 576, 1536), (2048, 2048, 2048)):
        flops = 2 * m * k * n
        if best and flops / (max(best.values()) * 1e9) > 10:
            best[f"{m}x{k}x{n}"] = None
            continue
        a, b = torch.randn(m, k, dtype=dtype), torch.randn(k, n, dtype=dtype)
        a @ b  # warm-up
        rates = []
        deadline = time.perf_counter() + 3.0
        while not rates or time.perf_counter() < deadline:
            start = time.perf_counter()
            a @ b
            rates.append(flops / (time.perf_counter() - start) / 1e9)
        best[f"{m}x{k}x{n}"] = max(rates)
    return best


def _peak_text(shapes: dict) -> str:
    return ", ".join(f"{s} {g:.1f} GFLOP/s" if g else f"{s} skipped (too slow)" for s, g in shapes.items())


def model_parameters() -> int:
    from safetensors import safe_open
    total = 0
    for file in MODEL.glob("*.safetensors"):
        with safe_open(str(file), "pt") as weights:
            for name in weights.keys():
                size = 1
                for dim in weights.get_slice(name).get_shape():
                    size *= dim
                total += size
    return total


def default_precision() -> str:
    """What Tuneloop picks on this machine (bf16 only where the CPU has native bf16 instructions)."""
    sys.path.insert(0, str(ROOT))
    from backend.models.loading import detect_hardware
    return detect_hardware().dtype_name


# --- running a contender ---------------------------------------------------------------------------------------

def run_measured(command: list[str], env: dict, cwd: Path, log: Path) -> tuple[int, int]:
    """Run a command; return (exit code, peak resident memory of its whole process tree, bytes)."""
    import psutil
    with open(log, "w") as out:
        process = subprocess.Popen(command, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT)
        peak = 0
        root = psutil.Process(process.pid)
        while process.poll() is None:
            try:
                tree = [root] + root.children(recursive=True)
                peak = max(peak, sum(_rss(p) for p in tree))
            except psutil.NoSuchProcess:
                pass
            time.sleep(0.2)
    return process.returncode, peak


def _rss(process) -> int:
    try:
        return process.memory_info().rss
    except Exception:
        return 0


def run_tuneloop(method, data_file, work: Path, settings, source: Path = ROOT, extra: dict | None = None) -> dict:
    """Tuneloop's CLI in a fresh workspace; source: the tree to run (this one, or a baseline for A/B); extra: settings
    set on top of the shared work's (a contender 'tuneloop+KEY=VALUE')."""
    home = work / "tuneloop-home"
    env = dict(os.environ, TUNELOOP_HOME=str(home), TUNELOOP_MODEL_CACHE=str(MODEL.parent))
    overrides = {"rehearsal": 0, "probe": "false", "validation_split": 0, "max_steps": settings.steps,
                 "batch_size": settings.batch, "grad_accum": 1, "max_length": settings.max_length,
                 "lora_r": settings.lora_r, "lora_alpha": 2 * settings.lora_r, "target_modules": "all-linear",
                 "learning_rate": LEARNING_RATE[method]}
    if method != "sft":
        overrides["beta"] = BETA
    if method == "dpo":  # the everyday rehearsal is an SFT/KTO setting
        del overrides["rehearsal"]
    overrides.update(extra or {})
    command = [sys.executable, "app.py", "train", "--data", str(data_file), "--method", method, "--preset", "quick",
               "--json"] + [arg for key, value in overrides.items() for arg in ("--set", f"{key}={value}")]
    code, peak = run_measured(command, env, source, work / "tuneloop.log")
    lines = (work / "tuneloop.log").read_text().strip().splitlines()
    summary = json.loads(lines[-1]) if code == 0 and lines else None
    if not summary:
        raise RuntimeError(f"Tuneloop failed, see {work / 'tuneloop.log'}")
    train_log = (home / "runs" / summary["run_id"] / "train.log").read_text()
    seconds = _logged(train_log, "train_runtime", last=True) + _precompute_seconds(train_log)
    return {"seconds": seconds, "steps": int(summary["metrics"]["steps"]),
            "reported_tokens": _logged(train_log, "num_tokens", last=True), "peak_rss": peak}


def run_trl(method, data_file, work: Path, settings) -> dict:
    command = [sys.executable, str(Path(__file__).with_name("speed_trl.py")), "--method", method,
               "--data", str(data_file), "--model", str(MODEL), "--out", str(work / "trl-out"),
               "--steps", str(settings.steps), "--batch", str(settings.batch), "--max-length", str(settings.max_length),
               "--lora-r", str(settings.lora_r), "--learning-rate", str(LEARNING_RATE[method]), "--beta", str(BETA),
               "--precision", settings.precision]
    code, peak = run_measured(command, dict(os.environ), ROOT, work / "trl.log")
    lines = (work / "trl.log").read_text().strip().splitlines()
    if code != 0:
        raise RuntimeError(f"plain TRL failed, see {work / 'trl.log'}")
    result = json.loads(lines[-1])
    return {**result, "peak_rss": peak}


LLAMAFACTORY_DATASETS = {
    "sft": {"formatting": "alpaca"},
    "dpo": {"ranking": True, "formatting": "sharegpt",
            "columns": {"messages": "conversations", "chosen": "chosen", "rejected": "rejected"}},
    "kto": {"formatting": "sharegpt", "columns": {"messages": "messages", "kto_tag": "label"},
            "tags": {"role_tag": "role", "content_tag": "content", "user_tag": "user", "assistant_tag": "assistant"}},
}


def _has_gpu() -> bool:
    import torch
    return torch.cuda.is_available()


def run_llamafactory(method, data_file, work: Path, settings) -> dict:
    if not LLAMAFACTORY_CLI.exists():
        raise RuntimeError("LLaMA-Factory is not installed: run benchmarks/setup_peers.sh")
    info = {f"bench_{method}": {"file_name": data_file.name, **LLAMAFACTORY_DATASETS[method]}}
    (data_file.parent / "dataset_info.json").write_text(json.dumps(info, indent=1))
    out = work / "llamafactory-out"
    config = {
        "model_name_or_path": str(MODEL), "trust_remote_code": False,
        "stage": method, "do_train": True, "finetuning_type": "lora",
        "lora_rank": settings.lora_r, "lora_alpha": 2 * settings.lora_r, "lora_target": "all",
        "dataset": f"bench_{method}", "dataset_dir": str(data_file.parent), "template": "smollm2",
        "cutoff_len": settings.max_length, "overwrite_cache": True,
        "output_dir": str(out), "overwrite_output_dir": True, "logging_steps": 1, "save_strategy": "no",
        "plot_loss": False, "report_to": "none", "disable_tqdm": True,
        "per_device_train_batch_size": settings.batch, "gradient_accumulation_steps": 1,
        "learning_rate": LEARNING_RATE[method], "max_steps": settings.steps, "lr_scheduler_type": "cosine",
        "warmup_steps": 2, "seed": 42, "bf16": settings.precision == "bfloat16",
        "include_num_input_tokens_seen": "non_padding",
        # Without a GPU the Trainer refuses bf16 ("Your setup doesn't support bf16/gpu") unless told it runs on the
        # CPU, as Tuneloop's trainer is (use_cpu): on a CPU with native bf16 (AMX) that is how the peer trains bf16.
        "use_cpu": not _has_gpu(),
    }
    if method != "sft":
        config["pref_beta"] = BETA
    config_file = work / "llamafactory.yaml"
    config_file.write_text("\n".join(f"{key}: {json.dumps(value)}" for key, value in config.items()) + "\n")
    env = dict(os.environ, HF_HUB_OFFLINE="1", DISABLE_VERSION_CHECK="1")
    code, peak = run_measured([str(LLAMAFACTORY_CLI), "train", str(config_file)], env, ROOT, work / "llamafactory.log")
    if code != 0:
        raise RuntimeError(f"LLaMA-Factory failed, see {work / 'llamafactory.log'}")
    results = json.loads((out / "train_results.json").read_text())
    logs = [json.loads(line) for line in (out / "trainer_log.jsonl").read_text().splitlines() if line.strip()]
    seen = [entry["total_tokens"] for entry in logs if "total_tokens" in entry]
    return {"seconds": float(results["train_runtime"]), "steps": logs[-1]["current_steps"] if logs else settings.steps,
            "reported_tokens": float(results.get("num_input_tokens_seen") or (seen[-1] if seen else 0)) or None,
            "peak_rss": peak}


RUNNERS = {"tuneloop": run_tuneloop, "trl": run_trl, "llamafactory": run_llamafactory}


def runner(contender: str):
    """'tuneloop@REV' runs Tuneloop as committed at REV (a copy in .bench/), for A/B against this tree;
    'tuneloop+KEY=VALUE[+KEY=VALUE...]' runs this tree with those settings too (a setting's A/B)."""
    if contender.startswith("tuneloop+"):
        extra = dict(pair.split("=", 1) for pair in contender.split("+")[1:])
        return lambda *args: run_tuneloop(*args, extra=extra)
    if "@" not in contender:
        return RUNNERS[contender]
    tree = BENCH / f"tree-{contender.split('@', 1)[1]}"
    if not tree.exists():
        tree.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", contender.split("@", 1)[1]], cwd=ROOT, check=True,
                                 capture_output=True).stdout
        subprocess.run(["tar", "-x", "-C", str(tree)], input=archive, check=True)
    return lambda *args: run_tuneloop(*args, source=tree)


def pinned(contender: str) -> str:
    """tuneloop@HEAD~1 -> tuneloop@<its commit>, fixed when the run starts (commits made meanwhile change nothing)."""
    if "@" not in contender:
        return contender
    name, revision = contender.split("@", 1)
    commit = subprocess.run(["git", "rev-parse", "--short", revision], cwd=ROOT, check=True, capture_output=True,
                            text=True).stdout.strip()
    return f"{name}@{commit}"


def _precompute_seconds(log: str) -> float:
    """TRL computes reference log-probabilities once, before train_runtime starts, when asked to: that time is
    part of training too. Read from its progress bar ('... train dataset: 100%|...| 40/40 [01:02<00:00, ...')."""
    found = re.findall(r"Computing reference log probs for train dataset: 100%[^\[]*\[(?:(\d+):)?(\d+):(\d+)<", log)
    return sum(int(h or 0) * 3600 + int(m) * 60 + int(sec) for h, m, sec in found[-1:])


def _logged(log: str, key: str, last: bool = False) -> float | None:
    """A value from the Trainer's printed log dicts ({'train_runtime': '116.4', ...})."""
    found = re.findall(rf"'{key}': '?([0-9.eE+-]+)'?", log)
    return float(found[-1 if last else 0]) if found else None


def load() -> str:
    return "/".join(f"{x:.1f}" for x in os.getloadavg())


# --- the table -------------------------------------------------------------------------------------------------

def summarise(results: dict, peak: float, params: int, precision: str) -> str:
    short = "bf16" if precision == "bfloat16" else "fp32"
    lines = [f"| contender | method | real tokens/s (non-padding) | seconds/step | peak RSS | ratio to LLaMA-Factory "
             f"| share of this machine's {short} matmul peak | load before each run (1/5/15 min) |",
             "|---|---|---|---|---|---|---|---|"]
    rate = {key: statistics.median(r["tokens"] / r["seconds"] for r in runs) for key, runs in results.items()}
    for (contender, method), runs in results.items():
        seconds = statistics.median(r["seconds"] / r["steps"] for r in runs)
        rss = statistics.median(r["peak_rss"] for r in runs) / 2**30
        reference = rate.get(("llamafactory", method))
        ratio = f"{rate[contender, method] / reference:.2f}x" if reference else "-"
        share = rate[contender, method] * 4 * params / (peak * 1e9)
        loads = ", ".join(r["load"] for r in runs)
        lines.append(f"| {contender} | {method} | {rate[contender, method]:.1f} | {seconds:.2f} | "
                     f"{rss:.2f} GB | {ratio} | {share:.1%} | {loads} |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--lora-r", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=1,
                        help="Passes over the rows: steps x batch / epochs rows are read this many times.")
    parser.add_argument("--passive-all", action="store_true",
                        help="Run every contender with OMP_WAIT_POLICY=PASSIVE (Tuneloop sets it for itself), to "
                             "compare the trainers without the threads' waiting on a busy machine.")
    parser.add_argument("--repeats", type=int, default=3, help="Runs per contender and method; the median is shown.")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--contenders", default=",".join(CONTENDERS),
                        help="Any of tuneloop, trl, llamafactory, tuneloop@REV (Tuneloop at a git revision) and "
                             "tuneloop+KEY=VALUE (this tree with a setting changed).")
    parser.add_argument("--precision", choices=["auto", "bfloat16", "float32"], default="auto",
                        help="auto: what Tuneloop picks on this machine (it has no setting to change that).")
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--keep", action="store_true", help="Keep the work folder (data, logs, outputs) in .bench/.")
    settings = parser.parse_args()
    methods = [m for m in settings.methods.split(",") if m]
    contenders = [pinned(c) for c in settings.contenders.split(",") if c]
    settings.precision = default_precision() if settings.precision == "auto" else settings.precision
    if settings.passive_all:
        os.environ["OMP_WAIT_POLICY"] = "PASSIVE"  # inherited by every contender's process
    print(f"machine: {os.cpu_count()} cores, load {load()}; precision {settings.precision}; {settings.steps} steps of "
          f"batch {settings.batch} ({settings.epochs} pass(es) over the rows), max length {settings.max_length}, LoRA "
          f"r{settings.lora_r} on all linear layers, {settings.repeats} repeat(s)"
          + (", every contender's threads waiting passively" if settings.passive_all else ""), flush=True)
    peaks = {name: matmul_peak(name) for name in {"bfloat16", settings.precision}}
    for name, shapes in peaks.items():
        print(f"matmul peak {name}: {_peak_text(shapes)}", flush=True)
    params = model_parameters()
    BENCH.mkdir(exist_ok=True)
    work_root = Path(tempfile.mkdtemp(prefix="speed-", dir=BENCH))
    data, tokens = {}, {}
    for method in methods:
        rows = workload(method, settings.steps * settings.batch // settings.epochs, settings.seed, settings.max_length)
        folder = work_root / f"data-{method}"
        folder.mkdir()
        data[method] = folder / f"{method}.json"
        data[method].write_text(json.dumps(rows, ensure_ascii=False))
        (folder / f"{method}-trl.json").write_text(json.dumps([as_trl(method, r) for r in rows], ensure_ascii=False))
        tokens[method] = real_tokens(method, rows, settings.max_length) * settings.epochs
        print(f"{method}: {len(rows)} rows, {tokens[method]} real tokens", flush=True)
    results = {}
    for repeat in range(settings.repeats):
        for method in methods:
            for contender in contenders:
                work = work_root / f"{contender}-{method}-{repeat}"
                work.mkdir()
                before = load()
                data_file = data[method].with_name(f"{method}-trl.json") if contender == "trl" else data[method]
                started = time.time()
                result = runner(contender)(method, data_file, work, settings)
                result["wall"] = time.time() - started
                # The trainer's own count of non-padding tokens where it keeps one, else the harness's.
                result.update(load=before, tokens=result.get("reported_tokens") or tokens[method])
                results.setdefault((contender, method), []).append(result)
                print(f"  {contender:12} {method} run {repeat + 1}: {result['seconds']:.1f} s train, "
                      f"{result['tokens'] / result['seconds']:.1f} real tokens/s ({result['tokens']:.0f} tokens, "
                      f"{'counted by the trainer' if result.get('reported_tokens') else 'counted here'}), "
                      f"peak RSS {result['peak_rss'] / 2**30:.2f} GB, {result['wall']:.0f} s in all, load before {before}",
                      flush=True)
    end_peak = matmul_peak(settings.precision)
    print(f"matmul peak {settings.precision} at the end: {_peak_text(end_peak)}", flush=True)
    peak = max(g for g in list(peaks[settings.precision].values()) + list(end_peak.values()) if g)
    print(f"\n{params / 1e6:.1f} M parameters; peak used for the share: {peak:.1f} GFLOP/s ({settings.precision}); "
          f"load now {load()}\n")
    print(summarise(results, peak, params, settings.precision))
    record = {"settings": vars(settings), "peaks": peaks, "end_peak": end_peak, "tokens": tokens,
              "results": {f"{c}/{m}": runs for (c, m), runs in results.items()}}
    record_file = BENCH / f"speed-{time.strftime('%Y%m%d-%H%M%S')}.json"
    record_file.write_text(json.dumps(record, indent=1))
    print(f"\nall figures: {record_file}")
    if not settings.keep:
        shutil.rmtree(work_root)
    return 0


if __name__ == "__main__":
    sys.exit(main())
