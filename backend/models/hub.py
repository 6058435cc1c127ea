"""Downloading a model from the Hugging Face Hub into the workspace's model cache, once.

Only what transformers needs to load the model safely is fetched: the safetensors weights (the shards the index
names, never a second copy in another format), config.json, generation and tokenizer files, and the chat template.
No Python files: Tuneloop never runs a model's own code (trust_remote_code stays off).

Resuming: huggingface_hub 2.4's own downloads (hf_hub_download, snapshot_download) write each file to a temporary
name that is deleted when the download fails, so an interrupted 5 GB shard starts again from zero. Here each file
goes to `<name>.part`, kept across interruptions, and the next pull asks the Hub for the rest (HTTP Range, through
huggingface_hub's http_get). A folder is complete once `.tuneloop-pull.json` is written, last.

The token (for gated models) is sent to the Hub and kept nowhere: not in files, logs, errors or run configs.
"""
import hashlib
import json
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from backend import workspace
from backend.errors import ModelError
from backend.words import size_text

MARKER = ".tuneloop-pull.json"
OFFLINE = "Cannot reach the Hugging Face Hub: give a model folder instead."
WEIGHTS_INDEX = "model.safetensors.index.json"
SMALL_FILES = {"config.json", "generation_config.json", "tokenizer.json", "tokenizer_config.json",
               "special_tokens_map.json", "added_tokens.json", "vocab.json", "merges.txt", "tokenizer.model",
               "chat_template.jinja", "chat_template.json"}
PROGRESS_EVERY_S = 0.25


@dataclass(frozen=True)
class DownloadProgress:
    done_bytes: int
    total_bytes: int
    bytes_per_second: float
    file: str

    @property
    def text(self) -> str:
        mb = 1024 ** 2
        return (f"{self.done_bytes / mb:,.0f} MB of {self.total_bytes / mb:,.0f} MB, "
                f"{self.bytes_per_second / mb:.1f} MB/s")


def model_folder(model_id: str) -> Path:
    return workspace.model_cache() / model_id.replace("/", "--")


def pulled(model_id: str) -> Path | None:
    """The folder of a model downloaded completely before, or None."""
    folder = model_folder(model_id)
    return folder if (folder / MARKER).is_file() else None


def pull(model_id: str, token: str | None = None, progress: Callable[[DownloadProgress], None] | None = None,
         endpoint: str | None = None) -> Path:
    """Download `model_id` (e.g. 'Qwen/Qwen2.5-0.5B-Instruct') once; return its folder. Resumes an interrupted pull.
    token: a Hugging Face token for gated models (default: the one huggingface_hub finds, HF_TOKEN or a login).
    progress: called with DownloadProgress a few times a second; an exception raised there stops the pull, and the
    next pull goes on from where it stopped. endpoint: default HF_ENDPOINT, else the Hub."""
    _check_id(model_id)
    done = pulled(model_id)
    if done:
        return done
    import filelock

    folder = model_folder(model_id)
    with filelock.FileLock(str(folder) + ".lock"):
        if pulled(model_id):
            return folder
        return _Pull(model_id, token, progress, endpoint or os.environ.get("HF_ENDPOINT") or None, folder).run()


def _check_id(model_id: str):
    parts = (model_id or "").split("/")
    if len(parts) != 2 or not all(parts) or any(p in (".", "..") for p in parts) or "\\" in model_id:
        raise ModelError(f"'{model_id}' is not a Hugging Face model id: it looks like 'owner/name', "
                         f"e.g. 'Qwen/Qwen2.5-0.5B-Instruct'.")


class _Pull:
    def __init__(self, model_id, token, progress, endpoint, folder: Path):
        self.model_id, self.token, self.progress, self.endpoint = model_id, token, progress, endpoint
        self.folder = folder
        self.done = self.total = self.fresh = 0
        self.started = time.monotonic()
        self.last_report = 0.0
        self.lock = threading.Lock()

    def run(self) -> Path:
        from huggingface_hub import HfApi

        api = HfApi(endpoint=self.endpoint, token=self._token_arg())
        try:
            with _hub_errors(self.model_id, self._has_token()):
                info = api.model_info(self.model_id, files_metadata=True)
        except ModelError:
            if self._downloaded_before_markers():
                return self.folder
            raise
        if getattr(info, "gated", False) and not self._has_token():
            raise _gated(self.model_id, has_token=False)
        files = {s.rfilename: s for s in info.siblings or [] if "/" not in s.rfilename}
        if "config.json" not in files:
            raise ModelError(f"'{self.model_id}' on the Hugging Face Hub has no config.json: it is not a model "
                             f"transformers can load.")
        self.folder.mkdir(parents=True, exist_ok=True)
        self._forget_other_commit(info.sha)
        (self.folder / ".tuneloop-commit").write_text(info.sha)
        small = sorted(name for name in files if name in SMALL_FILES or name == WEIGHTS_INDEX)
        first = [name for name in ("config.json", WEIGHTS_INDEX) if name in files]
        for name in first:  # small; they say whether the model is loadable and which weights it has
            self._fetch(name, files[name], info.sha)
        self._refuse_custom_code()
        weights = self._weight_files(files)
        self.total = sum(files[name].size or 0 for name in small + weights)
        self._check_disk(files, weights)
        for name in [n for n in small if n not in first] + weights:
            self._fetch(name, files[name], info.sha)
        self._report(force=True, file="")

        kept = sorted(set(small) | set(weights))
        (self.folder / ".tuneloop-commit").unlink(missing_ok=True)
        marker = {"model": self.model_id, "commit": info.sha, "files": {n: files[n].size for n in kept}}
        (self.folder / MARKER).write_text(json.dumps(marker, indent=1))
        return self.folder

    def _downloaded_before_markers(self) -> bool:
        """A folder that Tuneloop's earlier snapshot_download filled (it deleted the folder when that failed): usable
        when the Hub cannot be asked. One of our own unfinished pulls has a .tuneloop-commit file or .part files."""
        folder = self.folder
        return ((folder / "config.json").is_file() and any(folder.glob("*.safetensors"))
                and not (folder / ".tuneloop-commit").exists() and not any(folder.glob("*.part")))

    def _token_arg(self):
        return self.token if self.token else None  # None: huggingface_hub looks for HF_TOKEN or a saved login

    def _has_token(self) -> bool:
        from huggingface_hub import get_token
        return bool(self.token or get_token())

    def _forget_other_commit(self, sha: str):
        """Parts of a pull begun on another revision of the repository cannot be resumed."""
        previous = self.folder / ".tuneloop-commit"
        if previous.is_file() and previous.read_text().strip() != sha:
            for part in self.folder.glob("*.part"):
                part.unlink()

    def _weight_files(self, files: dict) -> list[str]:
        if WEIGHTS_INDEX in files:
            try:
                index = json.loads((self.folder / WEIGHTS_INDEX).read_text())
                shards = sorted(set(index["weight_map"].values()))
            except (OSError, ValueError, KeyError, AttributeError):
                raise ModelError(f"The weights index of '{self.model_id}' ({WEIGHTS_INDEX}) cannot be read.") from None
            missing = [s for s in shards if s not in files]
            if missing:
                raise ModelError(f"'{self.model_id}' lists weight files that are not in the repository: "
                                 f"{', '.join(missing[:3])}.")
            return shards
        if "model.safetensors" in files:
            return ["model.safetensors"]
        raise ModelError(f"'{self.model_id}' has no safetensors weights (model.safetensors). Tuneloop only loads "
                         f"safetensors, because pickled .bin files can run code; pick another model.")

    def _refuse_custom_code(self):
        from transformers import CONFIG_MAPPING

        try:
            model_type = json.loads((self.folder / "config.json").read_text()).get("model_type")
        except (OSError, ValueError):
            raise ModelError(f"The config.json of '{self.model_id}' cannot be read.") from None
        if model_type not in CONFIG_MAPPING:
            shutil.rmtree(self.folder, ignore_errors=True)
            raise ModelError(f"'{self.model_id}' is a '{model_type}' model, which this version of transformers does "
                             f"not know: it would need the model's own Python code (trust_remote_code), which "
                             f"Tuneloop never runs. Pick a model with a standard architecture.")

    def _check_disk(self, files: dict, weights: list[str]):
        left = sum((files[n].size or 0) - _size(self.folder / (n + ".part")) for n in weights
                   if not (self.folder / n).is_file())
        free = shutil.disk_usage(self.folder).free
        if left > free:
            raise ModelError(f"Not enough disk space for '{self.model_id}': it needs {size_text(left)} more and "
                             f"{size_text(free)} are free in {self.folder.parent}.")

    def _fetch(self, name: str, sibling, sha: str):
        from huggingface_hub import hf_hub_url
        from huggingface_hub.file_download import http_get
        from huggingface_hub.utils import build_hf_headers

        target, part = self.folder / name, self.folder / (name + ".part")
        size = sibling.size
        if target.is_file() and (size is None or target.stat().st_size == size):
            self._add(size or target.stat().st_size, fresh=False, file=name)
            return
        resume = _size(part)
        if size is not None and resume > size:
            part.unlink()
            resume = 0
        self._add(resume, fresh=False, file=name)
        url = hf_hub_url(self.model_id, name, revision=sha, endpoint=self.endpoint)
        headers = build_hf_headers(token=self._token_arg())
        with _hub_errors(self.model_id, self._has_token(), self), open(part, "ab") as handle:
            http_get(url, _Counting(handle, lambda n: self._add(n, fresh=True, file=name)), resume_size=resume,
                     headers=headers, expected_size=size, displayed_filename=name)
        if sibling.lfs is not None and _sha256(part) != sibling.lfs.sha256:
            part.unlink()
            raise ModelError(f"The file {name} of '{self.model_id}' arrived damaged (its checksum differs); "
                             f"download it again.")
        part.replace(target)

    def _add(self, n: int, fresh: bool, file: str):
        with self.lock:
            self.done += n
            if fresh:
                self.fresh += n
        self._report(force=False, file=file)

    def _report(self, force: bool, file: str):
        if self.progress is None or not self.total:  # the total is known once the weight files are
            return
        now = time.monotonic()
        if not force and now - self.last_report < PROGRESS_EVERY_S:
            return
        self.last_report = now
        speed = self.fresh / max(now - self.started, 1e-6)
        self.progress(DownloadProgress(self.done, max(self.total, self.done), speed, file))


class _Counting:
    """A file wrapper that reports each chunk written (huggingface_hub's http_get writes, seeks and truncates)."""

    def __init__(self, handle, on_bytes):
        self.handle, self.on_bytes = handle, on_bytes

    def write(self, chunk: bytes):
        written = self.handle.write(chunk)
        self.on_bytes(len(chunk))
        return written

    def __getattr__(self, name):
        return getattr(self.handle, name)


class _hub_errors:
    """Turns the Hub's and the network's exceptions into one sentence for people, with no traceback or token."""

    def __init__(self, model_id: str, has_token: bool, pull: _Pull | None = None):
        self.model_id, self.has_token, self.pull = model_id, has_token, pull

    def __enter__(self):
        return self

    def __exit__(self, kind, error, tb):
        if error is None or isinstance(error, ModelError) or not isinstance(error, Exception):
            return False
        import httpx2
        from huggingface_hub.errors import (GatedRepoError, HfHubHTTPError, OfflineModeIsEnabled,
                                            RepositoryNotFoundError, RevisionNotFoundError)

        if isinstance(error, (httpx2.TransportError, OfflineModeIsEnabled, ConnectionError, TimeoutError)):
            if self.pull is not None and self.pull.done:
                raise ModelError(f"The download of '{self.model_id}' stopped at {size_text(self.pull.done)} of "
                                 f"{size_text(self.pull.total)} (the Hugging Face Hub cannot be reached); run it again "
                                 "to go on from there, or give a model folder instead.") from None
            raise ModelError(OFFLINE) from None
        if isinstance(error, GatedRepoError):
            raise _gated(self.model_id, self.has_token) from None
        if isinstance(error, (RepositoryNotFoundError, RevisionNotFoundError)):
            hint = (" If it is private or gated, check that your token's account can see it." if self.has_token
                    else " If it is private or gated, give a Hugging Face token.")
            raise ModelError(f"No model called '{self.model_id}' on the Hugging Face Hub: check the name."
                             f"{hint}") from None
        if isinstance(error, HfHubHTTPError):
            status = error.response.status_code if error.response is not None else None
            if status == 401:
                raise ModelError("The Hugging Face Hub refused the token: check it (a read token is enough).") from None
            raise ModelError(f"The Hugging Face Hub answered with an error ({status}) for '{self.model_id}'; "
                             f"try again later, or give a model folder instead.") from None
        if isinstance(error, OSError) and getattr(error, "errno", None) == 28:
            raise ModelError(f"The disk filled up while downloading '{self.model_id}': free some space and run it "
                             f"again to go on.") from None
        if isinstance(error, OSError):
            raise ModelError(f"The download of '{self.model_id}' failed ({type(error).__name__}); run it again to "
                             f"go on from there.") from None
        return False


def _gated(model_id: str, has_token: bool) -> ModelError:
    if not has_token:
        return ModelError(f"'{model_id}' is a gated model: accept its licence on huggingface.co/{model_id}, then give "
                          f"a Hugging Face token (huggingface.co/settings/tokens) to download it.")
    return ModelError(f"Your Hugging Face token has no access to the gated model '{model_id}': accept its licence on "
                      f"huggingface.co/{model_id} with the token's account, then try again.")


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except FileNotFoundError:
        return 0


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(8 * 1024 * 1024), b""):
            digest.update(block)
    return digest.hexdigest()
