"""Will a run fit in memory? A rough, cautious estimate made before training, from the model's config.json.

Parts: the base weights (4-bit or 16/32-bit), the LoRA adapter, its gradients, AdamW's two states per adapter
weight, the activations kept for the backward pass (no gradient checkpointing), and the runtime itself.
They are compared with the GPU's free memory, or the machine's available memory when training on the CPU.
"""
import json
from dataclasses import dataclass
from pathlib import Path

from backend.config import TARGET_MODULES, RunConfig
from backend.errors import ModelError

GB = 1024 ** 3
TIGHT_SHARE = 0.85  # above this share of the free memory a run is 'tight': it may swap, slow down or fail
RUNTIME_BYTES = {"cuda": int(0.6 * GB), "cpu": int(0.7 * GB)}  # CUDA context / Python, torch and the libraries
REPLAY_TOKENS = 160  # everyday answers mixed into SFT data are up to about this long
# SmolLM2-135M-Instruct, for estimating before the built-in model has been unpacked for the first time.
EMBEDDED_CONFIG = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                   "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
                   "tie_word_embeddings": True}
UNGATED_MLP = {"gpt2", "gpt_neox", "gptj", "opt", "bloom", "falcon", "phi", "starcoder2", "gpt_bigcode"}


@dataclass
class MemoryEstimate:
    weights: int
    adapter: int
    gradients: int
    optimizer: int
    activations: int
    runtime: int
    total: int
    available: int
    where: str  # "GPU" or "computer"
    verdict: str  # fits | tight | too_big
    message: str

    def parts(self) -> list[tuple[str, int]]:
        return [("Model weights", self.weights), ("Adapter (the part that learns)", self.adapter),
                ("Gradients", self.gradients), ("Optimizer state", self.optimizer),
                ("Activations (kept for learning)", self.activations), ("Program and libraries", self.runtime)]


@dataclass
class ModelShape:
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab: int
    tied: bool
    gated: bool
    experts: int = 1

    @classmethod
    def from_config(cls, cfg: dict) -> "ModelShape":
        cfg = cfg.get("text_config") or cfg
        pick = lambda *keys, default=None: next((cfg[k] for k in keys if cfg.get(k)), default)  # noqa: E731
        hidden = pick("hidden_size", "n_embd", "d_model")
        layers = pick("num_hidden_layers", "n_layer", "num_layers")
        heads = pick("num_attention_heads", "n_head", default=1)
        vocab = pick("vocab_size")
        if not (hidden and layers and vocab):
            raise ModelError("The model's config.json does not give its size (hidden_size, num_hidden_layers, "
                             "vocab_size), so its memory use cannot be estimated.")
        return cls(hidden=hidden, intermediate=pick("intermediate_size", "n_inner", "ffn_dim", default=4 * hidden),
                   layers=layers, heads=heads, kv_heads=pick("num_key_value_heads", default=heads),
                   head_dim=pick("head_dim", default=hidden // heads), vocab=vocab,
                   tied=bool(cfg.get("tie_word_embeddings", True)), gated=cfg.get("model_type") not in UNGATED_MLP,
                   experts=pick("num_local_experts", "num_experts", default=1))

    def linear_shapes(self) -> dict[str, tuple[int, int]]:
        """(in, out) of each linear layer in one transformer block."""
        h, q, kv, i = self.hidden, self.heads * self.head_dim, self.kv_heads * self.head_dim, self.intermediate
        shapes = {"q_proj": (h, q), "k_proj": (h, kv), "v_proj": (h, kv), "o_proj": (q, h), "up_proj": (h, i),
                  "down_proj": (i, h)}
        if self.gated:
            shapes["gate_proj"] = (h, i)
        return shapes

    def linear_params(self) -> int:
        per_layer = 0
        for name, (n_in, n_out) in self.linear_shapes().items():
            per_layer += n_in * n_out * (self.experts if name in ("gate_proj", "up_proj", "down_proj") else 1)
        return per_layer * self.layers

    def other_params(self) -> int:
        """Embeddings, the output layer when not tied, norms: never quantized."""
        return self.vocab * self.hidden * (1 if self.tied else 2) + (2 * self.layers + 1) * self.hidden

    def lora_params(self, rank: int, targets: str) -> int:
        shapes = self.linear_shapes()
        names = TARGET_MODULES[targets] or tuple(shapes)  # None: every linear layer of the block
        return self.layers * sum(rank * sum(shapes[n]) for n in names if n in shapes)


def estimate_memory(config: RunConfig, hardware=None, available: int | None = None,
                    seq_length: int | None = None, model_cfg: dict | None = None) -> MemoryEstimate:
    """seq_length: the longest example in the data, when known (batches are padded to their longest row only).
    model_cfg: the model's config.json fields, for a model not on disk (a catalogue entry); default: read them."""
    if hardware is None:
        from backend.models import detect_hardware
        hardware = detect_hardware()
    shape = ModelShape.from_config(model_cfg or model_config(config.model))
    quantization = hardware.quantization(config.quantization)
    dtype_bytes = 4 if hardware.dtype_name == "float32" else 2

    if quantization == "4bit":  # NF4: half a byte per weight plus about 3% for the quantization constants
        weights = int(shape.linear_params() * 0.5 * 1.03) + shape.other_params() * dtype_bytes
    else:
        weights = (shape.linear_params() + shape.other_params()) * dtype_bytes
    lora = shape.lora_params(config.lora_r, config.target_modules)
    adapter, gradients, optimizer = lora * 4, lora * 4, lora * 8  # fp32 adapter, its gradients, AdamW's two states

    seq = config.max_length if seq_length is None else min(config.max_length, max(seq_length, 1))
    if config.method in ("sft", "kto") and config.keep_everyday:
        seq = min(config.max_length, max(seq, REPLAY_TOKENS))
    rows = config.batch_size * (2 if config.method in ("dpo", "kto") else 1)  # chosen+rejected; KTO's KL batch
    tokens = rows * seq
    h, kv, i = shape.hidden, shape.kv_heads * shape.head_dim, shape.intermediate
    # Per token and layer: what the block keeps for backward, plus the LoRA path's float32 copies. Calibrated
    # against the peak memory of SmolLM2 LoRA r16 steps on a CPU, fp32 and bf16, 128 to 1024 tokens (within 5%).
    per_token_layer = (16 * h + 4 * kv + 6 * i) * dtype_bytes + 16 * h * 4
    logits = shape.vocab * (8 + dtype_bytes)  # the logits, their fp32 copy for the loss, and its gradient
    activations = tokens * (per_token_layer * shape.layers + logits)

    runtime = RUNTIME_BYTES["cuda" if hardware.device == "cuda" else "cpu"]
    total = weights + adapter + gradients + optimizer + activations + runtime
    where = "GPU" if hardware.device == "cuda" else "computer"
    if available is None:
        available = free_memory(hardware.device)
    verdict = "fits" if total <= TIGHT_SHARE * available else ("tight" if total <= available else "too_big")
    estimate = MemoryEstimate(weights, adapter, gradients, optimizer, activations, runtime, total, available, where,
                              verdict, "")
    estimate.message = explain(estimate, config, quantization, hardware.device)
    return estimate


def explain(e: MemoryEstimate, config: RunConfig, quantization: str, device: str) -> str:
    head = f"This run needs about {gb(e.total)} of the {gb(e.available)} free on this {e.where}"
    if e.verdict == "fits":
        return head + ": it fits."
    biggest = max(e.parts(), key=lambda part: part[1])[0]
    if biggest.startswith("Activations"):
        fix = (f"Lower the batch size (now {config.batch_size}) and raise gradient accumulation to keep the same "
               f"effective batch, or lower the max length (now {config.max_length} tokens).")
    elif biggest.startswith("Model weights") and quantization != "4bit" and device == "cuda":
        fix = "Use 4-bit quantization (QLoRA) in the Advanced settings, or a smaller model."
    elif biggest.startswith("Model weights"):
        fix = "Pick a smaller model, or train on a computer with more memory."
    else:
        fix = "Lower the LoRA rank, the batch size or the max length."
    if e.verdict == "tight":
        return f"{head}: close to the limit, so it may slow down or fail. {fix}"
    return f"{head}: it will not fit ({biggest.lower()} take the most). {fix}"


def gb(n: int) -> str:
    return f"{n / GB:.1f} GB" if n >= GB / 10 else f"{n / 1024 ** 2:.0f} MB"


def model_config(name: str) -> dict:
    """The config.json of a model, without loading (or unpacking, or downloading) it."""
    from backend import workspace
    from backend.models import EMBEDDED_DIRNAME, is_embedded

    if is_embedded(name):
        path = workspace.model_cache() / EMBEDDED_DIRNAME / "config.json"
        return json.loads(path.read_text()) if path.exists() else dict(EMBEDDED_CONFIG)
    folder = Path(name).expanduser()
    if not folder.exists():
        folder = workspace.model_cache() / name.replace("/", "--")  # a hub model downloaded before
    if not (folder / "config.json").is_file():
        from backend.catalogue import find
        entry = find(name)
        if entry:  # a catalogue model not downloaded yet: its shape is known
            return dict(entry.config)
        raise ModelError(f"Model '{name}' not found: give a folder that holds config.json and .safetensors weights, "
                         "or use the built-in model.")
    try:
        return json.loads((folder / "config.json").read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"The config.json in '{folder}' cannot be read ({exc}).") from None


def free_memory(device: str) -> int:
    """Free GPU memory, or the memory the system says is available for new programs (MemAvailable)."""
    if device == "cuda":
        import torch
        return int(torch.cuda.mem_get_info()[0])
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os
    return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
