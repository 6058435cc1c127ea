"""A run's settings, each declared once: type, default, range or choices, label and plain-language help.

The CLI (`--set key=value`), the presets, the web form, the memory estimate, the trainer and validation all
read these declarations and the few rules below (steps, target modules); nothing else restates them.
"""
import dataclasses
import math
from dataclasses import dataclass, field, fields
from typing import Any, NamedTuple

from backend.errors import ConfigError


class Method(NamedTuple):
    """One way to learn, declared once: what the form, the CLI, the data checks and the trainer say and do about it."""
    name: str  # the setting's value; a dataset's kind is the name of the method its data trains
    does: str  # in the setting's help
    title: str  # the Train tab's choice
    teaches: str  # under that choice: what it teaches and the data it needs
    data: str  # the data it reads, in a few words
    kind: str  # that data as a file's inspection names it
    needs: str  # what a run whose data is of another kind is told
    rehearses: bool  # the base model's everyday answers are mixed into its data (rehearsal)

    @property
    def short(self) -> str:
        return self.name.upper()

    @property
    def data_words(self) -> str:
        return f"{self.data} ({self.short} data)"


METHOD_TABLE = {m.name: m for m in (
    Method("sft", "copies example answers", "SFT: learn from examples",
           "Teaches the model to answer the way your examples do. Needs conversations, or questions with answers.",
           "conversations", "supervised fine-tuning (SFT: example conversations)",
           "SFT needs conversations or question/answer pairs.", rehearses=True),
    Method("dpo", "prefers the chosen answer over the rejected one", "DPO: prefer the better answer",
           "Teaches the model to prefer a better answer over a worse one to the same question. Needs preference "
           "pairs: a question with a chosen (better) and a rejected (worse) answer.",
           "preference pairs", "preference pairs (DPO: a chosen and a rejected answer)",
           "DPO needs pairs of answers to one prompt: a chosen (better) one and a rejected one.", rehearses=False),
    Method("kto", "learns from answers marked good or bad", "KTO: learn from thumbs up and down",
           "Teaches the model from single answers marked good or bad. Needs answers each marked good or bad, "
           "with some of each.",
           "answers marked good or bad", "rated answers (KTO: answers marked good or bad)",
           "KTO needs answers each marked good or bad.", rehearses=True),
)}
METHODS = tuple(METHOD_TABLE)
REHEARSING = tuple(m.name for m in METHOD_TABLE.values() if m.rehearses)
BUILTIN_MODEL = "smollm2"  # the built-in model, as a run's settings and the command line name it
STRATEGIES = ("ddp", "fsdp", "deepspeed-zero3")  # how several processes share the model (backend/jobs/launcher.py)
# LoRA targets by choice; None means every linear layer of the block ("all-linear").
TARGET_MODULES = {
    "attention": ("q_proj", "k_proj", "v_proj", "o_proj"),
    "attention+mlp": ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"),
    "all-linear": None,
}
TYPE_WORDS = {"int": "a whole number", "float": "a number", "str": "text", "bool": "true or false"}


def setting(default, help, *, label, min=None, max=None, choices=None, group="Training", advanced=True,
            methods=METHODS, usual=None, memory=False, formerly=()):
    """One declared setting: a dataclass field whose metadata every reader of settings uses. `usual`: (low, high),
    the range most runs use; a value outside it is allowed and said (unusual_settings), a value outside min-max is
    refused. `memory`: the Train tab judges the memory again when it changes. `formerly`: the setting's older names,
    still read wherever settings are read (stored runs and their suggestions, --set, presets)."""
    return field(default=default, metadata={
        "help": help, "label": label, "min": min, "max": max, "choices": choices, "group": group,
        "advanced": advanced, "methods": methods, "usual": usual, "memory": memory, "formerly": formerly,
    })


@dataclass
class RunConfig:
    method: str = setting("sft", "What to learn: " + ", ".join(f"'{m.name}' {m.does}" for m in METHOD_TABLE.values())
                          + ".",
                          label="What to learn (method)", choices=METHODS, group="Basics", advanced=False)
    model: str = setting(BUILTIN_MODEL, f"Base model: '{BUILTIN_MODEL}' (built in), a local Hugging Face folder, or a "
                         "hub id.",
                         label="Base model", group="Basics", advanced=False)
    dataset: str = setting("", "Training data: a file (JSON, JSONL, CSV, ...) or the name of a saved dataset.",
                           label="Dataset", group="Basics", advanced=False)
    base_run: str = setting("", "Start from a finished run's adapter (for DPO/KTO after SFT). Empty: the base model.",
                            label="Finished run to build on", group="Basics", advanced=False)
    name: str = setting("", "A name for the run, to find it later. Empty: one is made up.",
                        label="Name for this run", group="Basics", advanced=False)

    learning_rate: float = setting(2e-4, "How big each learning step is. Too high makes the model forget "
                                   "what it knew; too low learns nothing.",
                                   label="Learning rate (size of each step)", min=1e-7, max=1e-2,
                                   usual=(1e-6, 1e-3))
    epochs: float = setting(3.0, "How many times to go through the data.", label="Passes over the data (epochs)",
                            min=0.05, max=100)
    max_steps: int = setting(0, "Stop after this many steps (0: go by epochs).",
                             label="Stop after this many steps (0: use passes)", min=0, max=1_000_000)
    batch_size: int = setting(8, "Examples per step. Lower it if memory runs out.",
                              label="Examples per step (batch size)", min=1, max=512, memory=True)
    grad_accum: int = setting(1, "Steps to add up before each update: a larger effective batch "
                              "without more memory.", label="Steps per update (gradient accumulation)", min=1, max=256,
                              memory=True)
    max_length: int = setting(512, "Longest example, in tokens; longer ones are cut.",
                              label="Longest example, in tokens (max length)", min=32, max=32768, memory=True)
    warmup_steps: int = setting(2, "Steps at the start with a smaller learning rate, for stability.",
                                label="Gentle start, in steps (warm-up)", min=0, max=100_000)
    lr_scheduler: str = setting("cosine", "How the learning rate changes over the run.",
                                label="How the learning rate changes (schedule)",
                                choices=("cosine", "linear", "constant"))
    beta: float = setting(0.1, "DPO/KTO: how far the model may move from where it started. "
                          "Higher keeps it closer.", label="Stay close to the start (beta)", min=0.001, max=10.0,
                          methods=("dpo", "kto"))
    seed: int = setting(42, "Random seed: the same seed and data give the same run.", label="Random seed",
                        min=0, max=2**31 - 1)
    validation_split: float = setting(0.1, "Share of the data held back to check learning (0 to skip).",
                                      label="Share held back to check learning", min=0.0, max=0.5)
    gradient_checkpointing: str = setting("auto", "Saves memory by working out parts of the model again during "
                                          "learning, about 20-30% slower. 'auto': only when the memory estimate "
                                          "says the run would not fit without it, and for DPO on the CPU, where "
                                          "it is no slower.",
                                          label="Save memory by recomputing (gradient checkpointing)",
                                          choices=("auto", "on", "off"), memory=True)
    optimizer: str = setting("adamw_torch", "'adamw_torch': plain AdamW. 'paged_adamw_8bit': AdamW whose state "
                             "takes a quarter of the memory (8 bits) and, on a GPU, moves to the computer's memory "
                             "when the GPU runs short.", label="Optimizer (8-bit saves memory)",
                             choices=("adamw_torch", "paged_adamw_8bit"), memory=True)

    lora_r: int = setting(16, "LoRA rank: how much the adapter can learn. Higher is stronger and slower.",
                          label="Adapter size (LoRA rank)", min=1, max=512, group="Adapter", memory=True)
    lora_alpha: int = setting(32, "LoRA scale (usually twice the rank).", label="Adapter strength (LoRA alpha)",
                              min=1, max=1024, group="Adapter")
    lora_dropout: float = setting(0.0, "LoRA dropout: the share of each adapter's inputs left out at random while "
                                  "training, against overfitting a small file. 0 trains fastest; try 0.05 to 0.1 when "
                                  "the held-back loss rises.", label="Adapter dropout",
                                  min=0.0, max=0.5, group="Adapter")
    target_modules: str = setting("attention+mlp", "Which layers get an adapter.",
                                  label="Layers that get an adapter", choices=tuple(TARGET_MODULES), group="Adapter",
                                  memory=True)
    quantization: str = setting("auto", "'4bit' is QLoRA (less memory), 'none' is plain LoRA. "
                                "'auto': 4-bit on a GPU, plain LoRA on the CPU.",
                                label="Compress the model to save memory (quantization)",
                                choices=("auto", "4bit", "none"), group="Adapter", memory=True)

    rehearsal: int = setting(60, "The rehearsal protects what the model already knows: the base model answers "
                             "this many everyday prompts, and its right answers (a prompt with a known answer is "
                             "checked) are rehearsed: mixed into the training data, as examples (SFT) or as answers "
                             "marked good (KTO) (0: off).",
                             label="Rehearsal: everyday answers mixed in (keeps what it knew)",
                             min=0, max=400, group="Safety", methods=REHEARSING, memory=True,
                             formerly=("keep_everyday",))
    probe: bool = setting(True, "The forgetting probe: after training, ask the base and the tuned model the same "
                          "everyday questions and report how many answers were kept.",
                          label="Forgetting probe: ask everyday questions after training", group="Safety")
    patience: int = setting(0, "Early stopping: the loss on the held-back examples is checked about ten times "
                            "during the run; when it has not improved for this many checks in a row, training stops "
                            "and the adapter from the check where it was lowest is kept (0: off; needs a share "
                            "held back).", label="Stop when the held-back loss stops improving (patience, in checks)",
                            min=0, max=100, group="Safety")
    save_every: int = setting(0, "Save a checkpoint every this many steps, to resume from (0: automatic).",
                              label="Save a checkpoint every N steps (0: automatic)", min=0, max=1_000_000,
                              group="Safety")

    processes: int = setting(0, "Training processes on this computer, one per GPU; each step's examples are split "
                             "between them, so the examples per step stay the same. 0: automatic: every GPU here, "
                             "or one process on a computer without a GPU.",
                             label="Processes on this computer (0: one per GPU)", min=0, max=256, group="Devices")
    strategy: str = setting("ddp", "How several processes share the model. 'ddp': each holds the whole model (it "
                            "must fit one card). 'fsdp': the model is split across the cards, for a model no single "
                            "card holds. 'deepspeed-zero3': the same split done by DeepSpeed (pip install deepspeed).",
                            label="How the cards share the model (strategy)", choices=STRATEGIES, group="Devices")
    machines: int = setting(1, "Computers training this run together (each starts it with its own machine_rank).",
                            label="Computers training together", min=1, max=64, group="Devices", advanced=False)
    machine_rank: int = setting(0, "Which of the computers this is: 0 is the one that shows the run and keeps "
                                "its results.", label="This computer's number (0: the main one)", min=0, max=63,
                                group="Devices", advanced=False)
    main_address: str = setting("", "Computer 0's address as HOST:PORT, which every computer connects to "
                                "(several computers only).", label="Address of computer 0 (HOST:PORT)",
                                group="Devices", advanced=False)

    def __post_init__(self):
        check(self)
        if self.method == "kto" and self.batch_size * self.grad_accum < 2:
            raise ConfigError("batch_size", "KTO needs at least 2 examples per step; raise batch_size to 2 or more.")
        check_machines(self)

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


class Declaration(NamedTuple):
    name: str
    type: str  # "int", "float", "str" or "bool"
    default: Any
    meta: dict


def declarations(cls=RunConfig) -> list[Declaration]:
    """The settings of a declared dataclass, in order: what a form, the CLI or a check is built from."""
    return [Declaration(f.name, _type_name(f), f.default, f.metadata) for f in fields(cls) if f.metadata]


def declaration(name: str, cls=RunConfig) -> Declaration:
    """The setting called `name`, or formerly called so."""
    for d in declarations(cls):
        if d.name == name or name in d.meta.get("formerly", ()):
            return d
    known = ", ".join(d.name for d in declarations(cls))
    raise ConfigError(name, f"no such setting. Known settings: {known}.")


def default(name: str, cls=RunConfig):
    return declaration(name, cls).default


def coerce(name: str, value: Any, cls=RunConfig):
    """The one way a value from the CLI, a preset, a form or the API becomes the setting's type.
    Text is parsed; a whole float (a number box's 3.0) becomes an int; an int becomes a float. Raises ConfigError."""
    d = declaration(name, cls)
    if value is None and d.default is None:
        return None
    if isinstance(value, str):
        try:
            if d.type == "int":
                number = float(value)
                return int(number) if number.is_integer() else int(value)
            if d.type == "float":
                return float(value)
            if d.type == "bool":
                lowered = value.strip().lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(value)
        except (ValueError, OverflowError):
            raise ConfigError(name, f"{value!r} is not {TYPE_WORDS[d.type]}.") from None
        return value
    if isinstance(value, bool):
        return value
    if d.type == "int" and isinstance(value, float) and math.isfinite(value) and value.is_integer():
        return int(value)
    if d.type == "float" and isinstance(value, int):
        return float(value)
    return value


def check(obj):
    """Every declared field of `obj` has its type, is finite, and lies in its range or among its choices."""
    cls = type(obj)
    for d in declarations(cls):
        value = getattr(obj, d.name)
        if value is None and d.default is None:
            continue
        expected = {"int": int, "float": (int, float), "str": str, "bool": bool}[d.type]
        if (isinstance(value, bool) and d.type != "bool") or not isinstance(value, expected):
            raise ConfigError(d.name, f"expected {TYPE_WORDS[d.type]}, got {value!r}.")
        if d.type == "float" and not math.isfinite(value):
            raise ConfigError(d.name, f"{value} is not a finite number.")
        meta = d.meta
        if meta["choices"] and value not in meta["choices"]:
            raise ConfigError(d.name, f"{value!r} is not one of {', '.join(map(str, meta['choices']))}.")
        if meta["min"] is not None and value < meta["min"]:
            raise ConfigError(d.name, f"{value} is below the smallest allowed value, {meta['min']}.")
        if meta["max"] is not None and value > meta["max"]:
            raise ConfigError(d.name, f"{value} is above the largest allowed value, {meta['max']}.")


def unusual_settings(obj) -> list[str]:
    """A sentence for each setting outside the range most runs use (allowed, but worth a second look)."""
    said = []
    for d in declarations(type(obj)):
        value, usual = getattr(obj, d.name), d.meta.get("usual")
        if usual is None or value is None:
            continue
        low, high = usual
        if value > high:
            said.append(f"{d.meta['label']} is {value:g}, above the usual range (up to {high:g}): the loss may jump "
                        f"and the model forget what it knew. Lower it unless you mean it.")
        elif value < low:
            said.append(f"{d.meta['label']} is {value:g}, below the usual range (from {low:g}): the run may learn "
                        f"nothing. Raise it unless you mean it.")
    return said


def current_names(values: dict, cls=RunConfig) -> dict:
    """`values` with every setting under its current name: one given by a former name (a stored run's settings, an
    old command's --set) is read as the setting it became; of two names for one setting the later one wins, as in
    dict.update."""
    renamed = {old: d.name for d in declarations(cls) for old in d.meta.get("formerly", ())}
    current = {}
    for name, value in values.items():
        current[renamed.get(name, name)] = value
    return current


def build(cls, values: dict):
    """A validated instance of a declared dataclass from a dict of (possibly text) values, by current or former
    setting names."""
    return cls(**{name: coerce(name, value, cls) for name, value in current_names(values, cls).items()})


def build_config(values: dict) -> RunConfig:
    """Make a validated RunConfig from a dict of (possibly string) values."""
    return build(RunConfig, values)


def rows_per_epoch(config: RunConfig, examples: int) -> int:
    """The rows a run trains on per pass: the examples, plus the rehearsed everyday answers where the method uses
    them (some are left out at run time: answers the base model cut off or got wrong, 17 of the default 60 for the
    built-in model)."""
    rehearsed = config.rehearsal if METHOD_TABLE[config.method].rehearses else 0
    return examples + rehearsed


class BatchPlan(NamedTuple):
    """How one update's examples are split: per_device x processes x grad_accum (all processes of all machines)."""
    per_device: int
    processes: int
    grad_accum: int

    @property
    def effective(self) -> int:
        return self.per_device * self.processes * self.grad_accum

    def describe(self) -> str:
        plural = "es" if self.processes != 1 else ""
        return (f"{self.per_device} per device x {self.processes} process{plural} x {self.grad_accum} accumulation "
                f"= {self.effective} examples per update")


def batch_plan(config: RunConfig, processes: int = 1) -> BatchPlan:
    """The one rule for several processes: batch_size x grad_accum (the preset's effective batch) stays what one update
    learns from, whatever the number of processes; each process takes its share. The per-device batch is the largest
    that divides that share and is at most batch_size / processes (so no card holds more than one process would), and
    accumulation makes up the rest. A share that does not divide evenly is rounded up (e.g. 8 over 3 processes: 9)."""
    processes = max(1, processes)
    share = math.ceil(config.batch_size * config.grad_accum / processes)
    cap = math.ceil(config.batch_size / processes)
    per_device = max(d for d in range(1, cap + 1) if share % d == 0)
    if config.method == "kto" and per_device < 2:  # TRL's KTO pairs each answer with a neighbour in its device batch
        if share < 2:
            raise ConfigError("batch_size", f"KTO needs at least 2 examples per process; with {processes} processes "
                              f"raise batch_size to {2 * processes} or more.")
        per_device = min(d for d in range(2, share + 1) if share % d == 0)
    return BatchPlan(per_device, processes, share // per_device)


def planned_steps(config: RunConfig, rows: int, processes: int = 1) -> int:
    """Optimizer steps for `rows` training rows, as the Hugging Face Trainer counts them (with several processes each
    takes every processes-th batch, and the last round is filled up so that all take the same number)."""
    if config.max_steps:
        return config.max_steps
    plan = batch_plan(config, processes)
    batches = math.ceil(math.ceil(max(rows, 1) / plan.per_device) / plan.processes)
    return max(1, math.ceil(config.epochs * math.ceil(batches / plan.grad_accum)))


def check_machines(config: RunConfig):
    """Several computers need to know where computer 0 is, and each its own number."""
    if config.machine_rank >= config.machines:
        raise ConfigError("machine_rank", f"{config.machine_rank} is not below machines ({config.machines}); number "
                          "the computers 0 to machines - 1.")
    if config.machines > 1:
        host, _, port = config.main_address.rpartition(":")
        if not host or not port.isdigit() or not 0 < int(port) < 65536:
            raise ConfigError("main_address", f"{config.main_address!r} is not HOST:PORT; give computer 0's address "
                              "and a free port, e.g. 192.168.1.10:29500.")


def target_modules(config: RunConfig):
    """What PEFT's LoraConfig takes as target_modules for the configured choice."""
    names = TARGET_MODULES[config.target_modules]
    return "all-linear" if names is None else list(names)


def _type_name(f) -> str:
    kind = f.type if isinstance(f.type, str) else getattr(f.type, "__name__", str(f.type))
    return kind.replace(" | None", "").replace("Optional[", "").rstrip("]")


# Too few examples: with fewer than this many full batches per pass over the data, each epoch is one or two
# updates and the run ends after a handful of steps: too few for an adapter to learn, easy to memorise.
MIN_BATCHES_PER_EPOCH = 3
