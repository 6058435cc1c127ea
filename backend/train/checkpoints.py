"""Checkpoints a crash cannot spoil: resume takes the newest *complete* checkpoint, and the adapter is written
beside its folder and swapped in whole.

The Trainer writes a checkpoint's files one after another, trainer_state.json last: a kill or a full disk
during a save leaves `checkpoint-N` without it, or with weights cut short, and a power cut can leave any file short
even after trainer_state.json reached the disk. Taking the highest number would then fail on every retry, so every
file that resume reads is checked and incomplete checkpoints are skipped (and removed, with a line in the log).
"""
from __future__ import annotations

import json
import secrets
import shutil
import struct
import zipfile
from pathlib import Path

WEIGHTS = ("adapter_model.safetensors", "model.safetensors")


def step_of(path: Path) -> int:
    try:
        return int(path.name.split("-")[-1])
    except ValueError:
        return -1


def problem(checkpoint: Path) -> str | None:
    """Why a checkpoint folder cannot be resumed from, in words; None when it is complete."""
    state = checkpoint / "trainer_state.json"
    if not state.exists():
        return "no trainer_state.json (its save was cut short)"
    try:
        json.loads(state.read_text())
    except (OSError, ValueError):
        return "trainer_state.json is cut short"
    weights = next((checkpoint / name for name in WEIGHTS if (checkpoint / name).exists()), None)
    if weights is None:
        return "no adapter weights"
    if not safetensors_whole(weights):
        return f"{weights.name} is cut short"
    # Resume also reads the optimizer, the scheduler, the random states and the adapter's config: a power cut can
    # leave any of them short even though trainer_state.json made it to the disk.
    for path in sorted(checkpoint.iterdir()):
        if path.suffix in TORCH_FILES and not torch_file_whole(path):
            return f"{path.name} is cut short"
        if path.name in CONFIGS and not json_whole(path):
            return f"{path.name} is cut short"
    return None


CONFIGS = ("adapter_config.json", "config.json")  # read on resume (not the tokenizer's files: the run's own are used)
TORCH_FILES = (".pt", ".pth", ".bin")  # torch.save's zip archives: optimizer.pt, scheduler.pt, rng_state*.pth, ...


def torch_file_whole(path: Path) -> bool:
    """Whether a torch.save file is a whole zip archive: its central directory is readable at the end and every
    member it lists lies inside the file. Cheap: nothing is unpacked."""
    try:
        size = path.stat().st_size
        with zipfile.ZipFile(path) as archive:
            return all(m.header_offset + m.compress_size <= size for m in archive.infolist())
    except (OSError, zipfile.BadZipFile, ValueError):
        return False


def json_whole(path: Path) -> bool:
    try:
        json.loads(path.read_text())
        return True
    except (OSError, ValueError):
        return False


def safetensors_whole(path: Path) -> bool:
    """Whether a .safetensors file is as long as its header says (a file cut short by a crash is not)."""
    try:
        with open(path, "rb") as f:
            (length,) = struct.unpack("<Q", f.read(8))
            header = json.loads(f.read(length))
        end = max((t["data_offsets"][1] for k, t in header.items() if k != "__metadata__"), default=0)
        return path.stat().st_size >= 8 + length + end
    except (OSError, ValueError, KeyError, struct.error):
        return False


def latest_complete(folder: Path, log=print) -> Path | None:
    """The newest checkpoint in `folder` that is complete. Newer incomplete ones are logged and removed, so the
    Trainer's own rotation never counts them."""
    checkpoints = sorted((p for p in Path(folder).glob("checkpoint-*") if p.is_dir() and step_of(p) >= 0),
                         key=step_of, reverse=True)
    for checkpoint in checkpoints:
        why = problem(checkpoint)
        if why is None:
            return checkpoint
        log(f"Skipped {checkpoint.name}: {why}. Removed it; resuming from the one before.")
        shutil.rmtree(checkpoint, ignore_errors=True)
    return None


def save_adapter(model, adapter_dir: Path, **kwargs) -> Path:
    """model.save_pretrained into a folder beside `adapter_dir`, then swapped in: a crash leaves the old adapter or
    the new one, never half of one."""
    adapter_dir = Path(adapter_dir)
    token = secrets.token_hex(4)
    tmp = adapter_dir.with_name(f".{adapter_dir.name}.{token}.tmp")
    old = adapter_dir.with_name(f".{adapter_dir.name}.{token}.old")
    try:
        model.save_pretrained(str(tmp), **kwargs)
        if adapter_dir.exists():
            adapter_dir.rename(old)
        try:
            tmp.rename(adapter_dir)
        except OSError:
            if old.exists() and not adapter_dir.exists():
                old.rename(adapter_dir)
            raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)
    return adapter_dir
