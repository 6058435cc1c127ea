"""Export a finished run: the adapter merged into a full-precision base (a plain Hugging Face folder
with a model card), or the adapter alone; optionally zipped."""
import json
import secrets
import shutil
from datetime import date
from pathlib import Path

from backend.errors import TuneloopError


def export_run(store, run_id: str, out: Path, adapter_only: bool = False, zip_it: bool = False,
               progress=lambda message: None) -> Path:
    run = store.get(run_id)
    adapter = store.finished_adapter(run_id)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuneloopError(f"'{out}' is not empty (or is a file); choose a new folder for the export.")
    config = store.config(run_id)
    out.parent.mkdir(parents=True, exist_ok=True)
    # A folder of its own beside the target, renamed when complete: an interrupted export never looks finished,
    # and nothing that was there before is touched.
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
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
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    if zip_it:
        progress("Zipping")
        return Path(shutil.make_archive(str(out), "zip", root_dir=out))
    return out


def _merge(model_name: str, adapter: Path, target: Path):
    """Merge into float32 weights, never into a 4-bit base (that would bake in quantization error)."""
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from backend.models import load_tokenizer, resolve_model

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
        f"- Base model: {config['model']}" + (f" (built on run {config['base_run']})" if config.get("base_run") else ""),
        f"- Method: {config['method'].upper()} with {'QLoRA (4-bit)' if config['quantization'] == '4bit' else 'LoRA'}",
        f"- Contents: {'LoRA adapter only' if adapter_only else 'adapter merged into the base weights (float32)'}",
        f"- Data: {config['dataset']}",
        "",
        "## Hyperparameters",
        "",
        "```json",
        json.dumps({k: v for k, v in config.items() if k not in ("name", "dataset", "model", "base_run")}, indent=2),
        "```",
        "",
        "## Final metrics",
        "",
    ]
    lines += [f"- {k}: {v:.4g}" if isinstance(v, float) else f"- {k}: {v}" for k, v in metrics.items()] or ["- none recorded"]
    from backend.report_card import card_markdown, report_card
    lines += [""] + card_markdown(report_card(store.db, run), settings=False)  # settings: above, as hyperparameters
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
    Returns a backend.gguf_bundle.GgufExport; a file that fails its check raises ExportCheckFailed."""
    from backend.gguf_bundle import export_gguf

    run = store.get(run_id)
    adapter = store.finished_adapter(run_id)
    out = Path(out).expanduser().resolve()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise TuneloopError(f"The folder '{out}' is not empty; choose a new folder for the export.")
    config = run["config"]
    # Like export_run: a folder of its own beside the target, renamed when complete; nothing there before is touched.
    tmp = out.with_name(f".{out.name}.{secrets.token_hex(4)}.partial")
    try:
        progress(0.0, "Loading the base model in full precision")
        _merge(config["model"], adapter, tmp / "merged")
        description = f"Fine-tuned with Tuneloop ({config['method'].upper()}) from {config['model'] or 'the built-in SmolLM2-135M-Instruct'}."
        result = export_gguf(tmp / "merged", tmp / "gguf", quant, run["name"], description=description,
                             model_card=model_card(store, run, adapter_only=False),
                             progress=lambda fraction, message: progress(0.15 + 0.85 * fraction, message))
        out.parent.mkdir(parents=True, exist_ok=True)
        if out.exists():
            out.rmdir()
        (tmp / "gguf").rename(out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    result.path = out / result.path.name
    return result
