"""Will this model train on this machine, and with which settings? Asked before anything is downloaded.

The ladder, cheapest change first: the settings as they are; on a computer with several GPUs, FSDP over 2, 3, ...
of them (the model is split across the cards; same result); 4-bit QLoRA (weights take a quarter of the room); a
smaller batch with more gradient accumulation (same effective batch, same result, only slower); then a shorter max
length (long examples get cut, so it goes last). The first rung that fits is the verdict, and its message is the one
sentence every edge shows: it names what its figure assumes (4-bit QLoRA, a smaller batch, a shorter max length,
gradient checkpointing), whether the settings already ask for it or the verdict changes them. The Train tab (memory box,
the catalogue table), `app.py models` and `app.py train` all show it (through check_start() in model_choice.py).
"""
import dataclasses
import math
from dataclasses import dataclass

from backend.config import RunConfig
from backend.memory import GB, MemoryEstimate, checkpointing_is_free, estimate_memory, gb, model_config

SHORTEST_MAX_LENGTH = 128


@dataclass
class FitVerdict:
    fits: bool  # some rung fits (comfortably, or close to the limit when `tight`)
    tight: bool
    changes: dict  # settings that differ from the ones given, e.g. {"quantization": "4bit", "batch_size": 2, ...}
    config: RunConfig  # the given settings with the changes applied (the cheapest one tried when nothing fits)
    estimate: MemoryEstimate  # for `config`
    message: str  # in words, for people: what fits and what its figure assumes
    as_set: MemoryEstimate | None = None  # for the settings as given (the ladder's first rung)
    as_set_message: str = ""  # the settings as given, in words ('as set, it needs about ...: it will not fit.')


def fit_verdict(entry_or_model, config: RunConfig, hardware=None, available: int | None = None,
                seq_length: int | None = None, gpus: int | None = None) -> FitVerdict:
    """entry_or_model: a CatalogueEntry, a model name (built-in, folder, hub id) or a config.json dict.
    available: free bytes to fit in (default: the GPU's free memory, or the machine's available memory), per card.
    gpus: the GPUs of this computer (default: counted)."""
    from backend.ranks import local_gpus, local_processes

    model_id, shape = _model(entry_or_model, config)
    if hardware is None:
        from backend.models import detect_hardware
        hardware = detect_hardware()
    if gpus is None:
        gpus = local_gpus() if hardware.device == "cuda" else 0
    config = dataclasses.replace(config, model=model_id)
    tried = []
    for changes in _ladder(config, hardware, seq_length, gpus):
        candidate = dataclasses.replace(config, **changes)
        estimate = estimate_memory(candidate, hardware, available, seq_length, model_cfg=shape,
                                   processes=local_processes(candidate, hardware, gpus))
        available = estimate.available  # measured once, so every rung is judged against the same figure
        tried.append((changes, candidate, estimate))
    as_set = tried[0][2]
    as_set_message = _as_set_message(config, as_set, hardware)
    for wanted in ("fits", "tight"):
        for changes, candidate, estimate in tried:
            if estimate.verdict == wanted:
                return FitVerdict(True, wanted == "tight", changes, candidate, estimate,
                                  _fits_message(changes, config, wanted == "tight", estimate, hardware), as_set,
                                  as_set_message)
    changes, candidate, estimate = min(tried, key=lambda t: t[2].total)
    assumed = _assumed(changes, config, estimate, hardware)
    message = (f"Cannot fit on this machine: needs about {_gb(estimate.total)}"
               f"{' with ' + _join(assumed) if assumed else ''}, {_gb(estimate.available)} free{_on(estimate)}.")
    if hardware.device == "cuda":
        message += _more_cards(candidate, hardware, available, seq_length, shape, max(gpus, 1))
    return FitVerdict(False, False, changes, candidate, estimate, message, as_set, as_set_message)


def _as_set_message(config: RunConfig, estimate: MemoryEstimate, hardware) -> str:
    """The run as set, for when the verdict is not it (it changes settings, or nothing fits). Lower case: it follows
    'Not started: ' in a refusal, and the memory box capitalises it."""
    assumed = _assumed({}, config, estimate, hardware)
    state = {"fits": "it fits", "tight": "close to the limit, so it may slow down or fail"}.get(estimate.verdict,
                                                                                                "it will not fit")
    return (f"as set, it needs about {_gb(estimate.total)} of the {_gb(estimate.available)} free on this "
            f"{estimate.where}{' with ' + _join(assumed) if assumed else ''}: {state}.")


def _more_cards(config: RunConfig, hardware, available: int, seq_length: int | None, shape: dict, gpus: int) -> str:
    """Advice for a model no card here holds (`config`: the ladder's leanest rung): how many such cards would."""
    for cards in (2, 4, 8):
        if cards <= gpus:
            continue
        candidate = dataclasses.replace(config, strategy="fsdp", processes=cards)
        if estimate_memory(candidate, hardware, available, seq_length, model_cfg=shape,
                           processes=cards).verdict == "fits":
            return f" It would fit {cards} such cards with FSDP (the model split across them)."
    return ""


def _model(entry_or_model, config: RunConfig) -> tuple[str, dict]:
    from backend.catalogue import CatalogueEntry, find

    if isinstance(entry_or_model, CatalogueEntry):
        return entry_or_model.id, dict(entry_or_model.config)
    if isinstance(entry_or_model, dict):
        return config.model, entry_or_model
    name = entry_or_model or config.model
    entry = find(name)
    # A downloaded or local model is judged by its own config.json; a catalogue one not yet downloaded by its entry.
    return (entry.id if entry else name), model_config(name)


def _ladder(config: RunConfig, hardware, seq_length: int | None, gpus: int = 0):
    yield {}
    if hardware.device == "cuda" and config.strategy == "ddp":
        for cards in range(2, gpus + 1):  # the fewest cards that hold it, the model split across them
            yield {"strategy": "fsdp", "processes": cards}
    current = hardware.quantization(config.quantization)
    four_bit = {} if current == "4bit" else {"quantization": "4bit"}
    if four_bit:
        yield four_bit
    effective = config.batch_size * config.grad_accum
    batch = config.batch_size
    while batch > 1:
        batch = max(1, batch // 2)
        yield {**four_bit, "batch_size": batch, "grad_accum": min(256, math.ceil(effective / batch))}
    smallest = {**four_bit, "batch_size": 1, "grad_accum": min(256, effective)} if config.batch_size > 1 else four_bit
    longest = min(config.max_length, seq_length) if seq_length else config.max_length
    length = longest
    while length // 2 >= SHORTEST_MAX_LENGTH:
        length //= 2
        yield {**smallest, "max_length": length}


def _fits_message(changes: dict, config: RunConfig, tight: bool, estimate: MemoryEstimate, hardware) -> str:
    if changes.get("strategy") == "fsdp":
        cards = changes["processes"]
        checkpointing = " with gradient checkpointing" if estimate.checkpointing else ""
        room = f"needs about {_gb(estimate.total)} of {_gb(estimate.available)} free on each"
        return (f"Does not fit one {_gb(estimate.available)} card; fits {cards} with FSDP (the model is split across "
                f"them){checkpointing}{', close to the limit' if tight else ''}: {room}.")
    parts = _assumed(changes, config, estimate, hardware)
    head = "Fits as set" if not parts else "Fits with " + _join(parts)
    room = f"needs about {_gb(estimate.total)} of {_gb(estimate.available)} free{_on(estimate)}"
    return f"{head}, close to the limit: {room}." if tight else f"{head}: {room}."


def _assumed(changes: dict, config: RunConfig, estimate: MemoryEstimate, hardware) -> list[str]:
    """What a figure assumes, in words, whether set already or changed by the verdict: 4-bit QLoRA, a smaller batch, a
    shorter max length, gradient checkpointing (what it costs: nothing for DPO on the CPU, else some time)."""
    parts = []
    if hardware.quantization(changes.get("quantization", config.quantization)) == "4bit":
        parts.append("4-bit QLoRA")
    if "batch_size" in changes:
        parts.append(f"batch {changes['batch_size']} (gradient accumulation {changes['grad_accum']} keeps the "
                     f"effective batch of {config.batch_size * config.grad_accum})")
    if "max_length" in changes:
        parts.append(f"max length {changes['max_length']} (longer examples are cut)")
    if estimate.checkpointing:
        parts.append("gradient checkpointing (for DPO on the CPU it is no slower)"
                     if checkpointing_is_free(config.method, hardware.device)
                     else "gradient checkpointing (about 20-30% slower)")
    return parts


def _on(estimate: MemoryEstimate) -> str:
    return " on the GPU" if estimate.where == "GPU" else ""


def _join(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def _gb(n: int) -> str:
    return gb(n) if n < 10 * GB else f"{n / GB:.0f} GB"
