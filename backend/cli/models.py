"""Commands about base models: `models` (the catalogue, judged for this machine before anything downloads) and
`models pull ID` (download once, with a progress bar). `train --model ID` goes through prepare_model() here."""
import sys
from pathlib import Path

from backend.cli.options import add_json, add_preset, add_set, changes, print_json
from backend.models.chat_template import family_name
from backend.config import default, unusual_settings
from backend.errors import ModelError

def cmd_models(args) -> int:
    from backend.models.memory import gb
    from backend.models.fit import offers
    from backend.presets import config_from_preset

    config = config_from_preset(args.preset, args.method, changes(args))
    listed = offers(config)
    if args.json:
        print_json([offer_record(offer) for offer in listed])
        return 0
    where = listed[0].verdict.estimate.where if listed else "computer"
    print(f"Models Tuneloop can download, judged for this {where} with the {args.preset} preset "
          f"({args.method.upper()}{', ' + ', '.join(args.changes) if args.changes else ''}):\n")
    for offer in listed:
        e = offer.entry
        print(f"{e.id}  ({e.name})\n    {e.params_b:g} billion parameters, {gb(e.download_bytes)} to download, "
              f"licence {e.licence}{', gated: needs a Hugging Face token' if e.gated else ''}, "
              f"chat template {family_name(e.template)}; {offer.state}\n    {offer.verdict.message}")
    print("\nDownload one with: python app.py models pull ID\n"
          "Train on one with: python app.py train --model ID --data ... (downloads it first when needed)")
    return 0


def offer_record(offer) -> dict:
    e, verdict = offer.entry, offer.verdict
    return {"id": e.id, "name": e.name, "params_b": e.params_b, "licence": e.licence, "gated": e.gated,
            "template": e.template, "download_bytes": e.download_bytes, "pulled": offer.folder is not None,
            "folder": str(offer.folder) if offer.folder else None, "partial_bytes": offer.partial_bytes,
            "fits": verdict.fits, "tight": verdict.tight, "changes": verdict.changes,
            "needs_bytes": verdict.estimate.total, "free_bytes": verdict.estimate.available,
            "where": verdict.estimate.where, "message": verdict.message}


def cmd_pull(args) -> int:
    from backend.models.fit import hub_id

    folder = pull(hub_id(args.model_id), read_token(args.token_file))
    print(f"Downloaded {args.model_id} into {folder}")
    return 0


def read_token(path: str | None) -> str | None:
    """A Hugging Face token from a file's first line; None lets huggingface_hub use HF_TOKEN or a saved login.
    Never from the command line, which every user of the computer can read (`ps`)."""
    if not path:
        return None
    try:
        lines = Path(path).expanduser().read_text(encoding="utf-8").splitlines()
    except OSError as exc:
        raise ModelError(f"Cannot read the token file '{path}' ({exc.strerror or type(exc).__name__}).") from None
    token = lines[0].strip() if lines else ""
    if not token:
        raise ModelError(f"The token file '{path}' is empty: write the Hugging Face token on its first line.")
    return token


def pull(model_id: str, token: str | None = None) -> Path:
    """Download a hub model once, with a progress bar in MB and MB/s on the terminal; resumes an interrupted pull."""
    from tqdm import tqdm

    from backend.models import hub

    done = hub.pulled(model_id)
    if done:
        return done
    bar = None
    try:
        print(f"Downloading {model_id} from the Hugging Face Hub (Ctrl-C stops; run it again to go on)...",
              file=sys.stderr)

        def report(progress: hub.DownloadProgress):
            nonlocal bar
            if bar is None:  # bytes kept from an earlier try count as done, not as speed
                bar = tqdm(total=progress.total_bytes, initial=progress.done_bytes, unit="B", unit_scale=True,
                           unit_divisor=1024, desc=model_id, file=sys.stderr, dynamic_ncols=True)
            bar.total = progress.total_bytes
            bar.update(progress.done_bytes - bar.n)

        return hub.pull(model_id, token=token, progress=report)
    finally:
        if bar is not None:
            bar.close()


def prepare_model(config, data: dict | None = None):
    """Before `train` queues a run: check_start() refuses data the method cannot read and a model that cannot fit here
    (with the fit verdict's sentence), and a hub model not downloaded yet is downloaded, with its progress bar. A
    catalogue model is judged before its download, any other hub model once its config.json has arrived. The memory
    verdict is printed, in the Train tab's words. data: the data's record (cli/runs.read_data). Returns the config,
    the hub id spelled as the catalogue spells it (the downloaded folder is named after it)."""
    from backend.models.fit import NotDownloaded, check_start

    check = check_start(config, data, how=set_options)
    said = False
    if isinstance(check.refusal, NotDownloaded):
        if check.fit:  # a catalogue model, judged before its download
            said = _say_memory(check)
        pull(check.config.model)
        check = check_start(check.config, data, how=set_options)
    check.or_raise()
    if not said:
        _say_memory(check)
    return check.config


def _say_memory(check) -> bool:
    print(f"Memory: {check.memory_words}", file=sys.stderr)
    for note in unusual_settings(check.config):  # the same sentences as under the Train tab's memory box
        print(f"Note: {note}", file=sys.stderr)
    return True


def set_options(changes: dict) -> str:
    return "To train with them, add: " + " ".join(f"--set {key}={value}" for key, value in changes.items())


def register(commands):
    from backend.config import METHODS

    models = commands.add_parser("models", help="List the models Tuneloop can download, with whether each fits "
                                 "on this computer and the settings that make it fit; `models pull ID` downloads one.")
    models.add_argument("--method", choices=METHODS, default=default("method"),
                        help=f"Judge for this training method (default {default('method')}).")
    add_preset(models)
    add_set(models)
    add_json(models, "Print the list as JSON: each model with its verdict (fits, changes, needs_bytes, free_bytes, "
                     "message) and whether it is downloaded.")
    models.set_defaults(func=cmd_models)
    actions = models.add_subparsers(dest="action", metavar="ACTION")
    pull_cmd = actions.add_parser("pull", help="Download a model from the Hugging Face Hub once into the "
                                  "workspace's models/ folder (safetensors only; an interrupted download goes on "
                                  "where it stopped).")
    pull_cmd.add_argument("model_id", metavar="ID", help="The Hugging Face id, owner/name, e.g. "
                          "Qwen/Qwen2.5-0.5B-Instruct (see: python app.py models).")
    pull_cmd.add_argument("--token-file", metavar="PATH",
                          help="For gated models: a file whose first line is your Hugging Face token (default: the "
                               "HF_TOKEN environment variable, or a saved huggingface-cli login). The token is sent "
                               "to the Hub only and saved nowhere.")
    pull_cmd.set_defaults(func=cmd_pull)
