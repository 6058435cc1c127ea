"""The line under the title that says a run is training or waiting, on every tab: a page opened or reloaded during a
run opens on the Data tab, and nothing there said that a run was going. "Show it" opens it in Progress."""
import gradio as gr

from ui.common import Context, duration, esc, on, run_duration

CHECK_SECONDS = 5


def banner_text(runs: list[dict]) -> tuple[str, str | None]:
    """(HTML, the run it names) for the runs in the store, newest first; ("", None) when none trains or waits."""
    running = [r for r in runs if r["status"] == "running"]
    waiting = [r for r in runs if r["status"] == "queued"]
    if running:
        run = running[0]
        elapsed = run_duration(run)
        text = f"<b>Training now:</b> {esc(run['name'])}" + (f", for {duration(elapsed)} so far." if elapsed else ".")
    elif waiting:
        run = waiting[-1]  # the oldest: it starts first
        text = f"<b>Waiting to train:</b> {esc(run['name'])}."
    else:
        return "", None
    others = len(waiting) - (0 if running else 1)
    if others:
        text += f" {others} more {'runs wait' if others > 1 else 'run waits'} in line."
    return f'<div class="tl-banner">{text}</div>', run["id"]


def refresh(ctx: Context, v: dict):
    html, run_id = banner_text(ctx.runs().list())
    return gr.update(value=html, visible=bool(html)), gr.update(visible=bool(html)), run_id


def show(ctx: Context, v: dict):
    if not v["shown"]:
        raise gr.Error("No run is training or waiting now.")
    return v["shown"], gr.Tabs(selected="live")


def create_banner(ctx: Context, demo: gr.Blocks, watch: gr.State):
    """The line and its button, placed where this is called (above the tabs); returns wire(tabs), called once the
    tabs exist, which connects the button to them."""
    with gr.Row(equal_height=True):
        line = gr.HTML(visible=False, elem_id="tl-banner")
        button = gr.Button("Show it in Progress", size="sm", visible=False, scale=0, elem_id="tl-banner-show")
    shown = gr.State(None)
    timer = gr.Timer(CHECK_SECONDS)
    on([demo.load, timer.tick], ctx, refresh, None, [line, button, shown], show_progress="hidden")

    def wire(tabs: gr.Tabs):
        on(button.click, ctx, show, {"shown": shown}, [watch, tabs])
    return wire


CSS = """
.tl-banner { border-radius: 8px; padding: 8px 12px; border-left: 5px solid #2563eb;
             background: var(--background-fill-secondary); font-size: 15px; }
"""
