"""How long a run will take on this computer, said before it starts: the steps its settings make, the tokens those
steps hold, and this computer's training speed for the chosen model.

The speed is measured where it can be: the last finished run of the same model here. Otherwise it is scaled from a
run of another model here, or from a typical speed of the built-in model on this kind of device, by how much
arithmetic a token costs in each model (training work per token grows with the weights a token passes through).
Where the model's size is not known before it is downloaded, no figure is given: Progress gives one from the first
steps."""
from dataclasses import dataclass

from backend.config import BUILTIN_MODEL, RunConfig, planned_steps, rows_per_epoch
from backend.errors import TuneloopError

# Typical training speed of the built-in model (SmolLM2-135M, LoRA, quick preset), tokens per second.
BUILTIN_TOKENS_PER_SECOND = {"cpu": 120, "cuda": 3000}
FIXED_SECONDS = 60  # loading the model, the everyday answers, and the check after training
# Examples whose way of answering frames every answer have their everyday answers made again in that way before the
# first step (backend/evaluation/rehearsal.in_their_way): 27 to 42 s for the built-in model in bf16 on an idle 2-core
# CPU, which trains at about 300 tokens per second there (docs/benchmarks.md): that work, in training tokens.
THEIR_WAY_TOKENS = 12_000
PAIR_FACTOR = 2.5  # DPO/KTO: two answers per row, and the reference model's pass


@dataclass(frozen=True)
class Speed:
    """Training tokens per second for one model here; None: not known before the first steps."""
    tokens_per_second: float | None
    basis: str  # "measured" here, "typical" of the device, "scaled" from another model's speed, or "unknown"


def work_per_token(model: str) -> int | None:
    """The weights one token passes through (every linear layer and the output layer), or None when the model's
    shape cannot be read without downloading it."""
    from backend.models.memory import ModelShape, model_config
    try:
        shape = ModelShape.from_config(model_config(model))
    except (TuneloopError, OSError, ValueError):
        return None
    return shape.linear_params() + shape.vocab * shape.hidden


def training_speed(model: str, measured: list[tuple[str, float]], device: str) -> Speed:
    """`measured`: (model, tokens per second) of finished runs here, newest first."""
    for name, tokens_per_second in measured:
        if name == model:
            return Speed(tokens_per_second, "measured")
    work = work_per_token(model)
    if work is None:
        return Speed(None, "unknown")
    for name, tokens_per_second in measured:
        other = work_per_token(name)
        if other:
            return Speed(tokens_per_second * other / work, "scaled")
    builtin = work_per_token(BUILTIN_MODEL)
    return Speed(BUILTIN_TOKENS_PER_SECOND[device] * builtin / work, "typical" if model == BUILTIN_MODEL else "scaled")


def measured_speeds(runs) -> list[tuple[str, float]]:
    """(model, tokens per second at its last logged step) of the finished runs in a RunStore, newest first."""
    return runs.finished_speeds()


def estimate_seconds(config: RunConfig, dataset: dict, tokens_per_second: float) -> tuple[int, float]:
    """(steps, seconds) of a run with these settings on a dataset's record (its rows and token statistics;
    `rehearses_their_way`: whether its examples' way of answering is rehearsed, as rehearsal.rows_rehearse_their_way
    judges them)."""
    steps = planned_steps(config, rows_per_epoch(config, dataset["train_rows"]))
    mean = dataset["stats"].get("tokens", {}).get("mean", 100) or 100
    tokens = steps * config.batch_size * config.grad_accum * min(mean, config.max_length)
    tokens *= 1 if config.method == "sft" else PAIR_FACTOR
    extra = their_way_seconds(config, dataset, tokens_per_second)
    return steps, FIXED_SECONDS + extra + tokens / tokens_per_second


def their_way_seconds(config: RunConfig, dataset: dict, tokens_per_second: float) -> float:
    """The seconds a run of this dataset spends rehearsing in its examples' way before the first step; 0 for none."""
    rehearses = dataset.get("rehearses_their_way") and config.method == "sft" and config.rehearsal
    return THEIR_WAY_TOKENS / tokens_per_second if rehearses else 0.0
