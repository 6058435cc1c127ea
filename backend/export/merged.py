"""Export a finished run: the adapter merged into a full-precision base (a plain Hugging Face folder
with a model card), or the adapter alone; optionally zipped."""
import errno
import json
import secrets
import shutil
from contextlib import contextmanager
from datetime import date
from pathlib import Path

from backend.errors import ExportError, TuneloopError, disk_full
from backend.models.loading import public_name
from backend.runs import RESULT_NAMES, results_text


def export_run(store, run_id: str, out: Path, adapter_only: bool = False, zip_it: bool = False,
               progress=lambda message: None) -> Path:
    run = store.get(run_id)
    adapter = store.finished_adapter(run_id)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuneloopError(f"'{out}' is not empty (or is a file); choose a new folder for the export.")
    config = store.config(run_id)
    from backend.export.plan import expected_sizes
    sizes = expected_sizes(store, run_id)
    size = sizes.adapter if adapter_only else sizes.merged
    # a zip of weights is about as large as the weights
    room_for(out, size * (2 if zip_it else 1), "the folder and its zip" if zip_it else "")
    # A folder of its own beside the target, renamed when complete: an interrupted export never looks finished,
    # and nothing that was there before is touched.
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    with _nothing_left_if_it_fails(out, tmp):
        if adapter_only:
            progress("Copying the adapter")
            shutil.copytree(adapter, tmp)
        else:
            progress("Loading the base model in full precision")
            _merge(config.model, adapter, tmp)
        progress("Writing the model card")
        (tmp / "README.md").write_text(model_card(store, run, adapter_only))
        if out.exists():
            out.rmdir()
        tmp.rename(out)
    if zip_it:
        progress("Zipping")
        return zip_folder(out)
    return out


def zip_folder(folder: Path) -> Path:
    """`<folder>.zip` beside the folder, written under another name and renamed when whole: a full disk leaves no
    corrupt zip behind, and the folder, complete already, stays."""
    target = folder.with_name(folder.name + ".zip")
    partial = folder.with_name(f".{folder.name}.{secrets.token_hex(4)}.partial")
    try:
        written = Path(shutil.make_archive(str(partial), "zip", root_dir=folder))
        written.rename(target)
    except Exception as exc:
        Path(str(partial) + ".zip").unlink(missing_ok=True)
        if disk_full(exc):
            raise ExportError(f"The disk filled up during the export, while zipping: {_free_words(folder)}; the "
                              f"folder '{folder}' is complete, but no zip was kept. Free some space and export "
                              "again, or use the folder.") from None
        raise
    return target


def free_bytes(folder: Path) -> int:
    """Free space on the disk that holds `folder`, or would hold it (its nearest existing parent)."""
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    return shutil.disk_usage(path).free


MARGIN = 1024 * 1024  # model card, Modelfile, file system overhead


def room_for(out: Path, needed: int, while_working: str = ""):
    """Refuses, before any work, an export the disk that would hold `out` has no room for. `while_working`: what
    the size counts beyond the export itself, in words."""
    from backend.words import size_text
    free = free_bytes(out.parent)
    if free < needed + MARGIN:
        raise ExportError(f"The disk is full: this export needs {size_text(needed + MARGIN)}"
                          f"{f' ({while_working})' if while_working else ''}, {size_text(free)} free in "
                          f"'{_existing(out.parent)}'. Free some space, or export to a folder on another disk.")


def _existing(path: Path) -> Path:
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _free_words(folder: Path) -> str:
    from backend.words import size_text
    return f"{size_text(free_bytes(folder))} free in '{_existing(folder)}'"


@contextmanager
def _nothing_left_if_it_fails(out: Path, tmp: Path):
    """Creates the folders above `out`; on any failure removes `tmp` and the folders it created (an empty
    exports/<run>/ too), and words a full disk in one sentence."""
    made = [p for p in [out.parent, *out.parent.parents] if not p.exists()]
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        yield
    except Exception as exc:
        shutil.rmtree(tmp, ignore_errors=True)
        for folder in made:  # deepest first
            try:
                folder.rmdir()
            except OSError:
                break
        if disk_full(exc):
            raise ExportError(f"The disk filled up during the export: {_free_words(out.parent)}; nothing was kept. "
                              "Free some space and export again.") from None
        raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _merge(model_name: str, adapter: Path, target: Path):
    """Merge into float32 weights, never into a 4-bit base (that would bake in quantization error)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from backend.models.loading import load_tokenizer, resolve_model

    base_path = resolve_model(model_name)
    base = AutoModelForCausalLM.from_pretrained(base_path, dtype=torch.float32, use_safetensors=True)
    merged = PeftModel.from_pretrained(base, str(adapter)).merge_and_unload()
    merged.save_pretrained(target, safe_serialization=True)
    tokenizer = load_tokenizer(model_name)
    tokenizer.save_pretrained(target)
    if merged.generation_config is not None:
        merged.generation_config.save_pretrained(target)


def model_card(store, run: dict, adapter_only: bool) -> str:
    config = run["config"]
    metrics = run.get("final_metrics") or {}
    probe = run.get("probe") or {}
    lines = [
        f"# {run['name']}",
        "",
        f"Fine-tuned with Tuneloop on {date.today().isoformat()}.",
        "",
        f"- Base model: {public_name(config['model'])}"
        + (f" (built on run {config['base_run']})" if config.get("base_run") else ""),
        f"- Method: {config['method'].upper()} with {'QLoRA (4-bit)' if config['quantization'] == '4bit' else 'LoRA'}",
        f"- Contents: {'LoRA adapter only' if adapter_only else 'adapter merged into the base weights (float32)'}",
        f"- Data: {config['dataset']}",
        "",
        "## The settings it was trained with",
        "",
        "Each by the name `python app.py train --set NAME=VALUE` takes; `python app.py settings` says what each one "
        "does, with its default and range.",
        "",
        "```json",
        json.dumps({k: v for k, v in config.items() if k not in ("name", "dataset", "model", "base_run")}, indent=2),
        "```",
        "",
        "## How the training ended",
        "",
    ]
    named = results_text(metrics)  # the words of the Runs tab's Results line
    others = [f"{k} {v:.4g}" if isinstance(v, float) else f"{k} {v}" for k, v in metrics.items()
              if k not in RESULT_NAMES]
    lines.append(f"{named[:1].upper()}{named[1:]}." if named else "Nothing was recorded.")
    if others:
        lines += ["", f"Other measures, by the names the training library logs them under: {', '.join(others)}."]
    from backend.evaluation.report_card import card_markdown, report_card
    lines += [""] + card_markdown(report_card(store.db, run), settings=False)  # settings: above
    lines += ["", "## Forgetting probe", ""]
    if probe:
        lines.append(f"{probe['summary']}.")
        lines.append("")
        lines.append("| question | base | tuned |")
        lines.append("|---|---|---|")
        for item in probe.get("items", []):
            cells = [item["question"], item["base"], item["tuned"]]
            lines.append("| " + " | ".join(c.replace("|", "/").replace("\n", " ")[:120] for c in cells) + " |")
    else:
        lines.append("Not run for this model.")
    return "\n".join(lines) + "\n"


def export_gguf_for_run(store, run_id: str, out: Path, quant: str = "q8_0",
                        progress=lambda fraction, message: None):
    """Merge a finished run into float32 weights, write it as one GGUF file in `quant` (f16, q8_0, q4_0),
    check it against the merged model, and put it in `out` with an Ollama Modelfile and a model card.
    Returns a backend.export.bundle.GgufExport; a file that fails its check raises ExportCheckFailed."""
    from backend.export.bundle import export_gguf

    run = store.get(run_id)
    adapter = store.finished_adapter(run_id)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuneloopError(f"The folder '{out}' is not empty; choose a new folder for the export.")
    config = run["config"]
    from backend.export.plan import expected_sizes
    sizes = expected_sizes(store, run_id)
    room_for(out, sizes.merged + sizes.gguf.get(quant, sizes.merged),
             "the model merged in float32 beside the GGUF file while it is written")
    # Like export_run: a folder of its own beside the target, renamed when complete; nothing there before is touched.
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    with _nothing_left_if_it_fails(out, tmp):
        progress(0.0, "Loading the base model in full precision")
        _merge(config["model"], adapter, tmp / "merged")
        description = f"Fine-tuned with Tuneloop ({config['method'].upper()}) from {public_name(config['model'])}."
        result = export_gguf(tmp / "merged", tmp / "gguf", quant, run["name"], description=description,
                             model_card=model_card(store, run, adapter_only=False),
                             progress=lambda fraction, message: progress(0.15 + 0.85 * fraction, message))
        if out.exists():
            out.rmdir()
        (tmp / "gguf").rename(out)
    result.path = out / result.path.name
    return result
