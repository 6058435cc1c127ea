"""GPU check (issue 9): QLoRA SFT, DPO and KTO through Tuneloop's own training code, on models of real shapes.

Models are built from config with random weights (the shapes of Qwen2.5-0.5B/1.5B/3B-Instruct and Llama-3.1-8B-Instruct;
nothing is downloaded), written once as bf16 safetensors (to /dev/shm when it has room), and loaded through
backend.models.loading.load_model with quantization '4bit', as a run would. Each method then trains --steps steps through
backend.train.run_training on synthetic chat rows of --seq tokens made from the built-in tokenizer's words. One table
comes out: tokens/s, s/step, peak memory measured (torch.cuda.max_memory_allocated) against backend.models.memory's estimate,
and model FLOPs utilisation against the card's bf16 peak, measured here with an 8192^3 matmul. Then one short run of
the whole command line (`python app.py train --preset quick`) on the smallest shape. A time guard skips what would not
fit in --budget seconds and says so. After the smallest shape's rows, one more SFT row ("launcher") trains the same
settings as 1 process through the launcher that runs on several GPUs (`accelerate launch`, torchrun; backend/jobs/launcher.py),
through the app's runner.

Issue 27 adds rows of the same table on the same work: plain TRL with its defaults (variant 'trl',
benchmarks/gpu_peers.py), whose tokens/s every row of its size is set against ('x TRL'), and speed levers each switched
on for one row (pf, pf-flex, liger, pf-liger, gc-offload: benchmarks/gpu_levers.py), on rows of one length or of mixed
lengths (--lengths mixed).
The levers' run (about 7 minutes), as the device command below with these options instead of the defaults:

  --sizes 0.5b,8b,3b --methods sft --lengths mixed --seq 1024 --steps 12 --no-cli --no-launcher --budget 420
  --variants trl@all,pf@all,liger@all,pf-liger@all,pf-flex@all,trl-nogc@0.5b,gc@8b,gc-offload@8b

On the device machine (one H100, no network): first, here, `bash benchmarks/gpu_wheels.sh` fills .whl/ (git-ignored)
with the wheels the machine lacks and the built-in tokenizer; then run there, with carry [".whl"] and timeout_s 600:

  python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site || exit; nvidia-smi -L; PYTHONUNBUFFERED=1 python3 benchmarks/gpu.py --out $OUT/gpu.md 2>&1 | tee $OUT/gpu.log

Here, on the CPU (what `make test` runs, through tests/test_gpu_benchmark.py): python benchmarks/gpu.py --cpu-smoke
"""
import argparse
import contextlib
import gc
import json
import math
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_DATASETS_DISABLE_PROGRESS_BARS", "1")  # one line per run is printed instead

# The shapes from each model's own config.json. The vocabulary is the built-in tokenizer's (49152), since the data is
# tokenized with it: the embeddings, output layer and FLOPs below are those of that vocabulary.
SHAPES = {
    "0.5b": ("qwen2", dict(hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
                           num_key_value_heads=2, tie_word_embeddings=True)),
    "1.5b": ("qwen2", dict(hidden_size=1536, intermediate_size=8960, num_hidden_layers=28, num_attention_heads=12,
                           num_key_value_heads=2, tie_word_embeddings=True)),
    "3b": ("qwen2", dict(hidden_size=2048, intermediate_size=11008, num_hidden_layers=36, num_attention_heads=16,
                         num_key_value_heads=2, tie_word_embeddings=True)),
    "8b": ("llama", dict(hidden_size=4096, intermediate_size=14336, num_hidden_layers=32, num_attention_heads=32,
                         num_key_value_heads=8, tie_word_embeddings=False)),
    "tiny": ("qwen2", dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                           num_key_value_heads=2, tie_word_embeddings=True)),
}
# Extra rows, each one setting changed from the QLoRA default, at one size: checkpointing, the 8-bit optimizer, and
# plain LoRA on bf16 weights (loaded fresh through load_model, not the shared 4-bit model).
VARIANTS = {
    "gc": {"gradient_checkpointing": "on"},
    "paged8": {"optimizer": "paged_adamw_8bit"},
    "bf16": {"quantization": "none"},
}
# Row lengths with --lengths mixed, as (weight, lowest, highest) share of --seq: short rows like an identity file's,
# middling ones like alpaca's, and long synthetic ones up to --seq (issue 27: 1,024-2,048 tokens). At --seq 1024 the
# SFT rows average 232 tokens, so a batch padded to its longest row is mostly padding.
MIXED = [(0.35, 0.02, 0.06), (0.45, 0.06, 0.25), (0.20, 0.25, 1.0)]
GB = 1024 ** 3


def say(text: str = ""):
    print(text, flush=True)


@dataclass
class Row:
    method: str
    size: str
    variant: str = ""
    steps: int = 0
    tokens_per_s: float = 0.0
    s_per_step: float = 0.0
    peak_measured: float = 0.0  # bytes
    peak_estimated: float = 0.0  # bytes, what max_memory_allocated should see (no CUDA context)
    mfu: float = 0.0
    checkpointing: bool = False
    weights_measured: float = 0.0
    weights_estimated: float = 0.0
    parts: dict = field(default_factory=dict)
    note: str = ""
    vs_trl: float = float("nan")  # tokens/s against plain TRL's (variant 'trl') at the same size; table() fills it

    def cells(self) -> list[str]:
        if self.note and not self.steps:
            return [self.method, self.size, self.variant or "-", self.note] + [""] * 9
        measured = not math.isnan(self.peak_measured)  # not on the CPU
        ratio = f"{self.peak_estimated / self.peak_measured:.2f}" if measured else "-"
        return [self.method, self.size, self.variant or "-", str(self.steps), f"{self.tokens_per_s:,.0f}",
                "-" if math.isnan(self.vs_trl) else f"{self.vs_trl:.2f}", f"{self.s_per_step:.3f}",
                f"{self.peak_measured / GB:.2f}" if measured else "-",
                f"{self.peak_estimated / GB:.2f}", ratio, f"{self.mfu:.1%}", "on" if self.checkpointing else "off",
                self.note]


HEADER = ["method", "size", "variant", "steps", "tokens/s", "x TRL", "s/step", "peak GB measured", "peak GB estimated",
          "ratio est/meas", "MFU", "grad ckpt", "note"]


class Budget:
    def __init__(self, seconds: float):
        self.start = time.monotonic()
        self.end = self.start + seconds

    def left(self) -> float:
        return self.end - time.monotonic()

    def elapsed(self) -> float:
        return time.monotonic() - self.start

    def allows(self, need: float | None, what: str) -> bool:
        if need is not None and need > self.left():
            say(f"[{self.elapsed():5.0f}s] skipped {what}: it needs about {need:.0f} s, "
                f"{max(self.left(), 0):.0f} s are left")
            return False
        return True


# ---- the device ---------------------------------------------------------------------------------------------------

class Device:
    def __init__(self, cpu: bool):
        import torch
        self.torch = torch
        self.cuda = torch.cuda.is_available() and not cpu
        self.name = torch.cuda.get_device_name(0) if self.cuda else "CPU"

    def sync(self):
        if self.cuda:
            self.torch.cuda.synchronize()

    def clean(self):
        gc.collect()
        if self.cuda:
            self.torch.cuda.empty_cache()

    def allocated(self) -> int:
        return self.torch.cuda.memory_allocated() if self.cuda else 0

    def reset_peak(self):
        if self.cuda:
            self.torch.cuda.reset_peak_memory_stats()

    def peak(self) -> int:
        return self.torch.cuda.max_memory_allocated() if self.cuda else 0

    def matmul_peak(self, dtype) -> float:
        """FLOP/s of a large matrix product in the training dtype: 8192^3 bf16 on a GPU (10 timed after 3 warm-ups),
        512^3 on a CPU."""
        torch = self.torch
        n, repeats = (8192, 10) if self.cuda else (512, 3)
        a = torch.randn(n, n, dtype=dtype, device="cuda" if self.cuda else "cpu")
        b = torch.randn_like(a)
        for _ in range(3 if self.cuda else 1):
            a @ b
        self.sync()
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        self.sync()
        seconds = time.perf_counter() - start
        del a, b
        self.clean()
        return 2 * n ** 3 * repeats / seconds


# ---- models -------------------------------------------------------------------------------------------------------

def model_config(size: str, tokenizer):
    from transformers import AutoConfig
    kind, dims = SHAPES[size]
    return AutoConfig.for_model(kind, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                                eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                                pad_token_id=tokenizer.pad_token_id, **dims)


def checkpoint_bytes(size: str, tokenizer) -> int:
    from backend.models.memory import ModelShape
    shape = ModelShape.from_config(model_config(size, tokenizer).to_dict())
    return 2 * (shape.linear_params() + shape.other_params())


def scratch_dir(need: int, fallback: Path) -> Path:
    """/dev/shm (memory) when it has room for the checkpoint, else the temporary folder on disk."""
    shm = Path("/dev/shm")
    try:
        if shm.is_dir() and shutil.disk_usage(shm).free > need * 1.2 + 2 * GB:
            return Path(tempfile.mkdtemp(prefix="tuneloop-gpu-", dir=shm))
    except OSError:
        pass
    return Path(tempfile.mkdtemp(prefix="ckpt-", dir=fallback))


def write_checkpoint(size: str, folder: Path, tokenizer, device: Device) -> dict:
    """Random-initialised bf16 model built directly on the device, saved as safetensors with the tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM
    config = model_config(size, tokenizer)
    torch.manual_seed(0)
    start = time.perf_counter()
    with torch.device("cuda" if device.cuda else "cpu"):
        model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    device.sync()
    built = time.perf_counter() - start
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    saved = time.perf_counter() - start - built
    del model
    device.clean()
    return {"build_s": built, "save_s": saved}


def strip_adapters(model, keys: set):
    """Give the shared base model back as it was loaded: LoRA layers out, TRL's and PEFT's additions undone."""
    from peft.tuners.lora import LoraLayer
    for module in list(model.modules()):
        for name, child in list(module.named_children()):
            if isinstance(child, LoraLayer):
                setattr(module, name, child.get_base_layer())
    model.__dict__.pop("forward", None)  # TRL's fused LM head patches the instance's forward
    for attribute in ("peft_config", "_hf_peft_config_loaded"):
        model.__dict__.pop(attribute, None)
    if getattr(model, "is_gradient_checkpointing", False):
        model.gradient_checkpointing_disable()
    if hasattr(model, "_require_grads_hook"):
        model.disable_input_require_grads()
    for parameter in model.parameters():
        parameter.requires_grad_(False)
    left = set(model.state_dict()) ^ keys
    if left:
        raise RuntimeError(f"The base model changed during training and cannot be reused: {sorted(left)[:5]}")


def has_adapters(model) -> bool:
    from peft.tuners.lora import LoraLayer
    return any(isinstance(module, LoraLayer) for module in model.modules())


@contextlib.contextmanager
def shared_base(model):
    """run_training loads its model through backend.train.common.load_model; hand it the model loaded once (by that
    same load_model) instead of reading the checkpoint again for every method."""
    import backend.train.common as common
    original, keys = common.load_model, set(model.state_dict())
    common.load_model = lambda name, quantization="none", hardware=None: model
    try:
        yield
    finally:
        common.load_model = original
        strip_adapters(model, keys)


# ---- data ---------------------------------------------------------------------------------------------------------

class Rows:
    """Synthetic chat rows from whole words of the built-in tokenizer's vocabulary: each `seq` tokens long ('fixed'), or
    of mixed lengths up to `seq` ('mixed', MIXED)."""

    def __init__(self, tokenizer, seq: int, seed: int = 0, lengths: str = "fixed"):
        self.tokenizer, self.seq, self.rng, self.lengths = tokenizer, seq, random.Random(seed), lengths
        vocab = tokenizer.get_vocab()
        self.words = sorted(t[1:] for t in vocab if t.startswith("Ġ") and t[1:].isalpha() and t[1:].islower()
                            and 3 <= len(t) - 1 <= 8)
        self.made: dict[tuple[str, int], tuple[list, float, float, float]] = {}  # the same rows serve every size

    def text(self, count: int) -> str:
        return " ".join(self.rng.choices(self.words, k=count))

    def length(self, messages: list) -> int:
        return len(self.tokenizer.apply_chat_template(messages, tokenize=True, return_dict=False))

    def target(self) -> int:
        """Tokens the next row should have: `seq`, or one drawn from MIXED."""
        if self.lengths == "fixed":
            return self.seq
        low, high = self.rng.choices([(lo, hi) for _, lo, hi in MIXED], weights=[w for w, _, _ in MIXED])[0]
        return max(24, min(self.seq, int(self.seq * self.rng.uniform(low, high))))

    def answer_for(self, prompt: list, target: int) -> list:
        """An assistant message that brings prompt + answer to `target` tokens (or just under)."""
        count = max(1, target - self.length(prompt) - 4)
        for _ in range(4):
            answer = [{"role": "assistant", "content": self.text(count)}]
            over = self.length(prompt + answer) - target
            if over <= 0 and over > -4:
                break
            count = max(1, count - over)
        while self.length(prompt + answer) > target and count > 1:
            count -= 1
            answer = [{"role": "assistant", "content": self.text(count)}]
        return answer

    def prompt(self, target: int) -> list:
        return [{"role": "user", "content": self.text(max(4, target // 8))}]

    def get(self, method: str, count: int) -> tuple[list[dict], float, float, float]:
        """(rows, tokens per trained sequence, answer tokens per sequence, mean square of the sequence lengths)."""
        if (method, count) not in self.made:
            rows = self.make(method, count)
            self.made[method, count] = (rows, *self.measure(method, rows))
        return self.made[method, count]

    def make(self, method: str, count: int) -> list[dict]:
        rows = []
        for index in range(count):
            target = self.target()
            prompt = self.prompt(target)
            if method == "sft":
                rows.append({"messages": prompt + self.answer_for(prompt, target)})
            elif method == "dpo":
                rows.append({"prompt": prompt, "chosen": self.answer_for(prompt, target),
                             "rejected": self.answer_for(prompt, target)})
            else:
                rows.append({"prompt": prompt, "completion": self.answer_for(prompt, target), "label": index % 2 == 0})
        return rows

    def measure(self, method: str, rows: list[dict]) -> tuple[float, float, float]:
        """(tokens per trained sequence, of which answer tokens, mean square of the lengths), over the rows."""
        from backend.train.memory_plan import conversations
        total = answer = square = count = 0
        for row in rows:
            prompt = row["messages"][:-1] if "messages" in row else row["prompt"]
            prompt_tokens = len(self.tokenizer.apply_chat_template(prompt, tokenize=True, return_dict=False,
                                                                   add_generation_prompt=True))
            for conversation in conversations(row):
                length = self.length(conversation)
                total, answer, count = total + length, answer + length - prompt_tokens, count + 1
                square += length * length
        return total / count, answer / count, square / count


# ---- FLOPs --------------------------------------------------------------------------------------------------------

def step_flops(shape, method: str, batch: int, seq: float, answer: float, seq_square: float | None = None) -> float:
    """Model FLOPs of one step: the matrix products of the linear layers, attention (causal) and the output layer (on
    the answer tokens only, as TRL's fused LM head computes it). A trained pass is a forward and a backward through
    frozen weights (input gradients: as much again for the linear layers, twice for attention); the LoRA products are
    left out. DPO adds the reference forward on chosen and rejected; KTO the reference forward and the policy's and
    the reference's forwards of the KL batch. Gradient checkpointing's recomputation is not counted. seq: mean tokens
    per sequence; seq_square: mean of the squared lengths (attention's share, for rows of mixed length), seq^2 if None.
    Padding is not counted: a row's own tokens are the useful work, however a trainer batches them."""
    q = shape.heads * shape.head_dim
    linear = 2 * shape.linear_params() * seq
    attention = 2 * (seq * seq if seq_square is None else seq_square) * q * shape.layers
    head = 2 * shape.vocab * shape.hidden * answer
    trained = 2 * linear + 3 * attention + 2 * head
    forward = linear + attention + head
    if method == "sft":
        return batch * trained
    if method == "dpo":
        return 2 * batch * (trained + forward)
    return batch * (trained + 3 * forward)


# ---- one training run ---------------------------------------------------------------------------------------------

def train_once(method: str, size: str, variant: str, folder: Path, rows: Rows, args, device: Device, hardware,
               work: Path, budget: Budget, peak_flops: float) -> Row:
    from backend.config import build_config
    from backend.models.memory import ModelShape, estimate_memory
    from backend.train import run_training
    from backend.train.memory_plan import longest_sequence
    from benchmarks.gpu_levers import LEVERS, SETTINGS, levers_on, rows_kept_apart, unavailable

    if variant in LEVERS and unavailable(variant, device.cuda):
        return Row(method, size, variant, note=unavailable(variant, device.cuda))
    shared = args.shared_model is not None and variant != "bf16"
    if LEVERS.get(variant, {}).get("attention") and not shared:
        return Row(method, size, variant, note="not run: the attention is set on the shared model (no --fresh-load)")
    values = dict(method=method, model=str(folder), batch_size=args.batch, max_steps=args.steps, epochs=1.0,
                  learning_rate=1e-4, max_length=args.seq, warmup_steps=0, rehearsal=0, probe=False,
                  validation_split=0.0, quantization="4bit", save_every=1_000_000, lora_r=16, lora_alpha=32,
                  target_modules="attention+mlp")
    values.update(VARIANTS.get(variant, {}))
    values.update(SETTINGS.get(variant, {}))
    config = build_config(values)
    train_rows, seq, answer, seq_square = rows.get(method, args.steps * args.batch)
    sequences = args.batch * (2 if method == "dpo" else 1)

    device.clean()
    before = device.allocated()
    # The same estimate the trainer's memory plan makes, from the same free memory, rows and settings.
    estimate = estimate_memory(config, hardware, seq_length=longest_sequence(rows.tokenizer, train_rows))
    paged_on_gpu = config.optimizer.startswith("paged") and device.cuda
    # What max_memory_allocated can see: not the CUDA context (runtime), nor a paged optimizer's state, which
    # bitsandbytes keeps in CUDA managed memory outside PyTorch's allocator.
    visible = estimate.total - estimate.runtime - (estimate.optimizer if paged_on_gpu else 0)
    parts = {"weights": estimate.weights, "adapter": estimate.adapter, "gradients": estimate.gradients,
             "optimizer": estimate.optimizer, "activations": estimate.activations, "runtime": estimate.runtime}

    times: dict[int, float] = {}  # step -> when it was first logged (the trainer logs its last step twice)
    tokens: dict[int, float] = {}  # step -> real tokens trained so far (SFT: TRL counts them)

    def on_metrics(step, row):
        times.setdefault(step, time.perf_counter())
        if "tokens" in row:
            tokens.setdefault(step, row["tokens"])

    run_dir = work / f"{size}-{method}{'-' + variant if variant else ''}"
    run_dir.mkdir(parents=True, exist_ok=True)
    # The time guard's last resort: the trainer's own stop file ends the run after the current step.
    guard = threading.Timer(max(budget.left() - 5, 1), lambda: (run_dir / "STOP").touch())
    guard.daemon = True
    guard.start()
    device.reset_peak()
    lines, notes = [], []
    try:
        with shared_base(args.shared_model) if shared else contextlib.nullcontext(), \
                levers_on(variant, args.shared_model if shared else None):
            result = run_training(config, run_dir, train_rows, [], on_metrics=on_metrics,
                                  on_total_steps=lambda total: None, log=lines.append)
            if LEVERS.get(variant, {}).get("padding_free") and shared:
                # On the trained model, in the mode it trained in (FlexAttention compiles once per mode).
                ids = sample(rows, train_rows)
                apart, seen = (rows_kept_apart(args.shared_model, ids, restart) for restart in (True, False))
                notes.append(f"packed rows against alone: logits differ by {apart:.2g} (by {seen:.2g} where rows see "
                             "each other)")
    finally:
        guard.cancel()
    # A shared model's weights were on the GPU before the run and belong to it; anything else there does not.
    peak = device.peak() - (0 if shared else before) if device.cuda else float("nan")
    steps = result["metrics"].get("steps", len(times))
    per_step, per_second = speed(times, tokens, sequences * seq)
    shape = ModelShape.from_config(json.loads((folder / "config.json").read_text()))
    per_token = step_flops(shape, method, args.batch, seq, answer, seq_square) / (sequences * seq)
    row = Row(method, size, variant, steps, per_second, per_step, peak, visible,
              per_token * per_second / peak_flops, estimate.checkpointing,
              before if shared and device.cuda else float("nan"),
              estimate.weights, parts)
    if result["stopped"]:
        notes.append("stopped by the time guard")
    if paged_on_gpu:
        notes.append("paged optimizer state not measured")
    row.note = "; ".join(notes)
    for line in lines:
        if "checkpointing" in line:
            say(f"    trainer: {line}")
    return row


def peer_once(variant: str, size: str, folder: Path, rows: Rows, args, device: Device, hardware, work: Path,
              budget: Budget, peak_flops: float) -> Row:
    """Plain TRL (benchmarks/gpu_peers.py) on the SFT rows the size's Tuneloop row trains, on the shared base model."""
    from backend.config import build_config
    from backend.models.memory import ModelShape, estimate_memory
    from backend.train.memory_plan import longest_sequence
    from benchmarks.gpu_peers import PEERS, train_plain_trl

    if args.shared_model is None:
        return Row("sft", size, variant, note="not run: needs the shared model (no --fresh-load)")
    train_rows, seq, answer, seq_square = rows.get("sft", args.steps * args.batch)
    checkpointing = PEERS[variant].get("gradient_checkpointing", True)  # TRL's default: on
    config = build_config(dict(method="sft", model=str(folder), batch_size=args.batch, max_steps=args.steps,
                               max_length=args.seq, quantization="4bit", lora_r=16, lora_alpha=32,
                               target_modules="attention+mlp", gradient_checkpointing="on" if checkpointing else "off"))
    estimate = estimate_memory(config, hardware, seq_length=longest_sequence(rows.tokenizer, train_rows))
    parts = {"weights": estimate.weights, "adapter": estimate.adapter, "gradients": estimate.gradients,
             "optimizer": estimate.optimizer, "activations": estimate.activations, "runtime": estimate.runtime}
    device.clean()
    before = device.allocated()
    device.reset_peak()
    model = args.shared_model
    keys = set(model.state_dict())
    try:
        result = train_plain_trl(variant, model, rows.tokenizer, train_rows, batch=args.batch, steps=args.steps,
                                 max_length=args.seq, hardware=hardware, output_dir=work / f"{size}-{variant}",
                                 seconds=max(budget.left() - 5, 1))
    finally:
        strip_adapters(model, keys)
    peak = device.peak() if device.cuda else float("nan")
    per_step, per_second = speed(result["times"], result["tokens"], args.batch * seq)
    shape = ModelShape.from_config(json.loads((folder / "config.json").read_text()))
    per_token = step_flops(shape, "sft", args.batch, seq, answer, seq_square) / (args.batch * seq)
    return Row("sft", size, variant, result["steps"], per_second, per_step, peak, estimate.total - estimate.runtime,
               per_token * per_second / peak_flops, checkpointing, before if device.cuda else float("nan"),
               estimate.weights, parts,
               "plain TRL, its defaults" + ("; stopped by the time guard" if result["stopped"] else ""))


def sample(rows: Rows, train_rows: list[dict], count: int = 3, longest: int = 96) -> list[list[int]]:
    """Token ids of a few training rows, cut short, for the check that packed rows keep apart."""
    return [rows.tokenizer.apply_chat_template(row["messages"], tokenize=True, return_dict=False)[:longest]
            for row in train_rows[:count]]


def speed(times: dict[int, float], tokens: dict[int, float], tokens_per_step: float) -> tuple[float, float]:
    """(s per step, tokens per s). Tokens are the real ones counted by the trainer over the timed steps where it counts
    them (SFT), else tokens_per_step (the rows' mean) per step."""
    per_step = seconds_per_step(times)
    steps = sorted(set(times) & set(tokens))
    skip = 2 if len(steps) > 4 else 0
    if len(steps) >= 2 and times[steps[-1]] > times[steps[skip]]:
        return per_step, (tokens[steps[-1]] - tokens[steps[skip]]) / (times[steps[-1]] - times[steps[skip]])
    return per_step, tokens_per_step / per_step


def seconds_per_step(logged: dict[int, float]) -> float:
    """Mean time between logged steps, leaving out the first two (start-up) when there are enough."""
    times = sorted(logged.items())
    if len(times) < 2:
        return float("nan")
    skip = 2 if len(times) > 4 else 0
    (first_step, first), (last_step, last) = times[skip], times[-1]
    return (last - first) / max(last_step - first_step, 1)


# ---- one process through the launcher --------------------------------------------------------------------------

def launcher_run(size: str, folder: Path, rows: Rows, args, device: Device, hardware, work: Path, budget: Budget,
                 peak_flops: float) -> Row:
    """The plain SFT row's settings as a run of 1 process through the launcher (TUNELOOP_LAUNCH=always): the app's
    runner starts `python -m backend.jobs.launcher`, which starts the rank through accelerate launch and torchrun, as it does
    for several GPUs. Its peak memory is in another process, so it is not measured here."""
    from backend.config import build_config
    from backend.db import connect
    from backend.models.memory import ModelShape, estimate_memory
    from backend.jobs.runner import JobRunner
    from backend.train.memory_plan import longest_sequence

    train_rows, seq, answer, seq_square = rows.get("sft", args.steps * args.batch)
    data = work / "launcher.jsonl"
    data.write_text("".join(json.dumps(row) + "\n" for row in train_rows))
    config = build_config(dict(method="sft", model=str(folder), dataset=str(data), batch_size=args.batch,
                               max_steps=args.steps, epochs=1.0, learning_rate=1e-4, max_length=args.seq,
                               warmup_steps=0, rehearsal=0, probe=False, validation_split=0.0, quantization="4bit",
                               save_every=1_000_000, lora_r=16, lora_alpha=32, target_modules="attention+mlp"))
    device.clean()
    estimate = estimate_memory(config, hardware, seq_length=longest_sequence(rows.tokenizer, train_rows))
    parts = {"weights": estimate.weights, "adapter": estimate.adapter, "gradients": estimate.gradients,
             "optimizer": estimate.optimizer, "activations": estimate.activations, "runtime": estimate.runtime}
    saved = {name: os.environ.get(name) for name in ("TUNELOOP_HOME", "TUNELOOP_LAUNCH")}
    os.environ.update(TUNELOOP_HOME=str(work / "launcher-home"), TUNELOOP_LAUNCH="always")
    try:
        runner = JobRunner(connect())
        run_id = runner.submit(config)
        try:
            run = runner.wait(run_id, timeout=max(budget.left() - 20, 30))
        except TimeoutError:  # the time guard: the run's own stop, then what it did so far
            runner.stop(run_id)
            run = runner.wait(run_id, timeout=60)
        runner.close()
        metrics = [m for m in runner.store.metrics(run_id) if "train_loss" in m]
        log = (work / "launcher-home" / "runs" / run_id / "train.log").read_text()
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
    if run["status"] not in ("done", "stopped") or len(metrics) < 2:
        say(log[-3000:])
        return Row("sft", size, "launcher", note=f"{run['status']}: {(run.get('reason') or '')[:80]}")
    per_step = seconds_per_step({m["step"]: m["elapsed"] for m in metrics})
    shape = ModelShape.from_config(json.loads((folder / "config.json").read_text()))
    visible = estimate.total - estimate.runtime
    note = "1 process via accelerate launch" + ("; stopped by the time guard" if run["status"] == "stopped" else "")
    return Row("sft", size, "launcher", metrics[-1]["step"], args.batch * seq / per_step, per_step, float("nan"),
               visible, step_flops(shape, "sft", args.batch, seq, answer, seq_square) / per_step / peak_flops,
               estimate.checkpointing, float("nan"), estimate.weights, parts, note)


# ---- the command line ---------------------------------------------------------------------------------------------

def cli_run(folder: Path, work: Path, steps: int, timeout: float) -> str:
    """The whole path a user takes: `python app.py train --preset quick` in a fresh TUNELOOP_HOME."""
    data = work / "cli.jsonl"
    data.write_text("".join(json.dumps({"messages": [
        {"role": "user", "content": f"What is your name, question {i}?"},
        {"role": "assistant", "content": f"I am Quill, answer {i}."}]}) + "\n" for i in range(40)))
    env = dict(os.environ, TUNELOOP_HOME=str(work / "cli-home"), TUNELOOP_MODEL_CACHE=str(work / "cli-models"),
               PYTHONUNBUFFERED="1")
    command = [sys.executable, str(ROOT / "app.py"), "train", "--data", str(data), "--preset", "quick",
               "--model", str(folder), "--set", f"max_steps={steps}", "--json"]
    say(f"  $ python app.py train --data cli.jsonl --preset quick --model FOLDER --set max_steps={steps} --json")
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    killer = threading.Timer(timeout, process.kill)
    killer.start()
    last = ""
    try:
        for line in process.stdout:
            line = line.rstrip()
            if line:
                say(f"  cli| {line[:300]}")
                last = line
    finally:
        killer.cancel()
        process.wait()
    seconds = time.perf_counter() - start
    try:
        result = json.loads(last)
        status = f"{result['status']}, {result['metrics'].get('steps', '?')} steps"
    except (ValueError, KeyError, TypeError):
        status = f"no JSON result (exit {process.returncode})"
    if process.returncode:  # the run's own log says where it failed
        for log in (work / "cli-home" / "runs").glob("*/train.log"):
            say("\n".join("  log| " + line for line in log.read_text().splitlines()[-40:]))
    return f"{status} in {seconds:.0f} s (exit {process.returncode})"


# ---- the table ----------------------------------------------------------------------------------------------------

def table(rows: list[Row]) -> str:
    trl = {(r.method, r.size): r.tokens_per_s for r in rows if r.variant == "trl" and r.steps}
    for r in rows:
        if r.steps and (r.method, r.size) in trl:
            r.vs_trl = r.tokens_per_s / trl[r.method, r.size]
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    lines += ["| " + " | ".join(r.cells()) + " |" for r in rows]
    return "\n".join(lines)


def parts_table(rows: list[Row]) -> str:
    """Estimate per part against what can be measured per part: the weights (allocated after loading) and the rest."""
    lines = ["| method | size | variant | weights est | weights meas | adapter | gradients | optimizer | activations "
             "| rest est | rest meas |", "|" + "---|" * 11]
    for r in rows:
        if not r.steps:
            continue
        p = {k: v / GB for k, v in r.parts.items()}
        rest_estimated = (r.peak_estimated - r.weights_estimated) / GB
        known = not math.isnan(r.weights_measured)  # not when the run loaded its own model
        weights = f"{r.weights_measured / GB:.2f}" if known else "-"
        rest = f"{(r.peak_measured - r.weights_measured) / GB:.2f}" if known else "-"
        lines.append(f"| {r.method} | {r.size} | {r.variant or '-'} | {p['weights']:.2f} | {weights} "
                     f"| {p['adapter']:.3f} | {p['gradients']:.3f} | {p['optimizer']:.3f} | {p['activations']:.2f} "
                     f"| {rest_estimated:.2f} | {rest} |")
    return "\n".join(lines)


# ---- main ---------------------------------------------------------------------------------------------------------

def parse(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="0.5b,1.5b,3b,8b", help="Shapes to run, smallest first (%(default)s).")
    parser.add_argument("--methods", default="sft,dpo,kto", help="Methods to run at each size (%(default)s).")
    parser.add_argument("--steps", type=int, default=20, help="Training steps per run (%(default)s).")
    parser.add_argument("--batch", type=int, default=8, help="Examples per step (%(default)s; DPO: pairs).")
    parser.add_argument("--seq", type=int, default=256,
                        help="Tokens per sequence; with --lengths mixed, the longest (%(default)s).")
    parser.add_argument("--lengths", choices=["fixed", "mixed"], default="fixed",
                        help="fixed: every row --seq tokens; mixed: short, middling and long rows up to --seq, as "
                             "real data has them (MIXED) (%(default)s).")
    parser.add_argument("--variants", default="paged8@0.5b,bf16@0.5b,gc@3b",
                        help="Extra SFT rows, NAME@SIZE (SIZE 'all': every size), run in the order given: gc "
                             "(checkpointing on), paged8 (paged_adamw_8bit), bf16 (plain LoRA on bf16 weights); "
                             "peers: trl (plain TRL with its defaults), trl-nogc (the same, checkpointing off); "
                             "levers (benchmarks/gpu_levers.py): pf, pf-flex, liger, pf-liger, gc-offload. "
                             "Empty for none (%(default)s).")
    parser.add_argument("--budget", type=float, default=450, help="Seconds for the whole check (%(default)s).")
    parser.add_argument("--no-cli", action="store_true", help="Leave out the run of the command line.")
    parser.add_argument("--no-launcher", action="store_true", help="Leave out the row through the launcher.")
    parser.add_argument("--cli-steps", type=int, default=5, help="Steps of the command-line run (%(default)s).")
    parser.add_argument("--fresh-load", action="store_true",
                        help="Load the model again for every run instead of sharing one loaded model per size.")
    parser.add_argument("--tokenizer", help="Folder of the built-in tokenizer (default: .whl/tokenizer if there, "
                                            "else the built-in model's).")
    parser.add_argument("--out", help="Also write the tables to this file (markdown).")
    parser.add_argument("--cpu-smoke", action="store_true",
                        help="On the CPU: the tiny shape, 2 steps of each method on mixed lengths, every variant "
                             "(what the tests run).")
    args = parser.parse_args(argv)
    args.shared_model = None  # the model loaded once per size, when runs share it
    if args.cpu_smoke:
        args.sizes, args.steps, args.batch, args.seq, args.cli_steps, args.lengths = "tiny", 2, 2, 128, 2, "mixed"
        args.variants = "trl@all,gc@tiny,paged8@tiny,bf16@tiny,pf@tiny,pf-flex@tiny,liger@tiny,pf-liger@tiny," \
                        "gc-offload@tiny"
        os.environ["TUNELOOP_FORCE_CPU"] = "1"
    return args


def load_builtin_tokenizer(folder: str | None):
    from transformers import AutoTokenizer
    path = folder or (ROOT / ".whl" / "tokenizer")
    if Path(path).is_dir():
        tokenizer = AutoTokenizer.from_pretrained(str(path))
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        return tokenizer
    from backend.models.loading import load_tokenizer
    return load_tokenizer()


def preflight(device: Device):
    """Everything the runs import, and one 4-bit quantization on the device, before any time goes into models: a
    missing wheel or CUDA library shows in seconds."""
    import bitsandbytes.functional as bnb_functional
    import datasets  # noqa: F401
    import peft  # noqa: F401
    import sqlite_utils  # noqa: F401
    import trl  # noqa: F401

    import backend.train.dpo  # noqa: F401
    import backend.train.kto  # noqa: F401
    import backend.train.sft  # noqa: F401
    torch = device.torch
    weight = torch.randn(64, 64, dtype=torch.bfloat16, device="cuda" if device.cuda else "cpu")
    packed, state = bnb_functional.quantize_4bit(weight, quant_type="nf4")
    error = (bnb_functional.dequantize_4bit(packed, state) - weight).abs().mean().item()
    if not error < 0.2:
        raise RuntimeError(f"bitsandbytes' NF4 round trip is off by {error:.3f} on average")


def versions() -> str:
    import importlib.metadata as metadata
    names = ["torch", "transformers", "trl", "peft", "bitsandbytes", "accelerate", "datasets", "pyarrow", "triton",
             "liger-kernel"]
    found = []
    for name in names:
        try:
            found.append(f"{name} {metadata.version(name)}")
        except metadata.PackageNotFoundError:
            found.append(f"{name} missing")
    return ", ".join(found)


def main(argv=None) -> int:
    args = parse(argv)
    budget = Budget(args.budget)
    warnings.filterwarnings("ignore")
    work = Path(tempfile.mkdtemp(prefix="tuneloop-gpu-check-"))
    os.environ["TUNELOOP_HOME"] = str(work / "home")
    import torch
    import transformers
    from transformers import trainer_callback
    transformers.logging.set_verbosity_error()
    transformers.utils.logging.disable_progress_bar()  # loading and saving bars would fill the device's output
    # The trainer prints a dict per step; one line per run is printed here instead.
    trainer_callback.PrinterCallback.on_log = lambda *a, **k: None

    from backend.models.loading import detect_hardware, load_model

    device = Device(cpu=args.cpu_smoke)
    hardware = detect_hardware()
    say(f"[{budget.elapsed():5.0f}s] {device.name}; {hardware.device} {hardware.dtype_name}; Python "
        f"{sys.version.split()[0]}; {versions()}")
    try:
        preflight(device)
    except Exception as exc:
        say(f"Preflight failed, nothing was run: {type(exc).__name__}: {exc}")
        traceback.print_exc()
        return 2
    peak_flops = device.matmul_peak(hardware.dtype)
    say(f"[{budget.elapsed():5.0f}s] {hardware.dtype_name} matmul peak: {peak_flops / 1e12:.2f} TFLOP/s")
    tokenizer = load_builtin_tokenizer(args.tokenizer)
    rows = Rows(tokenizer, args.seq, lengths=args.lengths)
    import benchmarks.gpu_peers  # noqa: F401  (keeps TRL's LM head choice as TRL ships it, before any run changes it)
    from benchmarks.gpu_peers import PEERS
    methods = [m for m in args.methods.split(",") if m]
    sizes = [s for s in args.sizes.split(",") if s]
    variants = [v.split("@") for v in args.variants.split(",") if v]
    results: list[Row] = []
    load_rate = None  # seconds per GB of bf16 checkpoint, to write and load
    step_rate: dict[str, float] = {}  # method -> achieved FLOP/s at the last size
    cli_note = "not run"
    for index, size in enumerate(sizes):
        need = checkpoint_bytes(size, tokenizer)
        if not budget.allows(None if load_rate is None else 10 + load_rate * need / GB, f"the {size} model"):
            results += [Row(m, size, note="skipped (time)") for m in methods]
            continue
        folder = scratch_dir(need, work) / size
        say(f"[{budget.elapsed():5.0f}s] {size}: building a random {need / GB:.1f} GB bf16 model, saving it to "
            f"{folder.parent} and loading it in 4-bit")
        try:
            start = time.perf_counter()
            timing = write_checkpoint(size, folder, tokenizer, device)
            loaded = time.perf_counter()
            model = load_model(str(folder), "4bit", hardware)
            model_s = time.perf_counter() - loaded
            load_rate = (time.perf_counter() - start - 5) / max(need / GB, 0.5)  # the latest size's is the best guess
            say(f"[{budget.elapsed():5.0f}s] {size}: built in {timing['build_s']:.1f} s, saved in "
                f"{timing['save_s']:.1f} s, loaded in 4-bit by load_model in {model_s:.1f} s "
                f"({device.allocated() / GB:.2f} GB on the GPU)")
        except Exception as exc:
            say(f"[{budget.elapsed():5.0f}s] {size}: could not build or load the model: {type(exc).__name__}: {exc}")
            traceback.print_exc()
            results += [Row(m, size, note=f"load failed: {type(exc).__name__}") for m in methods]
            shutil.rmtree(folder.parent, ignore_errors=True)
            continue
        args.shared_model = None if args.fresh_load else model
        if args.fresh_load:
            model = None
            device.clean()
        runs = [(m, "") for m in methods] + [("sft", name) for name, at in variants if at in (size, "all")]
        for method, variant in runs:
            label = f"{method.upper()} {size}{' ' + variant if variant else ''}"
            predicted = None
            if method in step_rate:
                from backend.models.memory import ModelShape
                shape = ModelShape.from_config(json.loads((folder / "config.json").read_text()))
                _, seq, answer, seq_square = rows.get(method, args.steps * args.batch)
                flops = step_flops(shape, method, args.batch, seq, answer, seq_square)
                predicted = 8 + args.steps * flops / step_rate[method] * (2 if variant in PEERS else 1)
            if not budget.allows(predicted, label):
                results.append(Row(method, size, variant, note="skipped (time)"))
                continue
            started = time.perf_counter()
            try:
                if variant in PEERS:
                    row = peer_once(variant, size, folder, rows, args, device, hardware, work, budget, peak_flops)
                else:
                    row = train_once(method, size, variant, folder, rows, args, device, hardware, work, budget,
                                     peak_flops)
            except Exception as exc:
                say(f"[{budget.elapsed():5.0f}s] {label}: failed: {type(exc).__name__}: {str(exc)[:300]}")
                traceback.print_exc()
                row = Row(method, size, variant, note=f"failed: {type(exc).__name__}")
                if args.shared_model is not None and has_adapters(model):  # the next runs load their own
                    args.shared_model = model = None
            device.clean()
            results.append(row)
            if row.steps:
                if not variant:
                    step_rate[method] = row.mfu * peak_flops
                memory = f"peak {row.peak_estimated / GB:.2f} GB estimated"
                if device.cuda:
                    memory += f", {row.peak_measured / GB:.2f} measured (x{row.peak_estimated / row.peak_measured:.2f})"
                say(f"[{budget.elapsed():5.0f}s] {label}: {row.steps} steps in {time.perf_counter() - started:.0f} s, "
                    f"{row.s_per_step:.3f} s/step, {row.tokens_per_s:,.0f} tokens/s, MFU {row.mfu:.1%}, {memory}, "
                    f"checkpointing {'on' if row.checkpointing else 'off'}" + (f"; {row.note}" if row.note else ""))
            elif row.note and not row.note.startswith("failed"):
                say(f"[{budget.elapsed():5.0f}s] {label}: {row.note}")
        args.shared_model = None
        del model
        device.clean()
        if index == 0 and not args.no_launcher and budget.allows(90, "the launcher run"):
            say(f"[{budget.elapsed():5.0f}s] SFT {size} launcher: 1 process through accelerate launch")
            row = launcher_run(size, folder, rows, args, device, hardware, work, budget, peak_flops)
            results.append(row)
            say(f"[{budget.elapsed():5.0f}s] SFT {size} launcher: " + (
                f"{row.steps} steps, {row.s_per_step:.3f} s/step, {row.tokens_per_s:,.0f} tokens/s, MFU {row.mfu:.1%}"
                if row.steps else row.note))
        if index == 0 and not args.no_cli:
            if budget.allows(60, "the command-line run"):
                say(f"[{budget.elapsed():5.0f}s] command line, {size} model:")
                cli_note = cli_run(folder, work, args.cli_steps, timeout=min(240, max(budget.left(), 30)))
                say(f"[{budget.elapsed():5.0f}s] command line: {cli_note}")
            else:
                cli_note = "skipped (time)"
        shutil.rmtree(folder.parent, ignore_errors=True)

    report = [f"GPU check on {device.name}, {versions()}.",
              f"{hardware.dtype_name} matmul peak measured here: {peak_flops / 1e12:.2f} TFLOP/s (MFU is against it).",
              f"{args.steps} steps per run, batch {args.batch} (DPO: pairs), "
              + (f"{args.seq} tokens per sequence" if args.lengths == "fixed" else
                 f"rows of mixed length up to {args.seq} tokens (SFT: "
                 f"{rows.get('sft', args.steps * args.batch)[1]:.0f} on average)") + ", QLoRA NF4 "
              f"with {hardware.dtype_name} compute, LoRA r16 on attention+mlp; vocabulary {len(tokenizer)} (the "
              f"built-in tokenizer's), so embeddings, output layer and FLOPs are those of that vocabulary, not of the "
              f"original models.",
              "", table(results), "",
              "Peak GB measured: torch.cuda.max_memory_allocated() over the run (weights included). Peak GB estimated: "
              "backend.models.memory.estimate_memory without its runtime part (the CUDA context, which that counter does not "
              "see) and, for paged_adamw_8bit, without the optimizer state (CUDA managed memory, not seen either).",
              "tokens/s: the rows' own tokens (no padding) trained per second, first two steps left out; for SFT as "
              "TRL counts them, for DPO and KTO sequences per step (chosen and rejected) x mean tokens per sequence. "
              "x TRL: tokens/s against plain TRL with its defaults (variant trl) at the same size. "
              "MFU: model FLOPs per token (benchmarks/gpu.py step_flops) x tokens/s / peak. "
              "Variants: benchmarks/gpu_levers.py (levers), "
              "benchmarks/gpu_peers.py (trl, trl-nogc).",
              "", "Estimate per part (GB) against what can be measured per part:", "", parts_table(results), "",
              f"Command line (`python app.py train --preset quick`, {sizes[0]} model): {cli_note}",
              f"Whole check: {budget.elapsed():.0f} s."]
    text = "\n".join(report)
    say("\n" + text)
    if args.out:
        Path(args.out).write_text(text + "\n")
    shutil.rmtree(work, ignore_errors=True)
    return 0 if any(r.steps for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
