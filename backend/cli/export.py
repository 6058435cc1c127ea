"""`python app.py export RUN`: a merged model folder, the adapter alone, or one checked GGUF file with its Ollama
Modelfile; optionally uploaded to the Hugging Face Hub. Expected size first, a progress bar on stderr, then what was
written (and for GGUF the check, the file and the two Ollama commands). A GGUF file that fails its check is not kept
and the command exits 1 with the reason. The Hub token comes from HF_TOKEN or a file, never from the command line."""
import os
import sys
from contextlib import contextmanager
from pathlib import Path

from backend.cli.options import add_json, print_json
from backend.errors import HubError, TuneloopError
from backend.export.gguf import QUANTS

STEPS = {"Loading": 0.1, "Copying": 0.1, "Writing": 0.7, "Zipping": 0.8}


@contextmanager
def progress_bar():
    """A tqdm bar on stderr; yields report(fraction, message). Closed (and its line ended) on errors too."""
    from huggingface_hub.utils import disable_progress_bars
    from tqdm import tqdm
    from transformers.utils import logging

    disable_progress_bars()  # the libraries' own bars (loading weights, uploading files) would break this one
    logging.disable_progress_bar()
    with tqdm(total=100, file=sys.stderr, bar_format="{desc:<52.52} {percentage:3.0f}%|{bar}| {elapsed}",
              dynamic_ncols=True) as bar:
        def report(fraction: float, message: str):
            bar.set_description_str(message, refresh=False)
            bar.n = max(bar.n, round(100 * min(max(fraction, 0.0), 1.0)))
            bar.refresh()
        yield report


def hub_token(args) -> str:
    if args.token_file:
        path = Path(args.token_file).expanduser()
        if not path.is_file():
            raise HubError(f"No token file at '{path}': write the Hugging Face access token on its first line.")
        token = (path.read_text().strip().splitlines() or [""])[0].strip()
    else:
        token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise HubError("Uploading needs a Hugging Face access token with write permission: set HF_TOKEN, or give "
                       "--token-file PATH (a file holding the token).")
    return token


def cmd_export(args) -> int:
    from backend.db import connect
    from backend.export.plan import check_gguf_possible, check_words, expected_sizes, export_folder
    from backend.words import size_text
    from backend.runs import RunStore

    if (args.public or args.token_file) and not args.hub:
        raise TuneloopError("--public and --token-file go with --hub REPO (the repository to upload to).")
    if args.zip and args.gguf:
        raise TuneloopError("--zip is for a merged model or adapter folder; a GGUF export is already one file.")
    store = RunStore(connect())
    run = store.get(args.run_id)
    store.finished_adapter(args.run_id)
    token = hub_token(args) if args.hub else None  # before any work: a missing token is said at once
    if args.gguf:
        check_gguf_possible(store, args.run_id)  # an architecture GGUF cannot hold: refused before merging
    what = args.gguf or ("adapter" if args.adapter_only else "merged")
    sizes = expected_sizes(store, args.run_id)
    expected = sizes.gguf[args.gguf] if args.gguf else (sizes.adapter if args.adapter_only else sizes.merged)
    others = ", ".join(f"{q} {size_text(s)}" for q, s in sizes.gguf.items() if q != args.gguf)
    print(f"Expected size: {size_text(expected)}" + (f" (other GGUF formats: {others})" if args.gguf else ""),
          file=sys.stderr)
    out = Path(args.out) if args.out else export_folder(run, what)

    result = {"folder": str(out.expanduser().resolve())}
    with progress_bar() as report:
        if args.gguf:
            gguf = _export_gguf(store, args.run_id, out, args.gguf, report)
            result.update(gguf.to_dict())
        else:
            path = _export_folder(store, args.run_id, out, args.adapter_only, args.zip, report)
            result["path"] = str(path)
    if args.gguf:
        print(check_words(gguf.check))
        print(f"Check: {gguf.check.summary()}")
        print(f"File: {gguf.path} ({size_text(gguf.size_bytes)})")
        print(f"Run it with Ollama, in {gguf.path.parent}:\n  " + "\n  ".join(gguf.commands))
    else:
        print(f"Exported to {result['path']}")
    if args.hub:
        with progress_bar() as report:
            from backend.export.hub_upload import upload_export
            sent = upload_export(out, args.hub, token, private=not args.public,
                                 endpoint=os.environ.get("HF_ENDPOINT") or None, progress=report)
        print(f"Uploaded {sent.files} files to {sent.url} ({'private' if sent.private else 'public'}).")
        result["hub"] = {"repo_id": sent.repo_id, "url": sent.url, "private": sent.private, "files": sent.files}
    if args.json:
        print_json(result)
    return 0


def _export_gguf(store, run_id, out, quant, report):
    from backend.export.merged import export_gguf_for_run
    return export_gguf_for_run(store, run_id, out, quant, progress=report)


def _export_folder(store, run_id, out, adapter_only, zip_it, report):
    from backend.export.merged import export_run
    return export_run(store, run_id, out, adapter_only=adapter_only, zip_it=zip_it,
                      progress=lambda message: report(STEPS.get(message.split()[0], 0.5), message))


def register(commands):
    export = commands.add_parser(
        "export", help="Save a finished run as a merged model folder, its adapter, or a checked GGUF file for "
        "llama.cpp and Ollama; optionally upload it to the Hugging Face Hub.")
    export.add_argument("run_id", help="The finished run to export (see: python app.py runs).")
    export.add_argument("--out", help="A new or empty folder to write to (default: a new folder under the "
                        "workspace's exports/RUN/).")
    kind = export.add_mutually_exclusive_group()
    kind.add_argument("--adapter-only", action="store_true", help="Export only the LoRA adapter (small; needs the "
                      "same base model to be used).")
    kind.add_argument("--gguf", choices=QUANTS, help="Write one GGUF file in this format, with an Ollama Modelfile, "
                      "checked against the merged model before it is kept: f16 (same answers), q8_0 (about half the "
                      "size, answers almost the same), q4_0 (smallest, answers can change).")
    export.add_argument("--zip", action="store_true", help="Also make a .zip of the folder (merged model or adapter).")
    export.add_argument("--hub", metavar="REPO", help="Then upload the exported folder, with its model card, to this "
                        "Hugging Face Hub repository (your-name/model-name). The token comes from HF_TOKEN or "
                        "--token-file, never from the command line.")
    export.add_argument("--public", action="store_true", help="With --hub: make a new repository public (default: "
                        "private).")
    export.add_argument("--token-file", metavar="PATH", help="With --hub: read the access token from this file's "
                        "first line instead of HF_TOKEN.")
    add_json(export, "End with one JSON line: the folder, the file, and for GGUF the check and the Ollama commands.")
    export.set_defaults(func=cmd_export)
