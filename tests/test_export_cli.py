"""`python app.py export`: a checked GGUF with the expected size first, a progress bar, the check, the file and the
Ollama commands; a failed check exits 1 with the reason in one line; upload to a local stand-in Hub with the token
from HF_TOKEN or a file (never argv), private unless --public; offline is one sentence."""
import os
import re

import pytest

from backend import workspace
from backend.cli import build_parser, main
from backend.export.hub_upload import UNREACHABLE
from tests.fake_runs import fake_run
from tests.learned_runs import learned_adapter, learned_run
from tests.test_cli import app, last_json
from tests.test_export_tab import gpt2_run
from tests.test_hub_upload import TOKEN, StandInHub, _closed_port


def export_parser():
    commands = next(a for a in build_parser()._actions if a.dest == "command")
    return commands.choices["export"]


def test_every_export_option_has_help():
    for action in export_parser()._actions:
        assert action.help and len(action.help) > 10, action.dest


def test_gguf_q8_0_from_the_command_line(tiny_model, model_cache):
    run_id = learned_run(tiny_model, learned_adapter(model_cache, tiny_model), name="hello")
    result = app("export", run_id, "--gguf", "q8_0", "--json")
    assert result.returncode == 0, result.stderr
    assert re.search(r"^Expected size: [\d.]+ MB \(other GGUF formats: f16 [\d.]+ MB, q4_0 [\d.]+ MB\)$",
                     result.stderr, re.MULTILINE), result.stderr
    assert "100%|" in result.stderr  # the progress bar got to the end
    out = result.stdout
    assert "Checked: 5 of 5 answers the same as the merged model" in out
    assert "  ollama create hello -f Modelfile\n  ollama run hello" in out
    summary = last_json(result)
    path = workspace.exports_dir() / run_id
    assert summary["path"].startswith(str(path)) and summary["path"].endswith("hello-q8_0.gguf")
    assert summary["check"]["passed"] and summary["quant"] == "q8_0"
    assert summary["ollama_commands"] == ["ollama create hello -f Modelfile", "ollama run hello"]
    with open(summary["path"], "rb") as f:
        assert f.read(4) == b"GGUF"
    assert os.path.exists(os.path.join(summary["folder"], "Modelfile"))


def test_a_failed_check_exits_1_with_the_reason_in_one_line(tiny_model, tmp_path, monkeypatch, capsys):
    import backend.export.gguf as gguf_export
    monkeypatch.setattr(gguf_export, "_permute", lambda weights, n_head, n_head_kv=None: weights)  # a converter bug
    run_id = fake_run(tiny_model)
    assert main(["export", run_id, "--gguf", "f16", "--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert err.strip().splitlines()[-1].startswith("Error: The f16 GGUF file was not kept: f16 logits differ")
    assert "Traceback" not in err and not (tmp_path / "out").exists()


def test_an_unsupported_architecture_is_refused_before_any_work(tmp_path, capsys):
    run_id = gpt2_run(tmp_path / "tiny-gpt2")
    capsys.readouterr()  # what building the model printed
    assert main(["export", run_id, "--gguf", "q8_0"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("Error: GGUF export supports Llama, Mistral, Qwen2/Qwen2.5 and SmolLM")
    assert not any(workspace.exports_dir().iterdir())


@pytest.fixture
def hub():
    server = StandInHub(TOKEN)
    yield server
    server.close()


def test_upload_to_the_hub_with_the_token_from_the_environment_or_a_file(tiny_model, hub, tmp_path):
    run_id = fake_run(tiny_model)
    env = {"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": TOKEN}
    sent = app("export", run_id, "--adapter-only", "--hub", "me/tiny", "--json", env=env)
    assert sent.returncode == 0, sent.stderr
    assert hub.repos["me/tiny"]["private"] is True
    assert {"README.md", "adapter_model.safetensors"} <= set(hub.repos["me/tiny"]["files"])
    assert last_json(sent)["hub"] == {"repo_id": "me/tiny", "url": f"{hub.endpoint}/me/tiny", "private": True,
                                      "files": len(hub.repos["me/tiny"]["files"])}
    assert "Uploaded" in sent.stdout and TOKEN not in sent.stdout + sent.stderr

    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    public = app("export", run_id, "--adapter-only", "--hub", "me/open", "--public", "--token-file", str(token_file),
                 env={"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": ""})
    assert public.returncode == 0, public.stderr
    assert hub.repos["me/open"]["private"] is False
    home = workspace.home()
    assert not [p for p in home.rglob("*") if p.is_file() and TOKEN.encode() in p.read_bytes()]


def test_upload_without_a_token_or_a_network_is_one_sentence(tiny_model, hub):
    run_id = fake_run(tiny_model)
    missing = app("export", run_id, "--adapter-only", "--hub", "me/tiny", env={"HF_ENDPOINT": hub.endpoint, "HF_TOKEN": ""})
    assert missing.returncode == 1
    assert missing.stderr.strip().splitlines() == ["Error: Uploading needs a Hugging Face access token with write "
                                                   "permission: set HF_TOKEN, or give --token-file PATH (a file "
                                                   "holding the token)."]
    assert not any(workspace.exports_dir().iterdir())  # refused before exporting

    offline = app("export", run_id, "--adapter-only", "--hub", "me/tiny",
                  env={"HF_ENDPOINT": f"http://127.0.0.1:{_closed_port()}", "HF_TOKEN": TOKEN})
    assert offline.returncode == 1
    assert offline.stderr.strip().splitlines()[-1] == f"Error: {UNREACHABLE}"
    assert TOKEN not in offline.stderr
