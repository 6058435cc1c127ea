"""Choosing a base model: the catalogue judged for this machine before anything downloads, what a model's chat
template means for training, and check_start(): whether a run can start here (data that suits the method, the model
downloaded, room in memory), which the Train tab's Start and the command line's `train` both call.
"""
import dataclasses
from dataclasses import dataclass
from pathlib import Path

from backend import hub, memory
from backend.catalogue import CatalogueEntry, catalogue, find
from backend.config import METHOD_TABLE, RunConfig
from backend.errors import DataError, ModelError, TuneloopError
from backend.memory import MemoryEstimate, gb
from backend.model_fit import FitVerdict, fit_verdict

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
        from backend.models import detect_hardware
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
    from backend.models import is_embedded

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
    from backend.chat_template import expected_note, training_template
    from backend.models import is_embedded, load_tokenizer

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
    from backend.chat_template import default_system_prompt
    from backend.models import is_embedded, load_tokenizer

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
