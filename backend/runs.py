"""RunStore: runs, their status and their metrics, in the database; each run's files under runs/<id>/.

It owns the run lifecycle: the statuses and what each allows, the queue order, and whether a run has a finished
adapter to answer with, build on or export.
"""
from __future__ import annotations

import json
import secrets
import shutil
from datetime import datetime, timezone
from pathlib import Path

import yaml

from backend import workspace
from backend.config import RunConfig, build_config, current_names
from backend.errors import RunNotFound, RunStateError

QUEUED, RUNNING, DONE, FAILED, STOPPED = STATUSES = ("queued", "running", "done", "failed", "stopped")
ACTIVE = (QUEUED, RUNNING)  # waiting or training
FINISHED = (DONE, STOPPED)  # ended with a saved adapter that can be used
ENDED = (DONE, FAILED, STOPPED)
RESUMABLE = (STOPPED, FAILED)  # can go on from their last checkpoint


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def adapter_dir(run_id: str) -> Path:
    return workspace.run_dir(run_id) / "adapter"


def final_loss(run: dict) -> float | None:
    """The loss a run ended on: on its held-back examples where it held some back, else on its training examples;
    None for a run that has not ended (the Runs tab, the Progress tab and `app.py runs` all show this one)."""
    metrics = run.get("final_metrics") or {}
    return metrics.get("eval_loss", metrics.get("train_loss"))


def loss_words(run: dict) -> str:
    """The loss a finished run is shown with: 'final loss 0.212', or, where early stopping kept an earlier checkpoint,
    'held-back loss 0.436 at step 12, the checkpoint kept' (the curve goes on past it, lower or higher); '' before
    it ends."""
    loss = final_loss(run)
    if loss is None:
        return ""
    metrics = run.get("final_metrics") or {}
    best = ((run.get("outcome") or {}).get("early_stopping") or {}).get("best_step")
    if "eval_loss" in metrics and best and metrics.get("steps") and best != metrics["steps"]:
        return f"held-back loss {loss:.3f} at step {best}, the checkpoint kept"
    return f"final loss {loss:.3f}"


# The measures a run ends with, in words (the Runs tab's Results line and the model card); others keep their keys.
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


def has_adapter(run_id: str) -> bool:
    """Whether the run saved an adapter: one stopped before it trained has none (it learned nothing to export)."""
    return (adapter_dir(run_id) / "adapter_config.json").exists()


class RunStore:
    def __init__(self, db):
        self.db = db

    # --- writing ------------------------------------------------------------------------------------
    def create(self, config: RunConfig) -> str:
        """Queue a new run (inside the caller's transaction when there is one). Returns its id."""
        run_id = f"{config.method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        with self.db.atomic():
            self.db["runs"].insert({
                "id": run_id, "name": config.name or run_id, "method": config.method, "status": QUEUED,
                "config": json.dumps(config.to_dict()), "base_run": config.base_run, "dataset": config.dataset,
                "created": now(), "resume": 0,
            })
            folder = workspace.run_dir(run_id)
            folder.mkdir(parents=True)
            workspace.write_text_atomic(folder / "config.yaml", yaml.safe_dump(config.to_dict(), sort_keys=False))
        return run_id

    def set_status(self, run_id: str, status: str, reason: str | None = None):
        assert status in STATUSES
        update = {"status": status}
        if status == RUNNING:
            update["started"] = now()
            update["reason"] = None
        if status in ENDED:
            update["ended"] = now()
        if reason is not None:
            update["reason"] = reason
        with self.db.atomic():
            self.db["runs"].update(run_id, update)

    def claim(self, run_id: str) -> bool:
        """Move a queued run to running; False when someone else already did."""
        with self.db.atomic():
            cursor = self.db.execute("update runs set status = ?, started = ?, reason = null "
                                     "where id = ? and status = ?", [RUNNING, now(), run_id, QUEUED])
        return cursor.rowcount == 1

    def queue_resume(self, run_id: str):
        run = self.get(run_id)
        if run["status"] not in RESUMABLE:
            raise RunStateError(f"Run '{run_id}' is {run['status']}; only a stopped or failed run can be resumed.")
        with self.db.atomic():
            self.db["runs"].update(run_id, {"status": QUEUED, "resume": 1, "reason": None, "ended": None})

    def update(self, run_id: str, **fields):
        encoded = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in fields.items()}
        with self.db.atomic():
            self.db["runs"].update(run_id, encoded)

    def add_metrics(self, run_id: str, step: int, data: dict):
        with self.db.atomic():
            self.db["metrics"].insert({"run_id": run_id, "step": step, "data": json.dumps(data),
                                       "time": datetime.now(timezone.utc).timestamp()})

    def delete(self, run_id: str):
        if self.get(run_id)["status"] in ACTIVE:
            raise RunStateError("This run is training or waiting. Stop it first, then delete it.")
        with self.db.atomic():
            self.db.execute("delete from metrics where run_id = ?", [run_id])
            self.db["runs"].delete(run_id)
        shutil.rmtree(workspace.run_dir(run_id), ignore_errors=True)

    # --- reading ------------------------------------------------------------------------------------
    def get(self, run_id: str) -> dict:
        rows = self.db.rows("select * from runs where id = ?", [run_id])
        if not rows:
            raise RunNotFound(run_id)
        return _decode(rows[0])

    def config(self, run_id: str) -> RunConfig:
        return build_config(self.get(run_id)["config"])

    def list(self) -> list[dict]:
        return [_decode(r) for r in self.db.rows("select * from runs order by created desc, rowid desc")]

    def next_queued(self, among=None) -> str | None:
        """The oldest waiting run; `among`: only one of these run ids (a command line trains only its own)."""
        if among is None:
            return self.db.value("select id from runs where status = ? order by rowid limit 1", [QUEUED])
        ids = list(among)
        marks = ", ".join("?" * len(ids))
        return self.db.value(f"select id from runs where status = ? and id in ({marks}) order by rowid limit 1",
                             [QUEUED, *ids]) if ids else None

    def ahead(self, run_id: str) -> int:
        """How many runs train or wait before this one (the runner takes the oldest waiting run next);
        0 for the run training and for a run not in line."""
        line = [r["id"] for r in self.db.rows(
            "select id from runs where status in (?, ?) order by status = ?, rowid", [RUNNING, QUEUED, QUEUED])]
        return line.index(run_id) if run_id in line else 0

    def metrics(self, run_id: str) -> list[dict]:
        rows = self.db.rows("select step, data from metrics where run_id = ? order by rowid", [run_id])
        return [{"step": r["step"], **json.loads(r["data"])} for r in rows]

    def finished_speeds(self) -> list[tuple[str, float]]:
        """(model, tokens per second at its last logged step) of each run that finished, newest first: one query,
        not every run's metrics (the Train tab asks at every redraw of its preset cards)."""
        rows = self.db.rows(
            "select r.config as config, json_extract(m.data, '$.tokens_per_second') as speed from runs r "
            "join metrics m on m.rowid = (select max(rowid) from metrics where run_id = r.id "
            "and json_extract(data, '$.tokens_per_second') is not null) "
            "where r.status = ? order by r.created desc, r.rowid desc", [DONE])
        return [(json.loads(r["config"])["model"], r["speed"]) for r in rows]

    def last_metrics_time(self, run_id: str) -> float | None:
        """When the run last logged a training step (a Unix time); None before its first."""
        return self.db.value("select max(time) from metrics where run_id = ?", [run_id])

    def running(self) -> list[dict]:
        """The runs marked running, each with its worker's pid and start time (None until the worker started)."""
        return self.db.rows("select id, pid, pid_start from runs where status = ?", [RUNNING])

    def metrics_count(self, run_id: str) -> int:
        return self.db.value("select count(*) from metrics where run_id = ?", [run_id])

    def finished_adapter(self, run_id: str) -> Path:
        """The saved adapter of a finished run, to answer with, build on or export; RunStateError in words if none."""
        run = self.get(run_id)
        path = adapter_dir(run_id)
        if run["status"] not in FINISHED or not has_adapter(run_id):
            raise RunStateError(f"Run '{run_id}' is {run['status']} and has no finished adapter yet: wait until it "
                                "has finished, or pick a finished run.")
        return path

    def finished(self) -> list[dict]:
        """Runs with a finished adapter, newest first."""
        return [r for r in self.list() if r["status"] in FINISHED and has_adapter(r["id"])]


def _decode(row: dict) -> dict:
    """A run as stored, its settings (and those its diagnosis suggests) under their current names: a run stored
    before a setting was renamed reads as one stored after."""
    row = dict(row)
    for key in ("config", "probe", "final_metrics", "heldout", "diagnosis", "outcome"):
        if row.get(key):
            row[key] = json.loads(row[key])
    if row.get("config"):
        row["config"] = current_names(row["config"])
    for finding in row.get("diagnosis") or []:
        if finding.get("try_settings"):
            finding["try_settings"] = current_names(finding["try_settings"])
    return row
