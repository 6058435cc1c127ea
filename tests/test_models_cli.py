"""`python app.py models [--json]`, `models pull ID` against a local stand-in for the Hugging Face Hub, the offline
sentence, and `train --model`: a hub id downloaded first with a progress bar, a model too big refused before it is
queued."""
import json
from pathlib import Path

import pytest

from backend.models.catalogue import catalogue
from backend.cli import main
from backend.models.memory import GB
from backend.models.loading import Hardware
from tests.hub_standin import HubStandIn, closed_port
from tests.test_cli import app, last_json

TOKEN = "hf_CommandLineSeCrEt0123456789"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    return tmp_path / "models"


@pytest.fixture
def tiny_files(tiny_model):
    return {p.name: p.read_bytes() for p in Path(tiny_model).iterdir() if p.is_file()}


def test_models_json_lists_every_catalogue_model_with_its_verdict(cache):
    result = app("models", "--json", "--set", "max_length=256")
    assert result.returncode == 0, result.stderr
    listed = last_json(result)
    assert [m["id"] for m in listed] == [entry.id for entry in catalogue()]
    for model in listed:
        assert isinstance(model["fits"], bool) and model["message"].startswith(("Fits", "Cannot fit"))
        assert model["needs_bytes"] > 0 and model["free_bytes"] > 0 and model["pulled"] is False
        assert set(model["changes"]) <= {"quantization", "batch_size", "grad_accum", "max_length"}
        assert model["download_bytes"] > 0 and model["licence"] and model["template"]
    text = app("models")
    assert text.returncode == 0 and "Qwen/Qwen2.5-0.5B-Instruct" in text.stdout and "not downloaded" in text.stdout


def test_models_pull_downloads_with_a_progress_bar_and_a_token_from_a_file(cache, tiny_files, tmp_path):
    token_file = tmp_path / "token.txt"
    token_file.write_text(TOKEN + "\n")
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        standin.add_repo("org/gated", tiny_files, gated=True, token=TOKEN)
        env = {"HF_ENDPOINT": standin.url}
        result = app("models", "pull", "org/tiny", env=env)
        refused = app("models", "pull", "org/gated", env=env)
        gated = app("models", "pull", "org/gated", "--token-file", str(token_file), env=env)
    assert result.returncode == 0, result.stderr
    assert (cache / "org--tiny" / "model.safetensors").read_bytes() == tiny_files["model.safetensors"]
    assert "MB/s" in result.stderr and "100%" in result.stderr  # tqdm: bytes in MB and the speed
    assert result.stdout.strip() == f"Downloaded org/tiny into {cache / 'org--tiny'}"
    assert refused.returncode == 1 and "gated model" in refused.stderr and "Traceback" not in refused.stderr
    assert gated.returncode == 0, gated.stderr
    assert TOKEN not in gated.stdout + gated.stderr
    assert not [p for p in cache.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]
    listed = last_json(app("models", "--json"))
    assert all(m["pulled"] is False for m in listed)  # stand-in ids are not catalogue ids


def test_no_network_is_one_sentence(cache):
    result = app("models", "pull", "Qwen/Qwen2.5-0.5B-Instruct")  # HF_ENDPOINT: a closed port
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == ("Error: Cannot reach the Hugging Face Hub: give a model folder "
                                                      "instead.")
    assert "Traceback" not in result.stderr


def test_a_bad_token_file_or_id_is_one_line(cache, tmp_path):
    empty = tmp_path / "empty.txt"
    empty.write_text("")
    for args, words in [(("models", "pull", "org/x", "--token-file", str(empty)), "is empty"),
                        (("models", "pull", "org/x", "--token-file", str(tmp_path / "none")), "Cannot read"),
                        (("models", "pull", "not-an-id"), "not a Hugging Face model id")]:
        result = app(*args)
        lines = result.stderr.strip().splitlines()
        assert result.returncode == 1 and len(lines) == 1 and words in lines[0], (args, result.stderr)


def test_train_refuses_a_model_that_cannot_fit_before_it_is_queued_or_downloaded(cache, chat_file, monkeypatch,
                                                                                  capsys):
    monkeypatch.setattr("backend.models.loading.detect_hardware", lambda: Hardware("cpu", "bfloat16", "none"))
    monkeypatch.setattr("backend.models.memory.free_memory", lambda device: 1 * GB)
    code = main(["train", "--data", str(chat_file), "--model", "meta-llama/Llama-3.1-8B-Instruct"])
    err = capsys.readouterr().err
    assert code == 1 and err.startswith("Error: Not started: Cannot fit on this machine: needs about")
    assert err.strip().endswith("1.0 GB free.")
    monkeypatch.setattr("backend.models.memory.free_memory", lambda device: 3 * GB)
    code = main(["train", "--data", str(chat_file), "--model", "qwen/qwen2.5-1.5b-instruct", "--set", "quantization=none"])
    err = capsys.readouterr().err
    assert code == 1 and "Fits with 4-bit QLoRA" in err and "To train with them, add: --set quantization=4bit" in err
    from backend.db import connect
    from backend.runs import RunStore
    assert RunStore(connect()).list() == [] and not (cache.exists() and any(cache.iterdir()))  # nothing queued, nothing downloaded


def test_train_with_a_hub_id_downloads_it_first_with_progress_then_trains(cache, tiny_files, chat_file):
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        result = app("train", "--data", str(chat_file), "--model", "org/tiny", "--json", "--set", "max_steps=2",
                     "--set", "rehearsal=0", "--set", "batch_size=2", "--set", "probe=false",
                     "--set", "max_length=64", "--set", "validation_split=0", env={"HF_ENDPOINT": standin.url})
    assert result.returncode == 0, result.stderr
    assert "Downloading org/tiny" in result.stderr and "MB/s" in result.stderr
    summary = last_json(result)
    assert summary["status"] == "done" and summary["metrics"]["steps"] == 2
    from backend.db import connect
    from backend.runs import RunStore
    assert RunStore(connect()).config(summary["run_id"]).model == "org/tiny"
    assert json.loads((cache / "org--tiny" / ".tuneloop-pull.json").read_text())["model"] == "org/tiny"
