"""Will a run fit in memory? A rough, cautious estimate made before training, from the model's config.json.

Parts: the base weights (4-bit or 16/32-bit), the LoRA adapter, its gradients, AdamW's two states per adapter
weight (32/16-bit, or 8-bit with paged_adamw_8bit), the activations kept for the backward pass (all layers', or with
gradient checkpointing each layer's input and one layer at a time), and the runtime itself.
They are compared with the GPU's free memory, or the machine's available memory when training on the CPU.
With several processes (backend/jobs/launcher.py) each takes its share of a step's examples (config.batch_plan), so each
keeps fewer activations; with DDP each still holds the whole model, with FSDP or DeepSpeed ZeRO-3 the weights,
gradients and optimizer state are split between them. On a GPU the estimate is per card; on the CPU every process takes
from the same memory, so the estimate is for all of them together.
On a GPU everything but the runtime is what torch.cuda.max_memory_allocated() measures; the runtime stands for the
CUDA context and libraries, which it does not see (benchmarks/gpu.py prints estimate against measurement per part).
"""
import json
import math
from dataclasses import dataclass
from pathlib import Path

from backend.config import METHOD_TABLE, TARGET_MODULES, RunConfig, batch_plan
from backend.errors import ModelError
from backend.words import size_text

GB = 1024 ** 3
TIGHT_SHARE = 0.85  # above this share of the free memory a run is 'tight': it may swap, slow down or fail
RUNTIME_BYTES = {"cuda": int(0.6 * GB), "cpu": int(0.7 * GB)}  # CUDA context / Python, torch and the libraries
REHEARSAL_TOKENS = 160  # everyday answers mixed into SFT data are up to about this long
NF4_BYTES_PER_WEIGHT = 0.5 * 1.03  # 4 bits, plus double-quantized constants: 1 byte per 64 weights, 4 per 16384
ADAM_8BIT_MIN_SIZE = 4096  # bitsandbytes keeps 32-bit optimizer state for smaller tensors
ADAM_8BIT_BLOCK = 256  # and one float32 scale per block of this many values per state
LOGIT_TILE = (4096, 32768)  # tokens x vocabulary: the logits TRL's fused LM head computes at a time (16-bit)
# SmolLM2-135M-Instruct, for estimating before the built-in model has been unpacked for the first time.
EMBEDDED_CONFIG = {"model_type": "llama", "hidden_size": 576, "intermediate_size": 1536, "num_hidden_layers": 30,
                   "num_attention_heads": 9, "num_key_value_heads": 3, "head_dim": 64, "vocab_size": 49152,
                   "tie_word_embeddings": True}
STRATEGY_NAMES = {"ddp": "DDP", "fsdp": "FSDP", "deepspeed-zero3": "DeepSpeed ZeRO-3"}
GATHERED_LAYERS = 2  # FSDP/ZeRO-3 gather one block's weights to compute it, and fetch the next one meanwhile
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
    checkpointing: bool = False  # the estimate assumes gradient checkpointing
    processes: int = 1  # on this computer
    strategy: str = "ddp"
    batch: str = ""  # per-device x processes x accumulation, in words (config.BatchPlan.describe)

    def layout(self) -> str:
        """How the run is spread over devices, in words (shown beside the estimate, and in the run's log)."""
        text = f"Batch: {self.batch}."
        if self.processes > 1 and self.where == "GPU":
            share = "each card holds the whole model" if self.strategy == "ddp" else "the model is split across them"
            text += f" {self.processes} GPUs, {STRATEGY_NAMES[self.strategy]}: {share}; the figures are per card."
        elif self.processes > 1:
            text += f" {self.processes} processes share this computer's memory; the figures are for all of them."
        return text

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
        return self.layers * sum(self.lora_tensors(rank, targets))

    def lora_targets(self, targets: str) -> list[str]:
        """The linear layers of a block that get an adapter (config.TARGET_MODULES; None: all of them)."""
        shapes = self.linear_shapes()
        return [n for n in (TARGET_MODULES[targets] or tuple(shapes)) if n in shapes]

    def lora_tensors(self, rank: int, targets: str) -> list[int]:
        """Sizes of the adapter's A (rank x in) and B (out x rank) matrices in one transformer block."""
        shapes = self.linear_shapes()
        return [rank * size for n in self.lora_targets(targets) for size in shapes[n]]

    def lora_inputs(self, targets: str) -> dict[str, int]:
        """Input width of each linear layer that gets an adapter."""
        shapes = self.linear_shapes()
        return {n: shapes[n][0] for n in self.lora_targets(targets)}


def estimate_memory(config: RunConfig, hardware=None, available: int | None = None,
                    seq_length: int | None = None, checkpointing: bool | None = None,
                    model_cfg: dict | None = None, processes: int | None = None) -> MemoryEstimate:
    """seq_length: the longest example in the data, when known (batches are padded to their longest row only).
    checkpointing: None follows config.gradient_checkpointing, where 'auto' turns it on only when the run would
    not fit without it, or where it costs no time (checkpointing_is_free); the training code makes the same choice
    from this estimate.
    model_cfg: the model's config.json fields, for a model not on disk (a catalogue entry); default: read them.
    processes: training processes on this computer; default: the config's (0: one per GPU here)."""
    if hardware is None:
        from backend.models.loading import detect_hardware
        hardware = detect_hardware()
    if available is None:
        available = free_memory(hardware.device)
    if processes is None:
        from backend.ranks import local_processes
        processes = local_processes(config, hardware)
    if checkpointing is None:
        if config.gradient_checkpointing == "auto" and not checkpointing_is_free(config.method, hardware.device):
            plain = estimate_memory(config, hardware, available, seq_length, checkpointing=False, model_cfg=model_cfg,
                                    processes=processes)
            if plain.verdict == "fits":
                return plain
        checkpointing = config.gradient_checkpointing != "off"
    world = processes * config.machines
    plan = batch_plan(config, world)
    shape = ModelShape.from_config(model_cfg or model_config(config.model))
    quantization = hardware.quantization(config.quantization)
    dtype_bytes = 4 if hardware.dtype_name == "float32" else 2

    if quantization == "4bit":  # NF4; embeddings, output layer and norms stay 16/32-bit
        blocks = int(shape.linear_params() * NF4_BYTES_PER_WEIGHT)
    else:
        blocks = shape.linear_params() * dtype_bytes
    weights = blocks + shape.other_params() * dtype_bytes
    lora = shape.lora_params(config.lora_r, config.target_modules)
    lora_bytes = 2 if quantization == "4bit" else 4  # TRL casts a QLoRA adapter to bf16; PEFT keeps LoRA's in fp32
    adapter = gradients = lora * lora_bytes
    optimizer = optimizer_bytes(shape, config, lora_bytes)

    seq = config.max_length if seq_length is None else min(config.max_length, max(seq_length, 1))
    if METHOD_TABLE[config.method].rehearses and config.rehearsal:
        seq = min(config.max_length, max(seq, REHEARSAL_TOKENS))
    # DPO runs chosen and rejected in one batch. KTO's KL batch runs without gradients, so it keeps nothing.
    tokens = plan.per_device * (2 if config.method == "dpo" else 1) * seq
    activations = activation_bytes(shape, config, hardware.device, quantization, dtype_bytes, tokens, checkpointing)

    runtime = RUNTIME_BYTES["cuda" if hardware.device == "cuda" else "cpu"]
    if config.strategy != "ddp" and world > 1:
        weights, adapter, gradients, optimizer = sharded(shape, blocks, weights - blocks, adapter, gradients,
                                                         optimizer, world)
    # On a GPU each process has a card of its own; on the CPU they all take from the same memory.
    copies = 1 if hardware.device == "cuda" else processes
    weights, adapter, gradients, optimizer, activations, runtime = (
        copies * part for part in (weights, adapter, gradients, optimizer, activations, runtime))
    total = weights + adapter + gradients + optimizer + activations + runtime
    where = "GPU" if hardware.device == "cuda" else "computer"
    verdict = "fits" if total <= TIGHT_SHARE * available else ("tight" if total <= available else "too_big")
    estimate = MemoryEstimate(weights, adapter, gradients, optimizer, activations, runtime, total, available, where,
                              verdict, "", checkpointing, processes, config.strategy, plan.describe())
    estimate.message = explain(estimate, config, quantization, hardware.device)
    return estimate


def sharded(shape: ModelShape, blocks: int, other: int, adapter: int, gradients: int, optimizer: int, world: int):
    """FSDP or ZeRO-3 over `world` processes: each keeps 1/world of the blocks' weights, the adapter, its gradients and
    the optimizer state, plus, while it computes, whole copies of the block it is at and the next one, and of the
    embeddings and output layer (the outermost unit, kept whole from the forward pass to the backward pass)."""
    gathered = min(GATHERED_LAYERS, shape.layers) * blocks // shape.layers
    return (blocks // world + gathered + other, math.ceil(adapter / world), math.ceil(gradients / world),
            math.ceil(optimizer / world))


def optimizer_bytes(shape: ModelShape, config: RunConfig, lora_bytes: int) -> int:
    """AdamW keeps two states per adapter weight, in the adapter's dtype; bitsandbytes' 8-bit AdamW one byte each
    (plus a float32 scale per block), except for small tensors, which keep 32-bit state."""
    if config.optimizer != "paged_adamw_8bit":
        return 2 * lora_bytes * shape.lora_params(config.lora_r, config.target_modules)
    total = 0
    for size in shape.lora_tensors(config.lora_r, config.target_modules):
        total += 2 * (size + 4 * math.ceil(size / ADAM_8BIT_BLOCK)) if size >= ADAM_8BIT_MIN_SIZE else 8 * size
    return total * shape.layers


def activation_bytes(shape: ModelShape, config: RunConfig, device: str, quantization: str, dtype_bytes: int,
                     tokens: int, checkpointing: bool) -> int:
    """What the forward pass keeps for the backward pass, and the largest working memory on top of it.
    With gradient checkpointing only each layer's input is kept, and one layer's activations at a time."""
    h, kv, i, layers = shape.hidden, shape.kv_heads * shape.head_dim, shape.intermediate, shape.layers
    if device != "cuda":
        # Per token and layer: what the block keeps for backward, plus the LoRA path's float32 copies. Calibrated
        # against the peak memory of SmolLM2 LoRA r16 steps on a CPU, fp32 and bf16, 128 to 1024 tokens (within 5%),
        # with LoRA dropout 0.05. Without dropout the adapters share their inputs (the process peak on
        # benchmarks/speed.py's work: 8.86 -> 7.29 GB), so this errs on the safe side there: a run may get
        # gradient checkpointing it did not need.
        per_layer = (16 * h + 4 * kv + 6 * i) * dtype_bytes + 16 * h * 4
        logits = shape.vocab * (8 + dtype_bytes)  # the logits, their fp32 copy for the loss, and its gradient
        kept = per_layer + h * dtype_bytes * (layers - 1) if checkpointing else per_layer * layers
        return tokens * (kept + logits)
    # On a GPU, from what each operation saves for backward (bf16/fp16 unless said), per token:
    q = shape.heads * shape.head_dim
    norms = 2 * 4 * h  # two RMSNorms, each keeps a float32 copy of its input
    inputs = shape.lora_inputs(config.target_modules)
    if config.lora_dropout > 0:  # each adapter keeps its own input after dropout, and the dropout mask (1 byte)
        lora = 3 * sum(inputs.values())
    else:  # q, k and v share one input, and so do gate and up
        shared = ("k_proj", "v_proj", "up_proj" if "gate_proj" in inputs else "")
        lora = 2 * sum(width for name, width in inputs.items() if name not in shared)
    attention = 2 * 4 * q  # q, k and v after RoPE (k, v repeated to all heads when padded) and the output
    mlp = 2 * 3 * i if shape.gated else 2 * 2 * i  # gate, its SiLU and up (ungated: up and its activation)
    per_layer = norms + lora + attention + mlp
    head = 4 * h + 2 * h  # the final norm, and the hidden states the fused LM head keeps
    kept = per_layer + 2 * h * (layers - 1) if checkpointing else per_layer * layers
    # Working memory at the peak (the start of backward): one layer's gradients, the LM head's logits tile and,
    # with 4-bit weights, one weight matrix dequantized to 16 bits.
    working = tokens * 2 * 3 * i + min(tokens, LOGIT_TILE[0]) * min(shape.vocab, LOGIT_TILE[1]) * 2
    if quantization == "4bit":
        working += 2 * max(a * b for a, b in shape.linear_shapes().values())
    return tokens * (kept + head) + working


def checkpointing_is_free(method: str, device: str) -> bool:
    """Whether gradient checkpointing costs no time: DPO on the CPU, where it measured no slower in float32 and faster
    in bf16, while keeping far less in memory (why it pays there and not for SFT was not profiled); SFT is slower with
    it, so only DPO. The runs: benchmarks/speed.py, docs/benchmarks.md ("Levers kept and lost" under "Speed")."""
    return method == "dpo" and device == "cpu"


def explain(e: MemoryEstimate, config: RunConfig, quantization: str, device: str) -> str:
    if e.processes > 1 and e.where == "GPU":
        head = f"This run needs about {gb(e.total)} of the {gb(e.available)} free on each of its {e.processes} GPUs"
    elif e.processes > 1:
        head = f"Its {e.processes} processes need about {gb(e.total)} of the {gb(e.available)} free on this computer"
    else:
        head = f"This run needs about {gb(e.total)} of the {gb(e.available)} free on this {e.where}"
    if e.checkpointing and checkpointing_is_free(config.method, device):
        head += " with gradient checkpointing (it saves memory, and for DPO on the CPU it is no slower)"
    elif e.checkpointing:
        head += " with gradient checkpointing (it saves memory and takes about a quarter longer)"
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
    """Memory in GB from a tenth of one (a table of parts reads best in one unit), else as every size is named."""
    return size_text(n, "GB")


def model_config(name: str) -> dict:
    """The config.json of a model, without loading (or unpacking, or downloading) it."""
    from backend.models.hub import model_folder
    from backend.models.loading import embedded_folder, is_embedded

    if is_embedded(name):
        path = embedded_folder() / "config.json"
        return json.loads(path.read_text()) if path.exists() else dict(EMBEDDED_CONFIG)
    folder = Path(name).expanduser()
    if not folder.exists():
        folder = model_folder(name)  # a hub model downloaded before
    if not (folder / "config.json").is_file():
        from backend.models.catalogue import find
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
