"""The line under the title that says a run is training or waiting, on every tab: a page opened or reloaded during a
run opens on the Data tab, and nothing there said that a run was going. "Show it" opens it in Progress. On the
Progress tab showing that run the button has nothing to do: it goes. The line stays: taking it away moved the tab
bar up by its height as Progress opened, out of sight on a page scrolled to the bar (a button far down Train opens
Progress scrolled so, ui/app.SHOW_TAB_BAR), and down again on the next tab."""
import gradio as gr

from ui import live_tab
from ui.common import Context, duration, esc, on, plain_errors, run_duration

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


# The open tab's name, read in the page before each refresh: Gradio's tab events say that the tab changed, not which
# one is open (a tab opened by a button, Start or 'Show it in Progress', fires no select event).
OPEN_TAB_JS = """(open, run) => {
  const tab = document.querySelector('#tl-tabs [role=tab][aria-selected=true]');
  return [tab ? tab.textContent.trim() : '', run]; }"""


def refresh(ctx: Context, v: dict):
    """v: open_tab (the open tab's name), progress_run (the run the Progress tab shows). The walk: the line and its
    'Show it in Progress' stayed above the Progress tab that showed that very run."""
    html, run_id = banner_text(ctx.runs().list())
    shown_there = v.get("open_tab") == live_tab.TAB_NAME and run_id is not None and v.get("progress_run") == run_id
    return gr.update(value=html, visible=bool(html)), gr.update(visible=bool(html) and not shown_there), run_id


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
        open_tab = gr.Textbox(visible=False)  # filled in the page by OPEN_TAB_JS
    shown = gr.State(None)
    timer = gr.Timer(CHECK_SECONDS)

    def wire(tabs: gr.Tabs, progress_run: gr.Dropdown):
        """tabs (elem_id tl-tabs) and the Progress tab's run list, once they exist."""
        # Inputs in a list, not bind's by-name set: OPEN_TAB_JS rewrites the first one, so their order must be known.
        safe = plain_errors(refresh)
        gr.on([demo.load, timer.tick, tabs.change, progress_run.change],
              lambda tab, run: safe(ctx, {"open_tab": tab, "progress_run": run}), [open_tab, progress_run],
              [line, button, shown], js=OPEN_TAB_JS, show_progress="hidden")
        on(button.click, ctx, show, {"shown": shown}, [watch, tabs])
    return wire


CSS = """
.tl-banner { border-radius: 8px; padding: 8px 12px; border-left: 5px solid #2563eb;
             background: var(--background-fill-secondary); font-size: 15px; }
"""
