"""One GGUF export as it is offered to a person: the checked .gguf file, an Ollama Modelfile beside it and,
when given, a model card with the check's results. The file is written under a hidden temporary name and
moved into place only after it passed its check; a file that fails is deleted and the reason raised."""
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from backend.errors import ExportCheckFailed, ExportError
from backend.export.gguf_check import FormatCheck, Reference, check_gguf, markdown, reference
from backend.export.gguf import QUANTS, write_gguf
from backend.export.modelfile import Modelfile, ollama_commands, ollama_name, write_modelfile
from backend.words import size_text

PARTIAL_DIR = ".tuneloop-partial"


@dataclass
class GgufExport:
    path: Path
    quant: str
    size_bytes: int
    check: FormatCheck
    modelfile: Modelfile
    ollama_name: str
    seconds: float = 0.0
    commands: list = field(default_factory=list)

    def to_dict(self) -> dict:
        return {"path": str(self.path), "quant": self.quant, "size_bytes": self.size_bytes,
                "check": self.check.to_dict(), "modelfile_template": self.modelfile.template,
                "modelfile_note": self.modelfile.note, "ollama_commands": self.commands, "seconds": self.seconds}


def _stage(fraction_from: float, fraction_to: float, progress):
    return lambda fraction, message: progress(fraction_from + (fraction_to - fraction_from) * fraction, message)


def export_gguf(merged_folder, out_dir, quant: str, name: str, description: str = "", system_prompt: str | None = None,
                model_card: str | None = None, ref: Reference | None = None,
                progress=lambda fraction, message: None) -> GgufExport:
    """Write `merged_folder` as `out_dir/<name>-<quant>.gguf`, check it against the merged model, and write
    the Modelfile (and README.md when `model_card` is given). `ref` may be shared between formats."""
    if quant not in QUANTS:
        raise ExportError(f"Unknown GGUF format '{quant}': choose one of {', '.join(QUANTS)}.")
    started = time.monotonic()
    out_dir = Path(out_dir)
    base = ollama_name(name)
    final = out_dir / f"{base}-{quant}.gguf"
    if final.exists():
        raise ExportError(f"'{final}' already exists; choose another folder for the export.")
    partial = out_dir / PARTIAL_DIR
    partial.mkdir(parents=True, exist_ok=True)
    staged = partial / final.name
    try:
        write_gguf(merged_folder, staged, quant, name, description, _stage(0.0, 0.5, progress))
        if ref is None:
            ref = reference(merged_folder, _stage(0.5, 0.65, progress))
        result = check_gguf(staged, quant, ref, _stage(0.65, 0.98, progress))
        if not result.passed:
            raise ExportCheckFailed(f"The {quant} GGUF file was not kept: {result.reason}.", result)
        staged.rename(final)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    from transformers import AutoTokenizer
    modelfile = write_modelfile(out_dir, final.name, AutoTokenizer.from_pretrained(merged_folder), system_prompt)
    if model_card is not None:
        (out_dir / "README.md").write_text(model_card.rstrip("\n") + "\n\n" + _gguf_section(final, quant, base, result))
    progress(1.0, f"{quant} file checked")
    return GgufExport(final, quant, final.stat().st_size, result, modelfile, base,
                      round(time.monotonic() - started, 1), ollama_commands(base))


def _gguf_section(path: Path, quant: str, name: str, result: FormatCheck) -> str:
    create, run = ollama_commands(name)
    lines = ["## GGUF file", "", f"- File: {path.name} ({quant}, {size_text(path.stat().st_size)}), for llama.cpp and Ollama",
             f"- Ollama: in this folder run `{create}`, then `{run}`", ""]
    return "\n".join(lines) + "\n" + markdown([result])
