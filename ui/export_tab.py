"""Export tab: a finished run as a merged model, its adapter alone, or one GGUF file for llama.cpp and Ollama
(f16, q8_0, q4_0) with its Modelfile; the expected size of each before starting; progress through merge, convert,
check and zip; then the files to download (only a GGUF file that passed its check is offered), the check in
words, the two Ollama commands, the folder and the model card. Below: upload the run's newest export to the
Hugging Face Hub with a token that is used for that upload and kept nowhere."""
import os

import gradio as gr

from backend.errors import ExportCheckFailed, RunStateError
from backend.export.merged import export_gguf_for_run, export_run
from backend.export.plan import (DEFAULT_QUANT, FORMAT_WORDS, QUANTS, check_gguf_possible, check_words,
                                 expected_sizes, export_folder, latest_export, modelfile_zip, size_text)
from backend.export.hub_upload import upload_export
from ui.common import Context, bind, esc, on, run_choices

WHAT = [("Merged model: complete, ready to use anywhere (larger)", "merged"),
        ("Adapter only: small, used together with the same base model", "adapter"),
        ("GGUF for llama.cpp and Ollama: one file, runs on a laptop", "gguf")]
STEPS = {"Loading": 0.1, "Copying": 0.1, "Writing": 0.7, "Zipping": 0.8}
NO_RUN = "Pick a finished run first. Runs finish in the Progress tab."
SIZING = "Working out the sizes of this run's exports..."
NOTHING_PICKED = "**Nothing to upload yet:** pick a finished run above and export it; then upload the export here."
NOT_EXPORTED = ("**Nothing to upload yet:** export this run above first (merged model, adapter or GGUF); Upload then "
                "sends that export with its model card.")
NO_REPO = "Write the repository to upload to below, as your-name/model-name; Upload is then enabled."


def refresh(ctx: Context, v: dict):
    """The runs that can be exported (those with a saved adapter): the ones that trained to the end first, newest
    first, then stopped ones; the newest finished run is picked unless one still listed was picked already.
    Returns (runs, Export button, sizes): the button is enabled in the same update that fills the list, so a click
    made as the tab opens waits for the run it will export (it was sent with the list still empty, and refused). A run
    newly picked has its sizes worked out by describe(), seconds on a busy machine: meanwhile the line says so (it
    said "Pick a finished run first" beside the run just picked)."""
    runs = sorted(ctx.runs().finished(), key=lambda r: r["status"] != "done")
    choices = run_choices(runs)
    ids = [c[1] for c in choices]
    picked = v["run"] if v["run"] in ids else (ids[0] if ids else None)
    sizes = NO_RUN if picked is None else gr.skip() if picked == v["run"] else SIZING
    return gr.update(choices=choices, value=picked), gr.update(interactive=picked is not None), sizes


def format_choices(gguf_sizes: dict) -> list[tuple[str, str]]:
    return [(f"{q} · {size_text(gguf_sizes[q])}: {FORMAT_WORDS[q]}" if q in gguf_sizes else f"{q}: {FORMAT_WORDS[q]}", q)
            for q in QUANTS]


def describe(ctx: Context, v: dict):
    """Before starting: the expected sizes and the GGUF formats with theirs (or why GGUF cannot be written).
    Returns (sizes, formats)."""
    if not v["run"]:
        return NO_RUN, gr.update(visible=v["what"] == "gguf", choices=format_choices({}))
    try:
        sizes = expected_sizes(ctx.runs(), v["run"])
    except RunStateError as unfinished:  # a choice is never an error: say it where the sizes would be
        return esc(unfinished), gr.update(visible=False, choices=format_choices({}))
    if sizes.gguf_refusal:
        gguf = f"GGUF: not possible for this run. {esc(sizes.gguf_refusal)}"
    else:
        gguf = "GGUF " + ", ".join(f"{q} {size_text(s)}" for q, s in sizes.gguf.items())
    text = (f"**Expected size:** merged model {size_text(sizes.merged)} · adapter {size_text(sizes.adapter)} · "
            f"{gguf}")
    formats = gr.update(visible=v["what"] == "gguf" and not sizes.gguf_refusal, choices=format_choices(sizes.gguf),
                        value=v.get("quant") or DEFAULT_QUANT)
    return text, formats


def upload_ready(ctx: Context, v: dict):
    """Which export an upload would send, and Upload, greyed until the run has one and the repository is given (the
    walk: Upload was enabled with nothing exported, or with the Repository box empty, and its click answered with an
    error); the note then says what to do first. Returns (hub note, Upload button)."""
    latest = latest_export(v["run"]) if v["run"] else None
    if latest is None:
        return (NOT_EXPORTED if v["run"] else NOTHING_PICKED), gr.update(interactive=False)
    note = (f"Uploads this run's newest export: the **{latest.kind}** of {latest.when:%b %d, %H:%M} "
            f"(`{esc(latest.folder.name)}`), with its model card.")
    if not (v.get("repo") or "").strip():
        return note + " " + NO_REPO, gr.update(interactive=False)
    return note, gr.update(interactive=True)


def do_export(ctx: Context, v: dict):
    """Returns (download, status, commands, folder, model card, hub note, Upload button)."""
    if not v["run"]:
        raise gr.Error(NO_RUN)
    store = ctx.runs()
    run_id, what, progress = v["run"], v["what"], v["progress"]
    store.finished_adapter(run_id)  # refuses an unfinished run in words, before any work
    if what == "gguf":
        return _export_gguf(ctx, run_id, v.get("quant") or DEFAULT_QUANT, progress, v.get("repo"))
    out = export_folder(store.get(run_id), what)
    progress(0.02, desc="Starting")

    def report(message: str):
        progress(STEPS.get(message.split()[0], 0.5), desc=message + "...")

    archive = export_run(store, run_id, out, adapter_only=what == "adapter", zip_it=True, progress=report)
    progress(1.0, desc="Done")
    gr.Info("Exported. Download the zip, or use the folder.")
    status = f"Exported the {'adapter' if what == 'adapter' else 'merged model'}: {size_text(archive.stat().st_size)} zipped."
    return ([str(archive)], status, gr.update(visible=False, value=""), str(out), _card(out),
            *upload_ready(ctx, {"run": run_id, "repo": v.get("repo")}))


def _export_gguf(ctx: Context, run_id: str, quant: str, progress, repo: str | None):
    store = ctx.runs()
    check_gguf_possible(store, run_id)  # an architecture we cannot write: its sentence, before any merge
    out = export_folder(store.get(run_id), quant)
    progress(0.0, desc="Starting")
    try:
        result = export_gguf_for_run(store, run_id, out, quant,
                                     progress=lambda fraction, message: progress(0.97 * fraction, desc=message))
    except ExportCheckFailed as failed:
        gr.Warning("The file failed its check and is not offered.")
        other = " Try f16, which keeps the merged model's answers." if quant != "f16" else ""
        status = f"**Not offered:** {esc(failed)}{other}"
        return (None, status, gr.update(visible=False, value=""), "", "",
                *upload_ready(ctx, {"run": run_id, "repo": repo}))
    progress(0.98, desc="Zipping the Modelfile and model card")
    bundle = modelfile_zip(out)
    progress(1.0, desc="Done")
    gr.Info("Exported and checked. Download the .gguf file and the Modelfile.")
    checked = check_words(result.check).replace("Checked:", "**Checked:**", 1)
    status = (f"{checked}\n\n`{esc(result.path.name)}`: {quant}, {size_text(result.size_bytes)}. Put it in one "
              "folder with the Modelfile from the zip, then run the commands below there.")
    commands = gr.update(visible=True, value="\n".join(result.commands))
    return ([str(result.path), str(bundle)], status, commands, str(out), _card(out),
            *upload_ready(ctx, {"run": run_id, "repo": repo}))


def _card(folder) -> str:
    text = (folder / "README.md").read_text()
    return "### Model card (README.md in the folder)\n\n" + text.split("\n", 1)[-1]


def chosen(v: dict) -> tuple:
    """What the form would export: the run, the kind and, for GGUF, the format."""
    return v["run"], v["what"], v["quant"] if v["what"] == "gguf" else None


def clear_other(ctx: Context, v: dict):
    """What an export showed (download, status, commands, folder, model card) is about the run and format it
    exported (`exported`): gone once another run or format is picked, also when that happens while the export runs.
    The previous run's "Checked: 5 of 5" stayed beside another run."""
    if v["exported"] is not None and chosen(v) == tuple(v["exported"]):
        return (gr.skip(),) * 5
    return None, "", gr.update(visible=False, value=""), "", ""


def upload(ctx: Context, v: dict):
    """Upload the run's newest export. The token goes to upload_export and nowhere else (the page empties its box at
    the click). Returns (status, token box)."""
    if not v["run"]:
        raise gr.Error(NO_RUN)
    ctx.runs().get(v["run"])
    latest = latest_export(v["run"])
    if latest is None:
        raise gr.Error("This run has no export yet: export it above first (merged model, adapter or GGUF), then upload.")
    repo = (v["repo"] or "").strip()
    if not repo:
        raise gr.Error("Give the repository to upload to, as your-name/model-name.")
    progress = v["progress"]
    result = upload_export(latest.folder, repo, v["token"] or "", private=bool(v["private"]),
                           endpoint=os.environ.get("HF_ENDPOINT") or None,
                           progress=lambda fraction, message: progress(fraction, desc=message))
    shown = "private" if result.private else "public"
    status = (f"Uploaded the {latest.kind} ({result.files} files) to [{esc(result.url)}]({result.url}), {shown}. "
              "The token was used for this upload only and is not kept.")
    return status, gr.update(value="")


def create_export_tab(ctx: Context, demo: gr.Blocks):
    with gr.Tab("5. Export", id="export") as tab:
        exported = gr.State(None)  # (run, kind, format) of the export shown, set at the click (in the tab: a
        # component made in the app's gr.Tabs outside any gr.Tab showed up as a second copy of the selected tab)
        gr.Markdown("Save a finished run as a model to use in other programs, or to share. **Merged** joins what "
                    "the run learned into a copy of the base model: one folder that loads like any Hugging Face "
                    "model. **Adapter only** keeps just the small part that learned (LoRA). **GGUF** is one file "
                    "for llama.cpp and Ollama; each GGUF file is loaded back and checked against the merged model "
                    "before it is offered.")
        with gr.Row(equal_height=True):
            run = gr.Dropdown(label="Finished run", choices=[], scale=2, elem_id="tl-export-run")
            what = gr.Radio(WHAT, value="merged", label="What to export", scale=3)
        quant = gr.Radio(format_choices({}), value=DEFAULT_QUANT, label="GGUF format", visible=False,
                         elem_id="tl-gguf-format")
        sizes = gr.Markdown(elem_id="tl-export-sizes")
        start = gr.Button("Export", variant="primary", interactive=False)  # until a finished run is listed
        status = gr.Markdown(elem_id="tl-export-status")
        with gr.Row():
            download = gr.File(label="Download", interactive=False, file_count="multiple", elem_id="tl-download",
                               height=130)
            with gr.Column():
                commands = gr.Textbox(label="Run it with Ollama, in the folder with the .gguf and the Modelfile",
                                      lines=2, interactive=False, buttons=["copy"], visible=False,
                                      elem_id="tl-ollama-commands")
                folder = gr.Textbox(label="Also saved in this folder", interactive=False, buttons=["copy"],
                                    elem_id="tl-export-folder")
        with gr.Accordion("Upload to the Hugging Face Hub", open=False):
            note = gr.Markdown(NOTHING_PICKED, elem_id="tl-hub-note")
            with gr.Row(equal_height=True):
                repo = gr.Textbox(label="Repository", placeholder="your-name/model-name", scale=2, elem_id="tl-hub-repo")
                token = gr.Textbox(label="Access token (write)", type="password", scale=2, elem_id="tl-hub-token",
                                   info="Used for this upload only; never saved.")
                private = gr.Checkbox(value=True, label="Private", scale=1,
                                      info="Only you (and your organisation) can see it.")
            send = gr.Button("Upload", interactive=False)  # until the run picked has an export
            sent = gr.Markdown(elem_id="tl-hub-status")
        card = gr.Markdown(elem_id="tl-model-card")

    # The upload note is read again each time the tab opens: a run exported from the command line meanwhile left it
    # saying "Nothing to upload yet" (run.change does not fire when the run picked stays the same).
    on([tab.select, demo.load], ctx, refresh, {"run": run}, [run, start, sizes]).then(
        *bind(ctx, upload_ready, {"run": run, "repo": repo}), [note, send], show_progress="hidden")
    on([run.change, what.change], ctx, describe, {"run": run, "what": what, "quant": quant}, [sizes, quant])
    on([run.change, repo.change], ctx, upload_ready, {"run": run, "repo": repo}, [note, send], show_progress="hidden")
    shown = [download, status, commands, folder, card]
    choice = {"run": run, "what": what, "quant": quant}
    on([run.change, what.change, quant.change], ctx, clear_other, {**choice, "exported": exported}, shown,
       show_progress="hidden")
    start.click(lambda *values: chosen(dict(zip(choice, values))), list(choice.values()), exported, queue=False,
                show_progress="hidden")
    on(start.click, ctx, do_export, {**choice, "repo": repo}, [*shown, note, send], progress=True,
       concurrency_limit=1).then(
        *bind(ctx, clear_other, {**choice, "exported": exported}), shown, show_progress="hidden")
    on(send.click, ctx, upload, {"run": run, "repo": repo, "token": token, "private": private}, [sent, token],
       progress=True, concurrency_limit=1)
    # The box is emptied at the click, whatever becomes of the upload (the upload has read it by then): a failed
    # upload left the token in it.
    send.click(lambda: "", None, token, queue=False, show_progress="hidden")
