"""Runs tab: the history of runs; one run's settings, results and curves; two runs compared; rerun; delete."""
import dataclasses
from pathlib import Path

import gradio as gr
import yaml

from backend.command_line import config_to_command
from backend.errors import RunStateError
from ui import charts
from ui.common import (ACTIVE, METHOD_NAMES, STATUS_WORDS, Context, duration, esc, final_loss, plain_errors,
                       probe_markdown, results_text, run_choices, run_duration, runs_ahead, when)

HEADERS = ["Name", "Method", "Dataset", "Status", "Started", "Duration", "Final loss"]


def history_rows(runs: list[dict]) -> list[list]:
    rows = []
    for r in runs:
        loss = final_loss(r)
        rows.append([r["name"], METHOD_NAMES.get(r["method"], r["method"]), Path(r["dataset"] or "").name,
                     STATUS_WORDS[r["status"]], when(r.get("started") or r["created"]),
                     duration(run_duration(r)), "" if loss is None else f"{loss:.3f}"])
    return rows


def details_markdown(run: dict) -> str:
    lines = [f"### {esc(run['name'])}",
             f"**{STATUS_WORDS[run['status']]}** · {METHOD_NAMES.get(run['method'], run['method'])} on "
             f"'{esc(run['dataset'])}' · from {esc(run['config'].get('base_run') or run['config']['model'])} · "
             f"id `{run['id']}`"]
    if run.get("reason"):
        lines.append(f"**Why:** {esc(run['reason'])}")
    results = results_text(run.get("final_metrics"))
    if results:
        lines.append(f"**Results:** {results}.")
    probe = probe_markdown(run.get("probe"))
    return "\n\n".join(lines + ([probe] if probe else []))


def create_runs_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs, watch: gr.State) -> dict:
    with gr.Tab("4. Runs", id="runs") as tab:
        history = gr.Dataframe(headers=HEADERS, interactive=False, wrap=True, max_height=300, elem_id="tl-history",
                               label="All runs, newest first (click one to see it)",
                               column_widths=["22%", "8%", "22%", "10%", "14%", "12%", "12%"])
        with gr.Row(equal_height=True):
            chosen = gr.Dropdown(label="Run", choices=[], scale=3)
            compare = gr.Dropdown(label="Compare its curves with (optional)", choices=[], scale=3)
            log_scale = gr.Checkbox(label="Log scale", value=False, scale=1)
        with gr.Row():
            watch_button = gr.Button("Follow in Progress")
            rerun = gr.Button("Run again with the same settings")
            delete = gr.Button("Delete...", variant="stop")
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown()
            confirm = gr.Button("Yes, delete it", variant="stop")
            cancel = gr.Button("Keep it")
        empty_note = gr.Markdown("No runs yet: start one in the Train tab.")
        with gr.Column(visible=False) as panel:
            details = gr.Markdown()
            curves = gr.Plot(show_label=False)
            measures = gr.Plot(show_label=False)
            command = gr.Textbox(label="The same run from the command line (for a terminal in the app's folder)",
                                 lines=2, interactive=False, buttons=["copy"], elem_id="tl-command")
            config_yaml = gr.Code(label="Settings (YAML, as saved next to the run)", language="yaml", lines=30,
                                  interactive=False, show_line_numbers=False)

    @plain_errors
    def refresh(current, other):
        runs = ctx.runs().list()
        ids = {r["id"] for r in runs}
        choices = run_choices(runs)
        value = current if current in ids else (runs[0]["id"] if runs else None)
        return (gr.update(value=history_rows(runs) or None), gr.update(choices=choices, value=value),
                gr.update(choices=choices, value=other if other in ids else None))

    @plain_errors
    def show(run_id, other, log_y):
        if not run_id:
            return gr.update(visible=True), gr.Column(visible=False), "", None, None, "", ""
        store = ctx.runs()
        run = store.get(run_id)
        metrics = store.metrics(run_id)
        if other and other != run_id:
            both = [(run["name"], metrics), (store.get(other)["name"], store.metrics(other))]
            figure = charts.overlay_figure(both, log_y)
        else:
            figure = charts.loss_figure(metrics, log_y, run["name"], waiting=run["status"] in ACTIVE)
        config = store.config(run_id)
        return (gr.update(visible=False), gr.Column(visible=True), details_markdown(run), figure,
                charts.method_figure(metrics, run["method"], waiting=run["status"] in ACTIVE),
                yaml.safe_dump(config.to_dict(), sort_keys=False),
                config_to_command(config))

    @plain_errors
    def pick_row(event: gr.SelectData):
        runs = ctx.runs().list()
        return runs[event.index[0]]["id"] if event.index and event.index[0] < len(runs) else gr.skip()

    @plain_errors
    def run_again(run_id):
        if not run_id:
            raise gr.Error("Pick a run first.")
        store = ctx.runs()
        run = store.get(run_id)
        config = dataclasses.replace(store.config(run_id), name=f"{run['name']} (again)")
        new_id = ctx.runner.submit(config)
        ahead = runs_ahead(store.list(), new_id)
        gr.Info(f"Started '{config.name}'." if ahead <= 0 else
                f"'{config.name}' waits in line ({ahead} ahead) and starts by itself.")
        return new_id, gr.Tabs(selected="live")

    @plain_errors
    def follow(run_id):
        if not run_id:
            raise gr.Error("Pick a run first.")
        return run_id, gr.Tabs(selected="live")

    @plain_errors
    def ask_delete(run_id):
        if not run_id:
            raise gr.Error("Pick a run first.")
        name = ctx.runs().get(run_id)["name"]
        return gr.Row(visible=True), f"Delete **{esc(name)}** with its saved adapter and log? This cannot be undone."

    @plain_errors
    def do_delete(run_id, other):
        store = ctx.runs()
        if store.get(run_id)["status"] in ACTIVE:
            raise RunStateError("This run is training or waiting. Stop it in the Progress tab first, then delete it.")
        store.delete(run_id)
        gr.Info("Run deleted.")
        return gr.Row(visible=False), *refresh(None, other)

    shown = [empty_note, panel, details, curves, measures, config_yaml, command]
    for event in (tab.select, demo.load):
        event(refresh, [chosen, compare], [history, chosen, compare]).then(show, [chosen, compare, log_scale], shown)
    gr.on([chosen.change, compare.change, log_scale.change], show, [chosen, compare, log_scale], shown)
    history.select(pick_row, None, chosen)
    watch_button.click(follow, chosen, [watch, tabs])
    rerun.click(run_again, chosen, [watch, tabs])
    delete.click(ask_delete, chosen, [confirm_row, confirm_text])
    confirm.click(do_delete, [chosen, compare], [confirm_row, history, chosen, compare])
    cancel.click(lambda: gr.Row(visible=False), None, confirm_row)
    return {"tab": tab}
