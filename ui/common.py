"""What the tabs share: the app's context (runner, database, model pool), the bridge from Gradio events to
handlers, plain-language errors, formatting, and the choice of models to answer with.

Each tab is a layout plus handlers. A handler is a plain function `handler(ctx, values)` of the app's Context and a
dict of the form's values by name; it returns what the outputs show, in their order or, where the outputs are given
by name, as a dict by those names (an output it leaves out stays as it is). `bind` turns one into a Gradio callback,
so handlers are tested directly, without a browser.
"""
import functools
import html
import inspect
import logging
import os
import re
import sys
import threading
from datetime import datetime
from pathlib import Path

import gradio as gr

from backend import workspace
from backend.config import METHOD_TABLE
from backend.data import DatasetStore
from backend.db import connect
from backend.errors import TuneloopError
from backend.limits import check_text
from backend.runs import (ACTIVE, DONE, FAILED, FINISHED, QUEUED, RUNNING, STOPPED, RunStore, final_loss,
                          results_text)

log = logging.getLogger("tuneloop.ui")
METHOD_NAMES = {m.name: m.short for m in METHOD_TABLE.values()}
STATUS_WORDS = {QUEUED: "Waiting", RUNNING: "Training", DONE: "Finished", FAILED: "Failed", STOPPED: "Stopped"}
BASE = "base"  # the dropdown value for the base model, without a run's adapter
BASE_LABEL = "Base model (no tuning)"

__all__ = ["ACTIVE", "FINISHED", "Context", "bind", "final_loss", "plain_errors", "results_text"]


class Context:
    """The one JobRunner and model pool of the app process, and a database connection per server thread."""

    def __init__(self, runner, pool=None):
        self.runner = runner
        self.pool = pool
        self._local = threading.local()

    def db(self):
        if getattr(self._local, "db", None) is None:
            self._local.db = connect()
        return self._local.db

    def runs(self) -> RunStore:
        return RunStore(self.db())

    def datasets(self) -> DatasetStore:
        return DatasetStore(self.db())


def plain_words(exc: Exception, where: str) -> str:
    """A sentence for people about an error: a TuneloopError's own words; anything else is logged with its traceback
    (`where`: what was running) and named in one line, server paths taken out."""
    if isinstance(exc, TuneloopError):
        return str(exc)
    log.error("Unexpected error in %s", where, exc_info=exc)
    first = without_paths(str(exc).splitlines()[0][:200]) if str(exc) else ""
    return (f"Something went wrong ({type(exc).__name__}{': ' + first if first else ''}). The app keeps working; "
            "the details are in the terminal that runs it.")


def plain_errors(fn):
    """Handlers raise gr.Error with a sentence for people; the traceback goes to the server log only."""
    def translate(exc: Exception):
        if isinstance(exc, gr.Error):
            return exc
        return gr.Error(plain_words(exc, getattr(fn, "__name__", str(fn))), print_exception=False)

    if inspect.isgeneratorfunction(fn):
        @functools.wraps(fn)
        def generator(*args, **kwargs):
            try:
                yield from fn(*args, **kwargs)
            except Exception as exc:
                raise translate(exc) from None
        return generator

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            raise translate(exc) from None
    return wrapper


def bind(ctx: Context, handler, fields: dict | None = None, progress: bool = False, outputs: dict | None = None):
    """(callback, inputs) for an event listener: the callback calls `handler(ctx, values)`, values by field name
    (and `values["progress"]`, a gr.Progress, when asked for); backend errors become plain messages.
    With `outputs` ({name: component}), the handler returns a dict by those names and bind gives
    (callback, inputs, components): the components in order, each one the handler left out skipped."""
    if outputs is not None:
        return (*bind(ctx, by_name(handler, list(outputs)), fields, progress), list(outputs.values()))
    fields = fields or {}
    safe = plain_errors(_capped(handler))
    names = {component: name for name, component in fields.items()}

    def values_of(data: dict) -> dict:
        return {names[component]: value for component, value in data.items()}

    if not fields:
        if inspect.isgeneratorfunction(handler):
            def callback():
                yield from safe(ctx, {})
        else:
            def callback():
                return safe(ctx, {})
        return callback, None
    if progress:
        def callback(data, progress=gr.Progress()):
            return safe(ctx, {**values_of(data), "progress": progress})
    elif inspect.isgeneratorfunction(handler):
        def callback(data):
            yield from safe(ctx, values_of(data))
    else:
        def callback(data):
            return safe(ctx, values_of(data))
    return callback, set(fields.values())


def by_name(handler, names: list[str]):
    """`handler`, whose dict of outputs by name becomes the list Gradio takes, in the order of `names`."""
    if inspect.isgeneratorfunction(handler):
        raise TypeError(f"{handler.__name__}: outputs by name are for plain handlers, not generators.")

    def in_order(ctx, values):
        shown = handler(ctx, values)
        unknown = set(shown) - set(names)
        if unknown:
            raise KeyError(f"{handler.__name__} returned outputs it was not wired to: {', '.join(sorted(unknown))}")
        return [shown[name] if name in shown else gr.skip() for name in names]
    return functools.update_wrapper(in_order, handler)


def _capped(handler):
    """The handler, after every text value was checked against its length cap (backend/limits.py): a 20 MB chat
    message sent to the API is refused in words like one typed on the page."""
    def check(values: dict):
        for name, value in values.items():
            check_text(name, value)

    if inspect.isgeneratorfunction(handler):
        def generator(ctx, values):
            check(values)
            yield from handler(ctx, values)
        return functools.update_wrapper(generator, handler)

    def plain(ctx, values):
        check(values)
        return handler(ctx, values)
    return functools.update_wrapper(plain, handler)


def on(triggers, ctx: Context, handler, fields: dict | None, outputs, progress: bool = False, **kwargs):
    """Wire `handler(ctx, values)` to one event or a list of events. `outputs`: components, or {name: component}
    for a handler that returns its outputs by name."""
    if isinstance(outputs, dict):
        callback, inputs, outputs = bind(ctx, handler, fields, progress, outputs)
    else:
        callback, inputs = bind(ctx, handler, fields, progress)
    return gr.on(triggers if isinstance(triggers, list) else [triggers], callback, inputs, outputs, **kwargs)


# --- models to answer with (chat and label tabs) ---------------------------------------------------------------

def source_choices(ctx: Context) -> list[tuple[str, str]]:
    return [(BASE_LABEL, BASE)] + [(run_label(r), r["id"]) for r in ctx.runs().finished()]


def default_pair(ctx: Context) -> tuple[str, str]:
    """The newest finished run on the right, what it was built on (a run, or the base model) on the left."""
    finished = ctx.runs().finished()
    if not finished:
        return BASE, BASE
    newest = finished[0]
    ids = {r["id"] for r in finished}
    return (newest["base_run"] if newest.get("base_run") in ids else BASE), newest["id"]


def resolve_source(ctx: Context, choice: str, other: str):
    """A dropdown value as a Source; 'base' is the base model of the other side's run (or the built-in one)."""
    if choice and choice != BASE:
        return ctx.pool.source(choice)
    model = ctx.runs().get(other)["config"]["model"] if other and other != BASE else None
    return ctx.pool.source(model=model)


# --- words and numbers for people ------------------------------------------------------------------------------

def duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes, seconds = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {seconds:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def run_duration(run: dict) -> float | None:
    if not run.get("started"):
        return None
    end = datetime.fromisoformat(run["ended"]) if run.get("ended") else datetime.now().astimezone()
    return (end - datetime.fromisoformat(run["started"])).total_seconds()


def when(iso: str | None) -> str:
    if not iso:
        return ""
    return datetime.fromisoformat(iso).astimezone().strftime("%b %d, %H:%M")


def run_label(run: dict) -> str:
    return f"{run['name']} · {METHOD_NAMES.get(run['method'], run['method'])} · {STATUS_WORDS[run['status']].lower()}"


def run_choices(runs: list[dict], statuses=None) -> list[tuple[str, str]]:
    return [(run_label(r), r["id"]) for r in runs if statuses is None or r["status"] in statuses]


def dataset_choices(ctx: "Context") -> list[tuple[str, str]]:
    """The Train tab's datasets, oldest first: "name (KIND, N examples)"."""
    return [(f"{d['name']} ({d['kind'].upper()}, {d['valid_rows']:,} examples)", d["name"])
            for d in ctx.datasets().list()]


def dataset_teaches_about_itself(ctx: "Context", name: str | None) -> bool | None:
    """Whether a saved dataset's training rows teach who the assistant is (the preset may give them values of its own:
    backend/presets.py, as `train` judges them); None where there is no such dataset. Remembered by the dataset's name,
    source, creation time and size: the Train tab asks at each change of its choices, and reading a large dataset's
    rows each time held up the queue that draws the memory verdict."""
    from backend.evaluation.reworded import rows_teach_about_itself
    return _remembered(ctx, name, rows_teach_about_itself)


def dataset_rehearses_their_way(ctx: "Context", name: str | None) -> bool | None:
    """Whether a saved dataset's examples have their way of answering rehearsed, which a run does before its first
    step (backend/evaluation/rehearsal.rows_rehearse_their_way): the preset cards' time counts it. Remembered as
    dataset_teaches_about_itself is."""
    from backend.evaluation.rehearsal import rows_rehearse_their_way
    return _remembered(ctx, name, rows_rehearse_their_way)


def _remembered(ctx: "Context", name: str | None, judge) -> bool | None:
    """`judge(training rows)` of a saved dataset, remembered by its name, source, creation time and size; None where
    there is no such dataset."""
    if not name or not ctx.datasets().exists(name):
        return None
    info = ctx.datasets().get(name)
    key = (judge.__name__, name, info["source"], info["created"], info["valid_rows"])
    if key not in _JUDGED:
        _JUDGED[key] = judge(ctx.datasets().rows(name, "train"))
    return _JUDGED[key]


_JUDGED: dict[tuple, bool] = {}


def finished_run_choices(ctx: "Context") -> list[tuple[str, str]]:
    """The runs a new run can build on: those with a finished adapter (not a run stopped before it saved one)."""
    return run_choices(ctx.runs().finished())


def esc(text) -> str:
    """`text` shown as it is in HTML and in Markdown: an answer's "*giggle*" or a mark “*” is not emphasis there."""
    return html.escape(str(text)).replace("*", "&#42;")


ROOT = Path(__file__).resolve().parents[1]  # the app's own code
# An absolute path (not part of a URL): shown as its last part only.
_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/'\"():,]+/)+([^\s/'\"():,]*)")


def without_paths(text: str) -> str:
    """Text for people who use the app, not the server: the workspace, the Python installation and the code's
    folders are named, any other absolute path shortened to its file name."""
    if not text:
        return text
    places = [(str(workspace.home()), "workspace"), (sys.prefix, "python"), (sys.base_prefix, "python"),
              (str(ROOT), "tuneloop"), (os.path.expanduser("~"), "~")]
    for place, name in sorted(places, key=lambda p: -len(p[0])):
        if len(place) > 1:
            text = text.replace(place + "/", name + "/").replace(place, name)
    text = re.sub(r"[^\s'\"]*/(?:site|dist)-packages/", "", text)
    return _PATH.sub(lambda m: "…/" + m.group(1), text)


def waiting_text(name: str, ahead: int) -> str:
    """What Start says: training now, or waiting in line behind `ahead` runs."""
    if ahead > 0:
        return (f"Another run is training now. '{name}' waits in line ({ahead} ahead of it) and starts by itself "
                "when the computer is free.")
    return f"Training '{name}' started. Follow it in the Progress tab."


def probe_markdown(probe: dict | None) -> str:
    """The forgetting probe: a sentence, then each everyday question with the answers before and after."""
    if not probe:
        return ""
    summary = probe["summary"][:1].upper() + probe["summary"][1:]
    lines = [f"**Forgetting probe: everyday questions, asked before and after training.** {esc(summary)}."]
    if not probe.get("base_right"):
        return lines[0]
    lines += ["", "| Question | Before training | After training | Still right |", "|---|---|---|---|"]
    for item in probe.get("items", []):
        kept = "yes" if item["base_right"] and item["tuned_right"] else ("no" if item["base_right"] else "-")
        cells = [item["question"], item["base"], item["tuned"]]
        lines.append("| " + " | ".join(esc(c[:160]).replace("|", "/").replace("\n", " ") for c in cells)
                     + f" | {kept} |")
    return "\n".join(lines)
