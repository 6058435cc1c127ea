"""Will this model train on this machine, and with which settings? Asked before anything is downloaded.

The ladder, cheapest change first: the settings as they are; on a computer with several GPUs, FSDP over 2, 3, ...
of them (the model is split across the cards; same result); 4-bit QLoRA (weights take a quarter of the room); a
smaller batch with more gradient accumulation (same effective batch, same result, only slower); then a shorter max
length (long examples get cut, so it goes last). The first rung that fits is the verdict, and its message is the one
sentence every edge shows: it names what its figure assumes (4-bit QLoRA, a smaller batch, a shorter max length,
gradient checkpointing), whether the settings already ask for it or the verdict changes them. The Train tab (memory box,
the catalogue table), `app.py models` and `app.py train` all show it (through check_start() below).

Choosing a base model: the catalogue judged for this machine before anything downloads, what a model's chat
template means for training, and check_start(): whether a run can start here (data that suits the method, the model
downloaded, room in memory), which the Train tab's Start and the command line's `train` both call.
"""
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from backend.config import METHOD_TABLE, RunConfig
from backend.errors import DataError, ModelError, TuneloopError
from backend.models import hub, memory
from backend.models.catalogue import CatalogueEntry, catalogue, find
from backend.models.memory import GB, MemoryEstimate, checkpointing_is_free, estimate_memory, gb, model_config

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
        from backend.models.loading import detect_hardware
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
    from backend.models.catalogue import CatalogueEntry, find

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


WHAT_CHANGES = ("quantization", "batch_size", "grad_accum", "max_length")  # the settings a verdict may change


@dataclass(frozen=True)
class Offer:
    """A catalogue model, judged for this machine with the given settings."""
    entry: CatalogueEntry
    verdict: FitVerdict
    folder: Path | None  # where it lies once downloaded completely
    partial_bytes: int  # bytes of an unfinished download, kept to go on from

    @property
    def state(self) -> str:
        if self.folder:
            return "downloaded"
        if self.partial_bytes:
            return f"partly downloaded ({gb(self.partial_bytes)})"
        return "not downloaded"


def offers(config: RunConfig, hardware=None, available: int | None = None,
           seq_length: int | None = None) -> list[Offer]:
    """Every catalogue model with its fit verdict for `config`'s settings, the free memory read once for all."""
    if hardware is None:
        from backend.models.loading import detect_hardware
        hardware = detect_hardware()
    if available is None:
        available = memory.free_memory(hardware.device)
    return [Offer(entry, fit_verdict(entry, config, hardware, available, seq_length), hub.pulled(entry.id),
                  _partial(entry.id)) for entry in catalogue()]


def _partial(model_id: str) -> int:
    folder = hub.model_folder(model_id)
    if not folder.is_dir() or hub.pulled(model_id):
        return 0
    return sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and not p.name.startswith("."))


def is_hub_id(name: str | None) -> bool:
    """'owner/name' that is not a folder on this computer (the rule resolve_model follows)."""
    from backend.models.loading import is_embedded

    name = (name or "").strip()
    if is_embedded(name) or Path(name).expanduser().exists():
        return False
    return name.count("/") == 1 and not name.startswith((".", "/", "~"))


def hub_id(text: str | None) -> str:
    """A typed or picked hub id, checked ('owner/name', else a ModelError in words), spelled as the catalogue does."""
    model_id = (text or "").strip()
    hub._check_id(model_id)
    entry = find(model_id)
    return entry.id if entry else model_id


def needs_download(model: str | None) -> bool:
    return is_hub_id(model) and hub.pulled(model.strip()) is None


def template_note(model: str | None) -> str:
    """What training does with this model's chat template, in one sentence; never downloads anything. A model on
    this computer is asked (its tokenizer is loaded); a catalogue model not downloaded yet is told from its entry."""
    from backend.models.chat_template import expected_note, training_template
    from backend.models.loading import is_embedded, load_tokenizer

    if is_embedded(model):
        return expected_note("chatml")  # SmolLM2's ChatML (tests/test_models_ui.py checks it against its tokenizer)
    if needs_download(model):
        entry = find(model)
        if entry is None:
            return "Its chat template is known once it is downloaded."
        return expected_note(entry.template)
    return training_template(load_tokenizer(model)).note


def system_note(model: str | None) -> str | None:
    """The default system prompt a model on this computer trains and answers under, in one sentence; None when its
    template adds none, or when it is not downloaded yet."""
    from backend.models.chat_template import default_system_prompt
    from backend.models.loading import is_embedded, load_tokenizer

    if not is_embedded(model) and needs_download(model):
        return None
    prompt = default_system_prompt(load_tokenizer(model))
    return (f"Examples without a system turn are trained under the model's own system prompt, and Chat and the export "
            f"answer under it too: “{prompt}”." if prompt else None)


def change_words(changes: dict) -> str:
    """A verdict's changes in a few words: '4-bit QLoRA, batch 2 (accumulation 8), max length 256'."""
    parts = []
    if changes.get("quantization") == "4bit":
        parts.append("4-bit QLoRA")
    if "batch_size" in changes:
        parts.append(f"batch {changes['batch_size']} (accumulation {changes['grad_accum']})")
    if "max_length" in changes:
        parts.append(f"max length {changes['max_length']}")
    return ", ".join(parts)


class MethodMismatch(DataError):
    """The data is of another kind than the method reads (SFT data for DPO, ...)."""

    def __init__(self, name: str, kind: str, method: str):
        self.name, self.kind, self.method = name, kind, method
        needs = METHOD_TABLE[method].data
        super().__init__(f"'{name}' holds {METHOD_TABLE[kind].data_words}, but {method.upper()} needs {needs}. Choose "
                         f"{kind.upper()} for this dataset, or pick a dataset of {needs}.")


class NotDownloaded(ModelError):
    """A hub model that is not on this computer yet: the Train tab asks for Download, `train` downloads it."""

    def __init__(self, model_id: str, download_bytes: int | None):
        self.model_id, self.download_bytes = model_id, download_bytes  # None: not in the catalogue, size unknown
        super().__init__(f"'{model_id}' is not downloaded yet.")


def mismatch(method: str, data: dict | None) -> str:
    """Why this data cannot train with this method, in words; empty when it can."""
    if not data or data["kind"] == method:
        return ""
    return str(MethodMismatch(data["name"], data["kind"], method))


def longest(data: dict | None) -> int | None:
    """The data's longest example in tokens, when known (a saved dataset's): batches are padded to it, not further.
    None for a file, or no data: the max length counts."""
    return ((data or {}).get("stats") or {}).get("tokens", {}).get("max")


@dataclass(frozen=True)
class StartCheck:
    """Whether a run can start here, and the memory verdict it rests on (check_start makes it)."""
    config: RunConfig  # as given, a hub id spelled as the catalogue spells it
    fit: FitVerdict | None  # None for a hub model outside the catalogue, until it is downloaded
    refusal: TuneloopError | None  # MethodMismatch, NotDownloaded or a ModelError (too big); None: it can start
    how: str = ""  # how to apply the verdict's changes, in the caller's words (when it has changes)

    @property
    def can_start(self) -> bool:
        return self.refusal is None

    @property
    def estimate(self) -> MemoryEstimate | None:
        """The run as set."""
        return self.fit.as_set if self.fit else None

    @property
    def as_set_is_the_verdict(self) -> bool:
        return self.fit is not None and self.fit.fits and not self.fit.changes

    @property
    def as_set_words(self) -> str:
        """The run as set, in words: the verdict's own sentence when the verdict is the run as set."""
        if self.fit is None:
            return ""
        words = self.fit.message if self.as_set_is_the_verdict else self.fit.as_set_message
        return words[0].upper() + words[1:]

    @property
    def memory_words(self) -> str:
        """The memory verdict in words, the same on the page and the command line: the verdict's sentence, after the
        run as set when the verdict is not it, and how to apply its changes."""
        if self.fit is None or self.as_set_is_the_verdict:
            return self.as_set_words
        words = f"{self.as_set_words} {self.fit.message}"
        return f"{words} {self.how}" if self.how else words

    def or_raise(self) -> "StartCheck":
        if self.refusal is not None:
            raise self.refusal
        return self


def check_start(config: RunConfig, data: dict | None = None, how=None, hardware=None,
                available: int | None = None) -> StartCheck:
    """Can this run start here? The one check the Train tab's Start and the command line's `train` make.
    data: the data's record, a saved dataset's (DatasetStore.get) or {"name", "kind"} for a file: the method must read
    its kind, and its longest example sets the memory needed. how(changes): how to apply the settings the verdict
    changes, in the caller's words. A catalogue model is judged before it is downloaded, any other hub model once it
    is. Refusals, first that applies: the data (MethodMismatch), a hub model not in the catalogue and not downloaded
    (NotDownloaded), too big as set (ModelError with the verdict's words), a catalogue model not downloaded."""
    if is_hub_id(config.model):
        config = dataclasses.replace(config, model=hub_id(config.model))
    wrong_data = (MethodMismatch(data["name"], data["kind"], config.method)
                  if data and data["kind"] != config.method else None)
    entry, missing = find(config.model), needs_download(config.model)
    if missing and entry is None:
        return StartCheck(config, None, wrong_data or NotDownloaded(config.model, None))
    fit = fit_verdict(config.model, config, hardware, available, seq_length=longest(data))
    how_words = how(fit.changes) if how and fit.fits and fit.changes else ""
    refusal = wrong_data
    if refusal is None and fit.as_set.verdict == "too_big":
        words = fit.message if not fit.fits else f"{fit.as_set_message} {fit.message}"
        refusal = ModelError(f"Not started: {words}{' ' + how_words if how_words else ''}")
    if refusal is None and missing:
        refusal = NotDownloaded(config.model, entry.download_bytes)
    return StartCheck(config, fit, refusal, how_words)
