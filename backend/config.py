"""A run's settings, each declared once: type, default, range or choices, and plain-language help.

The CLI (`--set key=value`), the presets, the web form and validation all read these declarations.
"""
import dataclasses
from dataclasses import dataclass, field, fields
from typing import Any

from backend.errors import ConfigError

METHODS = ("sft", "dpo", "kto")
TARGET_MODULES = {
    "attention": ["q_proj", "k_proj", "v_proj", "o_proj"],
    "attention+mlp": ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"],
    "all-linear": "all-linear",
}


def setting(default, help, *, min=None, max=None, choices=None, group="Training", advanced=True, methods=METHODS):
    return field(default=default, metadata={
        "help": help, "min": min, "max": max, "choices": choices, "group": group,
        "advanced": advanced, "methods": methods,
    })


@dataclass
class RunConfig:
    method: str = setting("sft", "What to learn: 'sft' copies example answers, 'dpo' prefers the chosen answer "
                          "over the rejected one, 'kto' learns from answers marked good or bad.",
                          choices=METHODS, group="Basics", advanced=False)
    model: str = setting("smollm2", "Base model: 'smollm2' (built in), a local Hugging Face folder, or a hub id.",
                         group="Basics", advanced=False)
    dataset: str = setting("", "Training data: a file (JSON, JSONL, CSV, ...) or the name of a saved dataset.",
                           group="Basics", advanced=False)
    base_run: str = setting("", "Start from a finished run's adapter (for DPO/KTO after SFT). Empty: the base model.",
                            group="Basics", advanced=False)
    name: str = setting("", "A name for the run, to find it later. Empty: one is made up.", group="Basics", advanced=False)

    learning_rate: float = setting(2e-4, "How big each learning step is. Too high makes the model forget "
                                   "what it knew; too low learns nothing.", min=1e-7, max=1e-2)
    epochs: float = setting(3.0, "How many times to go through the data.", min=0.05, max=100)
    max_steps: int = setting(0, "Stop after this many steps (0: go by epochs).", min=0, max=1_000_000)
    batch_size: int = setting(8, "Examples per step. Lower it if memory runs out.", min=1, max=512)
    grad_accum: int = setting(1, "Steps to add up before each update: a larger effective batch "
                              "without more memory.", min=1, max=256)
    max_length: int = setting(512, "Longest example, in tokens; longer ones are cut.", min=32, max=32768)
    warmup_steps: int = setting(2, "Steps at the start with a smaller learning rate, for stability.", min=0, max=100_000)
    lr_scheduler: str = setting("cosine", "How the learning rate changes over the run.",
                                choices=("cosine", "linear", "constant"))
    beta: float = setting(0.1, "DPO/KTO: how far the model may move from where it started. "
                          "Higher keeps it closer.", min=0.001, max=10.0, methods=("dpo", "kto"))
    seed: int = setting(42, "Random seed: the same seed and data give the same run.", min=0, max=2**31 - 1)
    validation_split: float = setting(0.1, "Share of the data held back to check learning (0 to skip).",
                                      min=0.0, max=0.5)
    gradient_checkpointing: str = setting("auto", "Saves memory by working out parts of the model again during "
                                          "learning, about 20-30% slower. 'auto': only when the memory estimate "
                                          "says the run would not fit without it.", choices=("auto", "on", "off"))
    optimizer: str = setting("adamw_torch", "'adamw_torch': plain AdamW. 'paged_adamw_8bit': AdamW whose state "
                             "takes a quarter of the memory (8 bits) and, on a GPU, moves to the computer's memory "
                             "when the GPU runs short.", choices=("adamw_torch", "paged_adamw_8bit"))

    lora_r: int = setting(16, "LoRA rank: how much the adapter can learn. Higher is stronger and slower.",
                          min=1, max=512, group="Adapter")
    lora_alpha: int = setting(32, "LoRA scale (usually twice the rank).", min=1, max=1024, group="Adapter")
    lora_dropout: float = setting(0.05, "LoRA dropout, against overfitting small data.", min=0.0, max=0.5,
                                  group="Adapter")
    target_modules: str = setting("attention+mlp", "Which layers get an adapter.",
                                  choices=tuple(TARGET_MODULES), group="Adapter")
    quantization: str = setting("auto", "'4bit' is QLoRA (less memory), 'none' is plain LoRA. "
                                "'auto': 4-bit on a GPU, plain LoRA on the CPU.",
                                choices=("auto", "4bit", "none"), group="Adapter")

    keep_everyday: int = setting(40, "Protects what the model already knows: this many everyday questions, "
                                 "answered by the base model itself, are mixed into the training data, as examples "
                                 "(SFT) or as answers marked good (KTO) (0: off).",
                                 min=0, max=400, group="Safety", methods=("sft", "kto"))
    probe: bool = setting(True, "After training, ask base and tuned model everyday questions and report "
                          "how many answers were kept.", group="Safety")
    save_every: int = setting(0, "Save a checkpoint every this many steps, to resume from (0: automatic).",
                              min=0, max=1_000_000, group="Safety")

    def __post_init__(self):
        validate(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


def declarations():
    """The settings as (name, type, default, metadata), in order: what a form or CLI is built from."""
    return [(f.name, f.type, f.default, f.metadata) for f in fields(RunConfig)]


def validate(config: RunConfig):
    for f in fields(RunConfig):
        value = getattr(config, f.name)
        meta = f.metadata
        expected = {"int": int, "float": (int, float), "str": str, "bool": bool}[_type_name(f)]
        if isinstance(value, bool) and _type_name(f) != "bool" or not isinstance(value, expected):
            raise ConfigError(f.name, f"expected {_describe_type(f)}, got {value!r}.")
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(f.name, f"{value!r} is not one of {', '.join(map(str, meta['choices']))}.")
        if meta["min"] is not None and value < meta["min"]:
            raise ConfigError(f.name, f"{value} is below the smallest allowed value, {meta['min']}.")
        if meta["max"] is not None and value > meta["max"]:
            raise ConfigError(f.name, f"{value} is above the largest allowed value, {meta['max']}.")
    if config.method == "kto" and config.batch_size * config.grad_accum < 2:
        raise ConfigError("batch_size", "KTO needs at least 2 examples per step; raise batch_size to 2 or more.")


def coerce(name: str, text: Any):
    """Turn a value from the command line or a preset into the setting's type, or raise ConfigError."""
    f = _field(name)
    kind = _type_name(f)
    if not isinstance(text, str):
        return float(text) if kind == "float" and isinstance(text, int) and not isinstance(text, bool) else text
    try:
        if kind == "int":
            return int(float(text)) if float(text).is_integer() else int(text)
        if kind == "float":
            return float(text)
        if kind == "bool":
            lowered = text.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError
    except ValueError:
        raise ConfigError(name, f"{text!r} is not {_describe_type(f)}.") from None
    return text


def build_config(values: dict) -> RunConfig:
    """Make a validated RunConfig from a dict of (possibly string) values."""
    clean = {}
    for name, value in values.items():
        clean[name] = coerce(name, value)
    return RunConfig(**clean)


def _field(name: str):
    for f in fields(RunConfig):
        if f.name == name:
            return f
    known = ", ".join(f.name for f in fields(RunConfig))
    raise ConfigError(name, f"no such setting. Known settings: {known}.")


def _type_name(f) -> str:
    return f.type if isinstance(f.type, str) else f.type.__name__


def _describe_type(f) -> str:
    return {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false"}[_type_name(f)]
