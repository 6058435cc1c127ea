"""Upload an exported folder (a merged model or an adapter, with its README.md model card) to a model repo
on the Hugging Face Hub, private unless asked otherwise.

The token is used for the API calls of this one upload and nothing else: it is not written to a file, a
database, a log or a model card, and no error raised here carries it (each failure becomes one sentence,
raised without the library's traceback chained to it)."""
from dataclasses import dataclass
from pathlib import Path

from backend.errors import HubError

UNREACHABLE = "Cannot reach the Hugging Face Hub: check the network, or export to a folder instead."
_IGNORED = [".tuneloop-partial", ".tuneloop-partial/**", "*.partial", ".git/**"]


@dataclass(frozen=True)
class Upload:
    repo_id: str
    url: str
    private: bool
    files: int


def upload_export(folder, repo_id: str, token: str, private: bool = True, endpoint: str | None = None,
                  commit_message: str = "Upload from Tuneloop", progress=lambda fraction, message: None) -> Upload:
    """Create `repo_id` if needed (private by default) and upload every file of `folder` to it."""
    folder = Path(folder)
    if not folder.is_dir():
        raise HubError(f"'{folder}' is not a folder; export the run to a folder first, then upload that folder.")
    if not (folder / "README.md").exists():
        raise HubError(f"'{folder}' has no README.md model card; upload a folder made by Tuneloop's export.")
    if not token or not token.strip():
        raise HubError("A Hugging Face access token with write permission is needed to upload.")
    files = [p for p in folder.rglob("*") if p.is_file() and ".tuneloop-partial" not in p.parts]
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=False)  # the token goes to each call, never onto the object
    try:
        progress(0.0, f"Creating the repository {repo_id}")
        repo = api.create_repo(repo_id, token=token.strip(), private=private, exist_ok=True, repo_type="model")
        progress(0.1, f"Uploading {len(files)} files")
        api.upload_folder(repo_id=repo.repo_id, folder_path=folder, repo_type="model", token=token.strip(),
                          commit_message=commit_message, ignore_patterns=_IGNORED)
    except Exception as exc:
        raise HubError(_sentence(exc, repo_id)) from None
    progress(1.0, "Uploaded")
    return Upload(repo.repo_id, str(repo), private, len(files))


def _sentence(exc: Exception, repo_id: str) -> str:
    """One sentence for a person, naming what went wrong and what to do; never the token."""
    from huggingface_hub.errors import HfHubHTTPError, HFValidationError, OfflineModeIsEnabled

    if isinstance(exc, OfflineModeIsEnabled):
        return "Hugging Face Hub access is switched off on this machine (HF_HUB_OFFLINE); export to a folder instead."
    if isinstance(exc, HFValidationError):
        return f"'{repo_id}' is not a valid repository name: use your-name/model-name, letters, digits, '-', '_' and '.'."
    if isinstance(exc, HfHubHTTPError):
        status = exc.response.status_code if exc.response is not None else None
        if status in (401, 403):
            return (f"The Hugging Face Hub refused the token for '{repo_id}': use an access token with write "
                    f"permission for that account or organisation.")
        return f"The Hugging Face Hub refused the upload to '{repo_id}' (HTTP {status}); check the repository name."
    if _is_network_error(exc):
        return UNREACHABLE
    return f"The upload to the Hugging Face Hub failed ({type(exc).__name__}); try again, or export to a folder instead."


def _is_network_error(exc: Exception) -> bool:
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return True
    names = {cls.__name__ for cls in type(exc).__mro__}
    return bool(names & {"TransportError", "ConnectError", "ConnectTimeout", "ReadTimeout", "NetworkError"})
