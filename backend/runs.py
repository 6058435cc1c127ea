"""RunStore: runs, their status and their metrics, in the database; each run's files under runs/<id>/."""
from __future__ import annotations

import functools
import json
import secrets
import shutil
import threading
from datetime import datetime, timezone

import yaml

from backend import workspace
from backend.config import RunConfig, build_config
from backend.errors import RunNotFound

STATUSES = ("queued", "running", "done", "failed", "stopped")


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


def _locked(method):
    """One connection may be shared by the runner thread and the web server's threads: one call at a time."""
    @functools.wraps(method)
    def wrapper(self, *args, **kwargs):
        with self._lock:
            return method(self, *args, **kwargs)
    return wrapper


class RunStore:
    def __init__(self, db):
        self.db = db
        if not hasattr(db, "_tuneloop_lock"):
            db._tuneloop_lock = threading.RLock()
        self._lock = db._tuneloop_lock

    @_locked
    def create(self, config: RunConfig) -> str:
        run_id = f"{config.method}-{datetime.now().strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(2)}"
        folder = workspace.run_dir(run_id)
        folder.mkdir(parents=True)
        (folder / "config.yaml").write_text(yaml.safe_dump(config.to_dict(), sort_keys=False))
        with self.db.conn:
            self.db["runs"].insert({
                "id": run_id, "name": config.name or run_id, "method": config.method, "status": "queued",
                "config": json.dumps(config.to_dict()), "base_run": config.base_run, "dataset": config.dataset,
                "created": now(), "resume": 0,
            })
        return run_id

    @_locked
    def get(self, run_id: str) -> dict:
        rows = list(self.db.query("select * from runs where id = ?", [run_id]))
        if not rows:
            raise RunNotFound(run_id)
        return _decode(rows[0])

    def config(self, run_id: str) -> RunConfig:
        return build_config(self.get(run_id)["config"])

    @_locked
    def list(self) -> list[dict]:
        return [_decode(r) for r in self.db.query("select * from runs order by created desc, rowid desc")]

    @_locked
    def next_queued(self) -> str | None:
        rows = list(self.db.query("select id from runs where status = 'queued' order by rowid limit 1"))
        return rows[0]["id"] if rows else None

    @_locked
    def set_status(self, run_id: str, status: str, reason: str | None = None):
        assert status in STATUSES
        update = {"status": status}
        if status == "running":
            update["started"] = now()
            update["reason"] = None
        if status in ("done", "failed", "stopped"):
            update["ended"] = now()
        if reason is not None:
            update["reason"] = reason
        with self.db.conn:
            self.db["runs"].update(run_id, update)

    @_locked
    def claim(self, run_id: str) -> bool:
        """Move a queued run to running; False when someone else already did."""
        with self.db.conn:
            cursor = self.db.execute("update runs set status = 'running', started = ?, reason = null "
                                     "where id = ? and status = 'queued'", [now(), run_id])
        return cursor.rowcount == 1

    @_locked
    def queue_resume(self, run_id: str):
        with self.db.conn:
            self.db["runs"].update(run_id, {"status": "queued", "resume": 1, "reason": None, "ended": None})

    @_locked
    def update(self, run_id: str, **fields):
        encoded = {k: json.dumps(v) if isinstance(v, (dict, list)) else v for k, v in fields.items()}
        with self.db.conn:
            self.db["runs"].update(run_id, encoded)

    @_locked
    def add_metrics(self, run_id: str, step: int, data: dict):
        with self.db.conn:
            self.db["metrics"].insert({"run_id": run_id, "step": step, "data": json.dumps(data),
                                       "time": datetime.now(timezone.utc).timestamp()})

    @_locked
    def metrics(self, run_id: str) -> list[dict]:
        rows = self.db.query("select step, data from metrics where run_id = ? order by rowid", [run_id])
        return [{"step": r["step"], **json.loads(r["data"])} for r in rows]

    @_locked
    def delete(self, run_id: str):
        self.get(run_id)
        with self.db.conn:
            self.db.execute("delete from metrics where run_id = ?", [run_id])
            self.db["runs"].delete(run_id)
        shutil.rmtree(workspace.run_dir(run_id), ignore_errors=True)


def _decode(row: dict) -> dict:
    row = dict(row)
    for key in ("config", "probe", "final_metrics"):
        if row.get(key):
            row[key] = json.loads(row[key])
    return row
