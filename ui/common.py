"""What every tab shares: the app's context (runner, database), plain-language errors, and formatting."""
import functools
import html
import logging
import threading
from datetime import datetime

import gradio as gr

from backend.data import DatasetStore
from backend.db import connect
from backend.errors import TuneloopError
from backend.runs import RunStore

log = logging.getLogger("tuneloop.ui")
ACTIVE = ("running", "queued")
FINISHED = ("done", "stopped")
METHOD_NAMES = {"sft": "SFT", "dpo": "DPO", "kto": "KTO"}
STATUS_WORDS = {"queued": "Waiting", "running": "Training", "done": "Finished", "failed": "Failed",
                "stopped": "Stopped"}


class Context:
    """The one JobRunner of the app process, and a database connection per server thread."""

    def __init__(self, runner):
        self.runner = runner
        self._local = threading.local()

    def db(self):
        if getattr(self._local, "db", None) is None:
            self._local.db = connect()
        return self._local.db

    def runs(self) -> RunStore:
        return RunStore(self.db())

    def datasets(self) -> DatasetStore:
        return DatasetStore(self.db())


def plain_errors(fn):
    """Event handlers raise gr.Error with a sentence for people; the traceback goes to the server log only."""
    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        try:
            return fn(*args, **kwargs)
        except gr.Error:
            raise
        except TuneloopError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        except Exception as exc:
            log.exception("Unexpected error in %s", fn.__name__)
            first = str(exc).splitlines()[0][:200] if str(exc) else ""
            raise gr.Error(f"Something went wrong ({type(exc).__name__}{': ' + first if first else ''}). "
                           "The app keeps working; the details are in the terminal that runs it.",
                           print_exception=False) from None
    return wrapper


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


def runs_ahead(runs: list[dict], run_id: str) -> int:
    """How many runs train or wait before this one (the runner takes the oldest waiting run next)."""
    line = sorted((r for r in runs if r["status"] in ACTIVE), key=lambda r: (r["status"] == "queued", r["created"]))
    ids = [r["id"] for r in line]
    return ids.index(run_id) if run_id in ids else 0


def final_loss(run: dict) -> float | None:
    metrics = run.get("final_metrics") or {}
    return metrics.get("eval_loss", metrics.get("train_loss"))


def esc(text) -> str:
    return html.escape(str(text))


def probe_markdown(probe: dict | None) -> str:
    """The forgetting probe: a sentence, then each everyday question with the answers before and after."""
    if not probe:
        return ""
    summary = probe["summary"][:1].upper() + probe["summary"][1:]
    lines = [f"**Everyday questions, asked before and after training.** {esc(summary)}."]
    if not probe.get("base_right"):
        return lines[0]
    lines += ["", "| Question | Before training | After training | Still right |", "|---|---|---|---|"]
    for item in probe.get("items", []):
        kept = "yes" if item["base_right"] and item["tuned_right"] else ("no" if item["base_right"] else "-")
        cells = [item["question"], item["base"], item["tuned"]]
        lines.append("| " + " | ".join(esc(c).replace("|", "/").replace("\n", " ")[:160] for c in cells)
                     + f" | {kept} |")
    return "\n".join(lines)


RESULT_NAMES = {"train_loss": "training loss", "eval_loss": "loss on held-back examples",
                "eval_rewards/accuracies": "held-back answers ranked right", "eval_rewards/margins": "held-back margin",
                "steps": "steps", "epoch": "passes over the data"}


def results_text(metrics: dict | None) -> str:
    parts = []
    for key, name in RESULT_NAMES.items():
        value = (metrics or {}).get(key)
        if isinstance(value, (int, float)):
            shown = f"{value:.0%}" if "accuracy" in key else f"{value:.4g}" if isinstance(value, float) else str(value)
            parts.append(f"{name} {shown}")
    return ", ".join(parts)
