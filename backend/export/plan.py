"""What an export of a run will be, before any work starts, and where exports live.

- Where: each run's exports go to `exports/<run id>/<name>-<what>-<time>/` in the workspace (the only folder the
  web app serves files from), so the newest complete export of a run can be found again (to upload it).
- How large: the merged model in float32 and each GGUF format are sized from the base model's folder (merging
  a LoRA adapter changes no shape), the adapter from its files; nothing is loaded or merged.
- Whether GGUF can be written at all: the base model's architecture is checked first, and the sentence that names
  what is supported is raised before any merge.
"""
import functools
import json
import math
import re
import shutil
import struct
import zipfile
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from backend import workspace
from backend.errors import ExportError, disk_full
from backend.export.gguf import QUANTS, estimate_sizes, read_folder
from backend.words import size_text  # noqa: F401  the export page and `app.py export` name sizes with it

# Plain words for each GGUF format, measured on the built-in model (docs/benchmarks.md, "GGUF export").
FORMAT_WORDS = {
    "f16": "full quality: the same answers as the merged model (the largest GGUF)",
    "q8_0": "about half the size of f16, answers almost the same",
    "q4_0": "about a third of f16, the smallest; answers can change",
}
DEFAULT_QUANT = "q8_0"
_PARTIAL = re.compile(r"(^\.)|(\.partial$)")


@dataclass
class ExpectedSizes:
    merged: int  # bytes: the merged model in float32 safetensors, with its tokenizer
    adapter: int  # bytes: the adapter folder as it is
    gguf: dict = field(default_factory=dict)  # format -> bytes; empty when GGUF cannot be written
    gguf_refusal: str = ""  # why GGUF cannot be written (names what is supported); empty when it can


def base_folder(store, run_id: str) -> Path:
    from backend.models.loading import resolve_model
    return resolve_model(store.config(run_id).model)


def check_gguf_possible(store, run_id: str) -> Path:
    """The run's base model folder, when GGUF can be written from it; else ExportError naming what is supported.
    Cheap (reads config.json): run it before merging."""
    folder = base_folder(store, run_id)
    read_folder(folder)
    return folder


def expected_sizes(store, run_id: str) -> ExpectedSizes:
    """Sizes of each kind of export of a finished run, from the files on disk (a second or two on first call)."""
    adapter = store.finished_adapter(run_id)
    folder = base_folder(store, run_id)
    sizes = ExpectedSizes(merged=_merged_bytes(folder), adapter=_folder_bytes(adapter))
    try:
        sizes.gguf = dict(_gguf_sizes(str(folder), _stamp(folder)))
    except ExportError as refused:
        sizes.gguf_refusal = str(refused)
    return sizes


@functools.lru_cache(maxsize=16)
def _gguf_sizes(folder: str, stamp: float) -> tuple:
    return tuple(estimate_sizes(folder, QUANTS).items())


def _stamp(folder: Path) -> float:
    config = folder / "config.json"
    return config.stat().st_mtime if config.exists() else 0.0


def _folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in Path(folder).rglob("*") if p.is_file())


def _safetensors_values(path: Path) -> int:
    """Number of values stored in a .safetensors file, read from its header alone."""
    with open(path, "rb") as f:
        length = struct.unpack("<Q", f.read(8))[0]
        header = json.loads(f.read(length))
    return sum(math.prod(t["shape"]) for name, t in header.items() if name != "__metadata__")


def _merged_bytes(folder: Path) -> int:
    """float32 weights plus the tokenizer and config files, as the merged export writes them."""
    weights = sum(4 * _safetensors_values(p) for p in folder.glob("*.safetensors"))
    others = sum(p.stat().st_size for p in folder.iterdir() if p.is_file() and p.suffix in (".json", ".jinja", ".txt"))
    return weights + others


def check_words(check) -> str:
    """A GGUF file's check (backend.export.gguf_check.FormatCheck) in one or two sentences for people."""
    same = f"{check.agreeing} of {check.prompts} answers the same as the merged model"
    if check.near_ties:
        same += f" ({check.near_ties} more parted only where the merged model itself was undecided)"
    if check.quant == "q4_0":
        return (f"Checked: the file loads and reads text exactly like the merged model; {same} (4-bit rounding "
                "changes answers; for q4_0 this is shown, not required).")
    return f"Checked: {same}. The file was loaded back and asked the same everyday questions."


# ----------------------------------------------------------------------------------------- where they go

def _safe_id(run_id: str) -> str:
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", run_id or ""):
        raise ExportError(f"'{run_id}' is not a run id.")
    return run_id


def run_exports_dir(run_id: str) -> Path:
    return workspace.exports_dir() / _safe_id(run_id)


def export_folder(run: dict, what: str) -> Path:
    """A new folder for one export of `run` ("merged", "adapter" or a GGUF format) under the workspace's exports."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run["name"]).strip("-.")[:60] or run["id"]
    what = what if what in ("merged", "adapter") else f"gguf-{what}"
    return run_exports_dir(run["id"]) / f"{slug}-{what}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


@dataclass(frozen=True)
class FinishedExport:
    folder: Path
    kind: str  # "merged model", "adapter", "GGUF q8_0"
    when: datetime


def latest_export(run_id: str) -> FinishedExport | None:
    """The newest complete export of a run in the workspace (a folder with its model card), or None."""
    folder = run_exports_dir(run_id)
    done = [p for p in folder.iterdir() if p.is_dir() and not _PARTIAL.search(p.name) and (p / "README.md").exists()] \
        if folder.exists() else []
    if not done:
        return None
    newest = max(done, key=lambda p: (p / "README.md").stat().st_mtime)
    return FinishedExport(newest, export_kind(newest), datetime.fromtimestamp((newest / "README.md").stat().st_mtime))


def export_kind(folder: Path) -> str:
    ggufs = sorted(folder.glob("*.gguf"))
    if ggufs:
        return "GGUF " + ggufs[0].stem.rsplit("-", 1)[-1]
    return "adapter" if (folder / "adapter_config.json").exists() else "merged model"


def modelfile_zip(folder: Path) -> Path:
    """`<folder>-ollama.zip` beside the folder: the Modelfile and the model card, to put next to the .gguf."""
    target = folder.with_name(folder.name + "-ollama.zip")
    partial = target.with_name("." + target.name + ".partial")
    try:
        with zipfile.ZipFile(partial, "w", zipfile.ZIP_DEFLATED) as archive:
            for name in ("Modelfile", "README.md"):
                archive.write(folder / name, name)
        shutil.move(partial, target)
    except Exception as exc:
        partial.unlink(missing_ok=True)
        if disk_full(exc):
            raise ExportError(f"The disk filled up while zipping the Modelfile: the folder '{folder}' is complete; "
                              "free some space and export again, or take the Modelfile from the folder.") from None
        raise
    return target
