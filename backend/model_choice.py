"""Choosing a base model: the catalogue judged for this machine before anything downloads, what a model's chat
template means for training, and the one memory check that refuses a run too big to fit (the Train tab's Start and
the command line's `train` both call refuse_too_big()).
"""
from dataclasses import dataclass
from pathlib import Path

from backend import hub, memory
from backend.catalogue import CatalogueEntry, catalogue, find
from backend.config import RunConfig
from backend.errors import ModelError
from backend.memory import GB, MemoryEstimate, estimate_memory, gb
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


def refuse_too_big(config: RunConfig, seq_length: int | None = None, how=None, hardware=None) -> MemoryEstimate:
    """The estimate for `config` as set; raises ModelError when it cannot fit here, with the fit verdict's sentence,
    and `how(changes)`: how to apply the settings that make it fit, when some do. A run close to the limit passes."""
    estimate = estimate_memory(config, hardware, seq_length=seq_length)
    if estimate.verdict != "too_big":
        return estimate
    verdict = fit_verdict(config.model, config, hardware, available=estimate.available, seq_length=seq_length)
    if not verdict.fits:
        raise ModelError(f"Not started: {verdict.message}")
    raise ModelError(f"Not started: as set, it needs about {_gb(estimate.total)} of the {_gb(estimate.available)} free "
                     f"on this {estimate.where}. {verdict.message}{' ' + how(verdict.changes) if how else ''}")


def _gb(n: int) -> str:
    return gb(n) if n < 10 * GB else f"{n / GB:.0f} GB"  # as the fit verdicts write sizes
