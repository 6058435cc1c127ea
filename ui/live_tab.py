"""Progress tab: a run as it trains, redrawn every two seconds from the database by a timer, no clicks needed.

Opening or refreshing the page attaches to the run that is training (or waiting); the timer picks up runs
started elsewhere (another browser tab, the command line) the same way.
"""
import logging

import gradio as gr

from backend import workspace
from backend.runs import RESUMABLE, has_adapter, loss_words
from backend.words import plural
from ui import charts, verdict
from ui.common import ACTIVE, Context, duration, esc, on, run_choices, run_duration, without_paths

TICK_SECONDS = 2.0
TAB_NAME = "3. Progress"
log_error = logging.getLogger("tuneloop.ui")
LOG_LINES = 14


def pick_run(runs: list[dict]) -> str | None:
    """The run to show on opening the page: the one training, else the next waiting, else the latest."""
    for status in ("running", "queued"):
        matching = [r for r in runs if r["status"] == status]
        if matching:
            return matching[-1]["id"] if status == "queued" else matching[0]["id"]
    return runs[0]["id"] if runs else None


def log_tail(run_id: str, lines: int = LOG_LINES, name: str = workspace.RAW_LOG) -> str:
    """The last lines of one of the run's logs, server paths taken out (shown behind the Details fold): the readable
    one (workspace.EVENTS_LOG, Tuneloop's sentences and one line per check) or the raw one."""
    path = workspace.run_dir(run_id) / name
    if not path.exists():
        return ""
    with open(path, "rb") as f:
        f.seek(max(0, path.stat().st_size - 8000))
        text = f.read().decode("utf-8", "replace")
    kept = [line for line in text.replace("\r", "\n").splitlines() if line.strip()]
    return without_paths("\n".join(kept[-lines:]))


def status_html(run: dict, ahead: int = 0) -> str:
    name = esc(run["name"])
    status = run["status"]
    if status == "queued":
        text = f"<b>{name}</b> is waiting in line ({plural(ahead, 'run')} ahead). It starts by itself."
    elif status == "running":
        text = f"<b>{name}</b> is training."
    elif status == "done":
        loss = loss_words(run)
        text = (f"<b>{name}</b> finished in {duration(run_duration(run))}"
                + (f", {loss}" if loss else "") + ". Next: the Export tab.")
    elif status == "stopped" and not has_adapter(run["id"]):
        text = (f"<b>{name}</b> was stopped before it trained: it learned nothing, so there is nothing to export or "
                "check. Resume trains it from the start.")
    elif status == "stopped":
        text = (f"<b>{name}</b> was stopped. {esc(without_paths(run.get('reason') or ''))} "
                "Resume it, or export what it learned.")
    else:
        reason = without_paths(run.get("reason") or "") or "no reason was recorded."
        text = (f"<b>{name}</b> failed: {esc(reason)} "
                "The app keeps working: change the settings and start again, or resume the run. "
                "The last lines of its log are under Details, below.")
    return f'<div class="tl-status tl-status-{status}">{text}</div>'


def progress_html(run: dict, metrics: list[dict]) -> str:
    if run["status"] == "queued":
        return ""
    last = next((m for m in reversed(metrics) if "train_loss" in m or "total_steps" in m), None)
    total = run.get("total_steps") or (last or {}).get("total_steps") or 0
    if last is None:
        if run["status"] == "running":
            return '<div class="tl-progress-text">Loading the model and preparing the data...</div>'
        return ""
    step = last["step"]
    share = min(1.0, step / total) if total else 0.0
    stopping = (run.get("outcome") or {}).get("early_stopping") or {}
    early = run["status"] == "done" and stopping.get("fired")
    if early:  # done, not half done: a bar stopped at step 24 of 44 beside "finished" read as a run cut short
        share = 1.0
    if run["status"] == "running" and "checking" in metrics[-1]:  # trained; now the checks, minutes on a CPU
        phase = metrics[-1]
        return (f'<div class="tl-bar"><div class="tl-bar-fill" style="width: 100%"></div></div>'
                f'<div class="tl-progress-text">Training done: step {step} of {total or step}. Now checking what it '
                f'kept and learned: {esc(phase["checking"])} (check {phase["check"]} of {phase["of_checks"]}) · '
                f'{duration(run_duration(run))} so far</div>')
    parts = [f"Stopped early at step {step} of at most {total}: the held-back examples showed no more progress "
             "(Early stopping, below)" if early and total else f"Step {step} of {total}" if total else f"Step {step}",
             f"{duration(run_duration(run))} so far" if run["status"] == "running" else
             f"took {duration(run_duration(run))}"]
    if run["status"] == "running" and last.get("eta") is not None:
        parts.append(f"about {duration(last['eta'])} left")
    if last.get("tokens_per_second"):
        parts.append(f"{last['tokens_per_second']:.0f} tokens per second")
    return (f'<div class="tl-bar"><div class="tl-bar-fill" style="width: {share * 100:.1f}%"></div></div>'
            f'<div class="tl-progress-text">{" · ".join(parts)}</div>')


IDLE = '<div class="tl-status">No run yet: start one in the Train tab.</div>'


def view(ctx: Context, v: dict, previous=None, follow_active: bool = False):
    """Everything the tab shows for a run; gr.skip() where nothing changed since `previous`."""
    store = ctx.runs()
    runs = store.list()
    run_id = v["run"]
    if follow_active and (run_id is None or run_id not in {r["id"] for r in runs}):
        run_id = pick_run(runs)
    listing = tuple((r["id"], r["status"]) for r in runs)
    current = next((r for r in runs if r["id"] == run_id), None)
    if current is None:
        signature = (listing, None)
        if signature == previous:
            return gr.skip()
        return (gr.update(choices=run_choices(runs), value=None), *idle(), signature)
    log_file = workspace.run_dir(run_id) / workspace.RAW_LOG
    signature = (listing, run_id, store.metrics_count(run_id), log_file.stat().st_size if log_file.exists() else 0,
                 v["log_y"])
    if signature == previous:
        return gr.skip()
    metrics = store.metrics(run_id)
    if previous and previous[0] == listing and previous[1] == run_id:
        dropdown = gr.skip()
    elif follow_active and run_id == v["run"]:
        # The timer's copy of the chosen run may be older than a choice just made (Start, Follow, the list):
        # it refreshes the list only, and the next tick draws whatever run the list then shows.
        dropdown = gr.update(choices=run_choices(runs))
    else:
        dropdown = gr.update(choices=run_choices(runs), value=run_id)
    waiting = current["status"] in ACTIVE
    return (dropdown, status_html(current, store.ahead(run_id)), progress_html(current, metrics),
            charts.loss_figure(metrics, v["log_y"], waiting=waiting),
            charts.method_figure(metrics, current["method"], waiting),
            charts.learning_rate_figure(metrics, waiting), verdict.ended_markdown(current),
            log_tail(run_id, name=workspace.EVENTS_LOG), log_tail(run_id),
            gr.update(interactive=current["status"] in ACTIVE),
            gr.update(interactive=current["status"] in RESUMABLE), signature)


def idle():
    return (IDLE, "", charts.empty("Loss", "No run yet."), charts.empty("Measures", "No run yet."),
            charts.empty("Learning rate", "No run yet."), "", "", "", gr.update(interactive=False),
            gr.update(interactive=False))


def tick(ctx: Context, v: dict):
    """The timer: follow the run shown, or the one training, redrawing only what changed."""
    try:
        return view(ctx, v, v["seen"], follow_active=True)
    except Exception:  # a busy or changing database: try again at the next tick, without a message each time
        log_error.exception("Could not refresh the Progress tab")
        return gr.skip()


def show(ctx: Context, v: dict):
    return view(ctx, v)


def stop_run(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    if ctx.runs().get(v["run"])["status"] not in ACTIVE:
        raise gr.Error("This run is not training or waiting, so there is nothing to stop.")
    ctx.runner.stop(v["run"])
    gr.Info("Stopping after the current step; the run keeps what it learned so far.")


def resume_run(ctx: Context, v: dict):
    if not v["run"]:
        raise gr.Error("Pick a run first.")
    ctx.runner.resume(v["run"])
    gr.Info("The run continues from its last saved checkpoint.")


def create_live_tab(ctx: Context, demo: gr.Blocks, watch: gr.State):
    with gr.Tab(TAB_NAME, id="live"):
        with gr.Row(equal_height=True):
            run = gr.Dropdown(label="Run", choices=[], scale=4, elem_id="tl-live-run")
            log_scale = gr.Checkbox(label="Loss on a log scale", value=False, scale=1)
            stop = gr.Button("Stop this run", variant="stop", scale=1, interactive=False)
            resume = gr.Button("Resume", scale=1, interactive=False)
        status = gr.HTML(IDLE, elem_id="tl-status")
        progress = gr.HTML(elem_id="tl-progress")
        loss = gr.Plot(charts.empty("Loss", "No run yet."), show_label=False, elem_id="tl-loss")
        with gr.Row():
            method_plot = gr.Plot(charts.empty("Measures", "No run yet."), show_label=False, elem_id="tl-live-measures")
            lr_plot = gr.Plot(charts.empty("Learning rate", "No run yet."), show_label=False, elem_id="tl-live-lr")
        probe = gr.Markdown(elem_id="tl-ended")
        with gr.Accordion("Details: what happened, step by step", open=False, elem_id="tl-live-details"):
            events_box = gr.Textbox(label="What happened (one line per check)", lines=8, max_lines=8,
                                    interactive=False, autoscroll=True, elem_id="tl-live-events")
            with gr.Accordion("The raw training log (with the libraries' own output)", open=False):
                log_box = gr.Textbox(label="Last lines of the training log", lines=8, max_lines=8, interactive=False,
                                     autoscroll=True, elem_id="tl-live-log")
        seen = gr.State(None)
        timer = gr.Timer(TICK_SECONDS)

    outputs = [run, status, progress, loss, method_plot, lr_plot, probe, events_box, log_box, stop, resume, seen]
    following = {"run": run, "log_y": log_scale, "seen": seen}
    on([demo.load, timer.tick], ctx, tick, following, outputs, show_progress="hidden")
    on([run.input, log_scale.change], ctx, show, {"run": run, "log_y": log_scale}, outputs, show_progress="hidden")
    on(watch.change, ctx, show, {"run": watch, "log_y": log_scale}, outputs, show_progress="hidden")
    on(stop.click, ctx, stop_run, {"run": run}, None)
    on(resume.click, ctx, resume_run, {"run": run}, None)
    return run  # the run shown: the line above the tabs goes while it names this one (ui/banner.py)


CSS = """
.tl-status { border-radius: 8px; padding: 10px 12px; border: 1px solid var(--border-color-primary); font-size: 15px; }
.tl-status-running { border-left: 5px solid #2563eb; }
.tl-status-queued { border-left: 5px solid #d97706; }
.tl-status-done { border-left: 5px solid #16a34a; }
.tl-status-failed { border-left: 5px solid #dc2626; background: rgba(220, 38, 38, 0.06); }
.tl-status-stopped { border-left: 5px solid #6b7280; }
.tl-bar { height: 14px; border-radius: 7px; background: var(--background-fill-secondary);
  border: 1px solid var(--border-color-primary); overflow: hidden; }
.tl-bar-fill { height: 100%; background: #2563eb; transition: width .5s; }
.tl-progress-text { font-size: 14px; margin-top: 4px; }
"""
