"""Export tab: a finished run as a merged model or its adapter alone, with progress, a zip to download,
the folder it was written to, and its model card."""
import re
from datetime import datetime
from pathlib import Path

import gradio as gr

from backend import workspace
from backend.export import export_run
from ui.common import FINISHED, Context, on, run_choices

WHAT = [("Merged model: complete, ready to use anywhere (larger)", "merged"),
        ("Adapter only: small, used together with the same base model", "adapter")]
STEPS = {"Loading": 0.1, "Copying": 0.1, "Writing": 0.7, "Zipping": 0.8}


def export_folder(run: dict, what: str) -> Path:
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", run["name"]).strip("-.")[:60] or run["id"]
    return workspace.exports_dir() / f"{slug}-{what}-{datetime.now().strftime('%Y%m%d-%H%M%S')}"


def refresh(ctx: Context, v: dict):
    choices = run_choices(ctx.runs().list(), FINISHED)
    ids = [c[1] for c in choices]
    return gr.update(choices=choices, value=v["run"] if v["run"] in ids else (ids[0] if ids else None))


def do_export(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a finished run first. Runs finish in the Progress tab.")
    progress = v["progress"]
    store = ctx.runs()
    out = export_folder(store.get(v["run"]), v["what"])
    progress(0.02, desc="Starting")

    def report(message: str):
        progress(STEPS.get(message.split()[0], 0.5), desc=message + "...")

    archive = export_run(store, v["run"], out, adapter_only=v["what"] == "adapter", zip_it=True, progress=report)
    progress(1.0, desc="Done")
    gr.Info("Exported. Download the zip, or use the folder.")
    card_text = (out / "README.md").read_text()
    return str(archive), str(out), "### Model card (README.md in the folder)\n\n" + card_text.split("\n", 1)[-1]


def create_export_tab(ctx: Context, demo: gr.Blocks):
    with gr.Tab("5. Export", id="export") as tab:
        gr.Markdown("Save a finished run as a model to use in other programs, or to share. **Merged** joins what "
                    "the run learned into a copy of the base model: one folder that loads like any Hugging Face "
                    "model. **Adapter only** keeps just the small part that learned (LoRA).")
        with gr.Row(equal_height=True):
            run = gr.Dropdown(label="Finished run", choices=[], scale=2)
            what = gr.Radio(WHAT, value="merged", label="What to export", scale=3)
        start = gr.Button("Export", variant="primary")
        with gr.Row():
            download = gr.File(label="Download (zip)", interactive=False, elem_id="tl-download", height=110)
            folder = gr.Textbox(label="Also saved in this folder", interactive=False, buttons=["copy"],
                                elem_id="tl-export-folder")
        card = gr.Markdown(elem_id="tl-model-card")

    on([tab.select, demo.load], ctx, refresh, {"run": run}, run)
    on(start.click, ctx, do_export, {"run": run, "what": what}, [download, folder, card], progress=True,
       concurrency_limit=1)
