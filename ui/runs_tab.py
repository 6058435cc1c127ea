"""Runs tab: the history of runs; one run's settings, results and curves; two runs compared; rerun; delete."""
import dataclasses
from pathlib import Path

import gradio as gr
import yaml

from backend.presets import config_as_command
from ui import charts, verdict
from ui.common import (ACTIVE, METHOD_NAMES, STATUS_WORDS, Context, bind, dataset_teaches_about_itself, duration, esc,
                       final_loss, on, plain_errors, probe_markdown, results_text, run_choices, run_duration, when,
                       without_paths)

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
    """The run's name, status, origin and results: what the tab says first (its everyday answers come last)."""
    lines = [f"### {esc(run['name'])}",
             f"**{STATUS_WORDS[run['status']]}** · {METHOD_NAMES.get(run['method'], run['method'])} on "
             f"'{esc(run['dataset'])}' · from {esc(run['config'].get('base_run') or run['config']['model'])} · "
             f"id `{run['id']}`"]
    if run.get("reason"):
        lines.append(f"**Why:** {esc(without_paths(run['reason']))}")
    results = results_text(run.get("final_metrics"))
    if results:
        lines.append(f"**Results:** {results}.")
    return "\n\n".join(lines)


def refresh(ctx: Context, v: dict):
    runs = ctx.runs().list()
    ids = {r["id"] for r in runs}
    choices = run_choices(runs)
    value = v["run"] if v["run"] in ids else (runs[0]["id"] if runs else None)
    return (gr.update(value=history_rows(runs) or None), gr.update(choices=choices, value=value),
            gr.update(choices=choices, value=v["other"] if v["other"] in ids else None))


def show(ctx: Context, v: dict):
    run_id, other = v["run"], v["other"]
    if not run_id:
        return gr.update(visible=True), gr.Column(visible=False), "", None, None, "", "", gr.update(interactive=False), ""
    store = ctx.runs()
    run = store.get(run_id)
    metrics = store.metrics(run_id)
    if other and other != run_id:
        both = [(run["name"], metrics), (store.get(other)["name"], store.metrics(other))]
        figure = charts.overlay_figure(both, v["log_y"])
    else:
        figure = charts.loss_figure(metrics, v["log_y"], run["name"], waiting=run["status"] in ACTIVE)
    config = store.config(run_id)
    return (gr.update(visible=False), gr.Column(visible=True), details_markdown(run), figure,
            charts.method_figure(metrics, run["method"], waiting=run["status"] in ACTIVE),
            probe_markdown(run.get("probe")), yaml.safe_dump(config.to_dict(), sort_keys=False),
            gr.update(interactive=run["status"] not in ACTIVE),
            config_as_command(config, dataset_teaches_about_itself(ctx, config.dataset)))


def run_again(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    store = ctx.runs()
    config = dataclasses.replace(store.config(v["run"]), name=f"{store.get(v['run'])['name']} (again)")
    new_id = ctx.runner.submit(config)
    ahead = store.ahead(new_id)
    gr.Info(f"Started '{config.name}'." if ahead <= 0 else
            f"'{config.name}' waits in line ({ahead} ahead) and starts by itself.")
    return new_id, gr.Tabs(selected="live")


def follow(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    return v["run"], gr.Tabs(selected="live")


def ask_delete(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    name = ctx.runs().get(v["run"])["name"]
    return gr.Row(visible=True), f"Delete **{esc(name)}** with its saved adapter and log? This cannot be undone."


def do_delete(ctx: Context, v: dict):
    ctx.runs().delete(v["run"])
    gr.Info("Run deleted.")
    return gr.Row(visible=False), *refresh(ctx, {"run": None, "other": v["other"]})


def create_runs_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs, watch: gr.State, suggestion: gr.State | None = None):
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
        # In the order a person asks: which run, did it learn (and what next), do people prefer it, the curves; the
        # forty rows of everyday answers last ('Do people prefer it?' stood above the run's name, and those rows
        # came between the name and 'Did it learn?').
        with gr.Column(visible=False) as panel:
            details = gr.Markdown(elem_id="tl-runs-details")
            learned = gr.Markdown(elem_id="tl-runs-learned")
            # Widths that add up to the page: the answers wrap, the scores stay narrow (the tuned answers and
            # scores ran off the right edge).
            heldout = gr.Dataframe(headers=verdict.HELDOUT_HEADERS, interactive=False, wrap=True, max_height=360,
                                   visible=False, elem_id="tl-runs-heldout", label="Held-back examples, chrF 0-100",
                                   column_widths=["20%", "21%", "22%", "7%", "23%", "7%"])
            reworded = gr.Dataframe(headers=verdict.REWORDED_HEADERS, interactive=False, wrap=True, max_height=360,
                                    visible=False, elem_id="tl-runs-reworded",
                                    label="Questions about itself, asked in other words after training",
                                    column_widths=["34%", "46%", "20%"])
            diagnosis = gr.Markdown(elem_id="tl-runs-diagnosis")
            try_it = gr.Button("Try this", visible=False, variant="primary", elem_id="tl-runs-try")
            preferred = gr.Markdown(elem_id="tl-runs-winrates")
            curves = gr.Plot(show_label=False, elem_id="tl-runs-curves")
            measures = gr.Plot(show_label=False)
            everyday = gr.Markdown(elem_id="tl-runs-everyday")
            command = gr.Textbox(label="The same run from the command line (for a terminal in the app's folder)",
                                 lines=2, interactive=False, buttons=["copy"], elem_id="tl-command")
            config_yaml = gr.Code(label="Settings (YAML, as saved next to the run)", language="yaml", lines=30,
                                  interactive=False, show_line_numbers=False)

    @plain_errors
    def pick_row(event: gr.SelectData):  # the clicked row of the history table (Gradio passes the event by type)
        runs = ctx.runs().list()
        return runs[event.index[0]]["id"] if event.index and event.index[0] < len(runs) else gr.skip()

    picked = {"run": chosen, "other": compare}
    # Delete is grey while the run trains or waits (it was red, and refused only after 'Yes, delete it').
    shown = [empty_note, panel, details, curves, measures, everyday, config_yaml, delete, command]
    checked = {"learned": learned, "heldout": heldout, "reworded": reworded, "diagnosis": diagnosis, "try_it": try_it,
               "preferred": preferred}
    on([tab.select, demo.load], ctx, refresh, picked, [history, chosen, compare]).then(
        *bind(ctx, show, {**picked, "log_y": log_scale}), shown).then(
        *bind(ctx, verdict.run_checks, {"run": chosen}, outputs=checked))
    on([chosen.change, compare.change, log_scale.change], ctx, show, {**picked, "log_y": log_scale}, shown)
    on(chosen.change, ctx, verdict.run_checks, {"run": chosen}, checked)
    if suggestion is not None:
        on(try_it.click, ctx, verdict.try_this, {"run": chosen}, {"suggestion": suggestion, "tabs": tabs})
    history.select(pick_row, None, chosen)
    on(watch_button.click, ctx, follow, {"run": chosen}, [watch, tabs])
    on(rerun.click, ctx, run_again, {"run": chosen}, [watch, tabs])
    on(delete.click, ctx, ask_delete, {"run": chosen}, [confirm_row, confirm_text])
    on(confirm.click, ctx, do_delete, picked, [confirm_row, history, chosen, compare])
    cancel.click(lambda: gr.Row(visible=False), None, confirm_row)
