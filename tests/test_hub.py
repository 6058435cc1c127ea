"""Downloading a model from the Hub: through huggingface_hub's real client code, against a local stand-in server
(tests/hub_standin.py). Only safetensors and tokenizer files arrive, progress is reported, an interrupted pull
resumes from where it stopped, gated models need a token that is kept nowhere, and no network is one sentence."""
import json
import re
from pathlib import Path

import pytest

from backend.models import hub
from backend.errors import ModelError
from tests.hub_standin import HubStandIn, closed_port

TOKEN = "hf_SeCrEtToKeN0123456789"
JUNK = {"pytorch_model.bin": b"\x80\x04pickle", "modeling_custom.py": b"import os", "README.md": b"# card",
        "consolidated.safetensors": b"x" * 1000, "original/consolidated.00.pth": b"\x80\x04pickle"}


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """Pulls go to a fresh cache (not the shared one), with no Hugging Face token or endpoint from the machine."""
    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "models"))
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf_home"))
    for name in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(hub, "PROGRESS_EVERY_S", 0.0)
    return tmp_path / "models"


@pytest.fixture
def tiny_files(tiny_model):
    return {p.name: p.read_bytes() for p in Path(tiny_model).iterdir() if p.is_file()}


def test_pull_fetches_safetensors_and_tokenizer_files_only(cache, tiny_files):
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", {**tiny_files, **JUNK})
        folder = hub.pull("org/tiny", endpoint=standin.url)
    assert folder == cache / "org--tiny" and hub.pulled("org/tiny") == folder
    assert sorted(p.name for p in folder.iterdir() if not p.name.startswith(".")) == sorted(tiny_files)
    for name, data in tiny_files.items():
        assert (folder / name).read_bytes() == data
    fetched = {r.path.rsplit("/", 1)[-1] for r in standin.requests if "/resolve/" in r.path}
    assert fetched == set(tiny_files)  # never the pickles, the Python file, the card or Mistral's consolidated copy
    marker = json.loads((folder / hub.MARKER).read_text())
    assert marker["model"] == "org/tiny" and set(marker["files"]) == set(tiny_files)


def test_a_pulled_model_resolves_and_loads_without_the_network(cache, tiny_files, monkeypatch):
    from backend.models.loading import load_model, resolve_model

    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        monkeypatch.setenv("HF_ENDPOINT", standin.url)
        assert resolve_model("org/tiny") == cache / "org--tiny"  # pulled on first use
    monkeypatch.setenv("HF_ENDPOINT", closed_port())
    assert resolve_model("org/tiny") == cache / "org--tiny"  # from the cache: the server is gone
    model = load_model("org/tiny")
    assert model.config.num_hidden_layers == 2


def test_progress_counts_megabytes_up_to_the_total_with_a_speed(cache, tiny_files):
    seen = []
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        hub.pull("org/tiny", progress=seen.append, endpoint=standin.url)
    total = sum(len(data) for data in tiny_files.values())
    assert seen and all(p.total_bytes == total for p in seen)
    assert [p.done_bytes for p in seen] == sorted(p.done_bytes for p in seen)
    assert seen[-1].done_bytes == total and seen[-1].bytes_per_second > 0
    assert re.fullmatch(r"\d+ MB of \d+ MB, [\d.]+ MB/s", seen[-1].text)


class Interrupted(Exception):
    pass


def test_an_interrupted_pull_goes_on_from_where_it_stopped(cache, tiny_files, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 1024 * 1024)
    weights = tiny_files["model.safetensors"]

    def stop_midway(progress):
        if progress.file == "model.safetensors" and progress.done_bytes > len(tiny_files["tokenizer.json"]) + 3e6:
            raise Interrupted  # as if the person closed the app or the machine went to sleep

    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        with pytest.raises(Interrupted):
            hub.pull("org/tiny", progress=stop_midway, endpoint=standin.url)
        part = cache / "org--tiny" / "model.safetensors.part"
        kept = part.stat().st_size
        assert 0 < kept < len(weights) and hub.pulled("org/tiny") is None
        folder = hub.pull("org/tiny", endpoint=standin.url)
        again = standin.served("model.safetensors")[-1]
    assert again.range == f"bytes={kept}-"
    assert (folder / "model.safetensors").read_bytes() == weights and not part.exists()
    small = [r for r in standin.served("tokenizer.json")]
    assert len(small) == 1  # finished files are not fetched twice


def test_a_cut_connection_is_resumed_within_the_pull(cache, tiny_files, monkeypatch):
    from huggingface_hub import constants
    monkeypatch.setattr(constants, "DOWNLOAD_CHUNK_SIZE", 64 * 1024)
    with HubStandIn() as standin:
        standin.add_repo("org/tiny", tiny_files)
        standin.drop_after["model.safetensors"] = 2_000_000
        folder = hub.pull("org/tiny", endpoint=standin.url)
        requests = standin.served("model.safetensors")
    assert len(requests) == 2 and requests[1].range and int(requests[1].range[6:-1]) > 1_000_000
    assert (folder / "model.safetensors").read_bytes() == tiny_files["model.safetensors"]


def test_a_sharded_model_gets_the_shards_its_index_names(cache, tiny_files):
    index = {"metadata": {"total_size": 6}, "weight_map": {"a": "model-00001-of-00002.safetensors",
                                                           "b": "model-00002-of-00002.safetensors"}}
    files = {"config.json": tiny_files["config.json"], "model.safetensors.index.json": json.dumps(index).encode(),
             "model-00001-of-00002.safetensors": b"abc", "model-00002-of-00002.safetensors": b"def",
             "consolidated.safetensors": b"abcdef"}
    with HubStandIn() as standin:
        standin.add_repo("org/sharded", files)
        folder = hub.pull("org/sharded", endpoint=standin.url)
    assert not (folder / "consolidated.safetensors").exists()
    assert (folder / "model-00002-of-00002.safetensors").read_bytes() == b"def"


def test_a_gated_model_without_a_token_says_to_give_one(cache, tiny_files):
    with HubStandIn() as standin:
        standin.add_repo("org/gated", tiny_files, gated=True, token=TOKEN)
        with pytest.raises(ModelError, match="gated model.*give a Hugging Face token"):
            hub.pull("org/gated", endpoint=standin.url)
    assert not any("/resolve/" in r.path for r in standin.requests)


def test_a_gated_model_downloads_with_its_token_and_the_token_is_kept_nowhere(cache, tiny_files, capsys, caplog,
                                                                              home):
    with HubStandIn() as standin:
        standin.add_repo("org/gated", tiny_files, gated=True, token=TOKEN)
        with pytest.raises(ModelError) as refused:
            hub.pull("org/gated", token="hf_WrongToken", endpoint=standin.url)
        folder = hub.pull("org/gated", token=TOKEN, endpoint=standin.url)
    assert "hf_WrongToken" not in str(refused.value) and "access" in str(refused.value)
    assert all(r.with_token for r in standin.requests if "/resolve/" in r.path)
    assert (folder / "model.safetensors").read_bytes() == tiny_files["model.safetensors"]
    written = [p for root in (cache, home) if root.exists() for p in root.rglob("*") if p.is_file()]
    assert written and not [p for p in written if TOKEN.encode() in p.read_bytes()]
    out = capsys.readouterr()
    assert TOKEN not in out.out + out.err + caplog.text


def test_no_network_is_one_plain_sentence(cache):
    with pytest.raises(ModelError) as error:
        hub.pull("org/tiny", endpoint=closed_port())
    assert str(error.value) == "Cannot reach the Hugging Face Hub: give a model folder instead."
    assert error.value.__cause__ is None and error.value.__suppress_context__  # no chained traceback


def test_a_folder_from_before_markers_is_used_when_the_hub_cannot_be_reached(cache, tiny_files):
    old = cache / "org--old"
    old.mkdir(parents=True)
    for name, data in tiny_files.items():
        (old / name).write_bytes(data)
    assert hub.pull("org/old", endpoint=closed_port()) == old
    (old / ".tuneloop-commit").write_text("abc")  # one of our own pulls, unfinished: not usable
    with pytest.raises(ModelError, match="Cannot reach"):
        hub.pull("org/old", endpoint=closed_port())


def test_an_unknown_model_is_named(cache):
    with HubStandIn() as standin, pytest.raises(ModelError, match="No model called 'org/nothing'"):
        hub.pull("org/nothing", endpoint=standin.url)


def test_a_model_that_needs_its_own_code_is_refused_before_its_weights(cache, tiny_files):
    config = json.loads(tiny_files["config.json"])
    config.update(model_type="my_custom_arch", auto_map={"AutoModelForCausalLM": "modeling_custom.Model"})
    with HubStandIn() as standin:
        standin.add_repo("org/custom", {**tiny_files, "config.json": json.dumps(config).encode(),
                                        "modeling_custom.py": b"import os"})
        with pytest.raises(ModelError, match="trust_remote_code"):
            hub.pull("org/custom", endpoint=standin.url)
    assert not standin.served("model.safetensors") and not (cache / "org--custom").exists()


def test_a_model_without_safetensors_is_refused(cache, tiny_files):
    with HubStandIn() as standin:
        standin.add_repo("org/pickled", {"config.json": tiny_files["config.json"], "pytorch_model.bin": b"\x80"})
        with pytest.raises(ModelError, match="no safetensors"):
            hub.pull("org/pickled", endpoint=standin.url)


@pytest.mark.parametrize("bad", ["tiny", "a/b/c", "../x", "org/.."])
def test_a_bad_id_is_refused_before_any_request(cache, bad):
    with pytest.raises(ModelError, match="not a Hugging Face model id"):
        hub.pull(bad, endpoint=closed_port())
