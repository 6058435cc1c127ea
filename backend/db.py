"""The SQLite database (sqlite-utils): one connection, one lock, atomic() for writes that span tables, and a small
registry of schema migrations. The run, dataset and label stores all go through a Database."""
import contextlib
import sqlite3
import threading
from pathlib import Path

import sqlite_utils

from backend import workspace
from backend.errors import StorageError

MIGRATIONS = []


class Database(sqlite_utils.Database):
    """A connection that several threads may share (the runner and the web server's): every read and write takes
    `lock`, and atomic() makes a group of writes one transaction (nested blocks become savepoints)."""

    def __init__(self, conn: sqlite3.Connection):
        super().__init__(conn)
        self.lock = threading.RLock()

    @contextlib.contextmanager
    def atomic(self):
        with self.lock:
            if self.conn.in_transaction:
                with super().atomic():
                    yield self
                return
            # IMMEDIATE: take the write lock now, so another process cannot slip in between a read and a write.
            with in_words():
                self.conn.execute("BEGIN IMMEDIATE")
            try:
                with in_words():
                    yield self
            except BaseException:
                self.rollback()
                raise
            else:
                try:
                    with in_words():
                        self.conn.execute("COMMIT")
                except BaseException:
                    self.rollback()
                    raise

    def rows(self, sql: str, params=()) -> list[dict]:
        """All rows of a query, as dicts, read under the lock."""
        with self.lock:
            return list(self.query(sql, params))

    def value(self, sql: str, params=()):
        """The first column of the first row of a query (None when there is no row)."""
        with self.lock:
            row = self.execute(sql, params).fetchone()
        return row[0] if row else None


@contextlib.contextmanager
def in_words():
    """A locked or full database raised as a StorageError in words; any other error as it was."""
    try:
        yield
    except sqlite3.OperationalError as exc:
        text = str(exc).lower()
        if "locked" in text or "busy" in text:
            raise StorageError("The workspace's database is busy: another program has held it for too long, so "
                               "this was not saved. Try again in a moment.") from exc
        if "disk is full" in text or "disk i/o error" in text:
            raise StorageError("The disk that holds the workspace is full (or failing), so this was not saved. "
                               "Free some space, then try again.") from exc
        raise


def migration(fn):
    MIGRATIONS.append(fn)
    return fn


@migration
def create_runs(db: sqlite_utils.Database):
    db["runs"].create(
        {
            "id": str, "name": str, "method": str, "status": str, "config": str,
            "base_run": str, "dataset": str, "reason": str, "probe": str, "final_metrics": str,
            "created": str, "started": str, "ended": str, "total_steps": int, "resume": int,
        },
        pk="id",
    )
    db["metrics"].create(
        {"run_id": str, "step": int, "data": str, "time": float},
        foreign_keys=[("run_id", "runs", "id")],
    )
    db["metrics"].create_index(["run_id", "step"])


def connect(path: Path | str | None = None) -> Database:
    """Open (and migrate) the database. WAL with full sync: a committed label or metric survives a crash."""
    path = path or workspace.db_path()
    conn = sqlite3.connect(str(path), timeout=30, check_same_thread=False)
    db = Database(conn)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=FULL")
    db.execute("PRAGMA busy_timeout=30000")
    _migrate(db)
    return db


def _migrate(db: sqlite_utils.Database):
    db["_migrations"].create({"name": str, "applied": str}, pk="name", if_not_exists=True)
    done = {row["name"] for row in db["_migrations"].rows}
    for fn in MIGRATIONS:
        if fn.__name__ in done:
            continue
        with db.atomic():
            if db.value("select 1 from _migrations where name = ?", [fn.__name__]):
                continue  # another process migrated it meanwhile
            fn(db)
            db["_migrations"].insert({"name": fn.__name__, "applied": _now()}, replace=True)


def _now() -> str:
    from datetime import datetime, timezone
    return datetime.now(timezone.utc).isoformat(timespec="seconds")


@migration
def create_datasets(db: sqlite_utils.Database):
    db["datasets"].create(
        {
            "id": int, "name": str, "kind": str, "format": str, "source": str, "mapping": str,
            "rows": int, "valid_rows": int, "invalid_rows": int, "stats": str, "created": str,
        },
        pk="id",
    )
    db["datasets"].create_index(["name"], unique=True)
    db["dataset_rows"].create(
        {"dataset_id": int, "idx": int, "split": str, "data": str},
        foreign_keys=[("dataset_id", "datasets", "id")],
    )
    db["dataset_rows"].create_index(["dataset_id", "idx"])


@migration
def add_run_pid(db: sqlite_utils.Database):
    db["runs"].add_column("pid", int)


@migration
def create_labels(db: sqlite_utils.Database):
    """Judgements given in the chat and label tabs. Side 'b' is the right-hand answer of an A/B choice.
    `settings` hold how each answer was made (temperature, max_new_tokens, seed, system prompt)."""
    db["labels"].create(
        {
            "id": int, "kind": str, "value": str, "prompt": str,
            "answer": str, "model": str, "run_id": str, "settings": str,
            "answer_b": str, "model_b": str, "run_id_b": str, "settings_b": str,
            "corrected": str, "session": str, "origin": str, "target": str,
            "created": str, "undone": int, "undone_at": str,
        },
        pk="id", not_null={"kind", "value", "prompt", "answer", "created", "undone"}, defaults={"undone": 0},
    )
    db["labels"].create_index(["kind", "undone"])
    db["labels"].create_index(["session", "id"])
    db["labels"].create_index(["target"])


@migration
def add_label_prompt_b(db: sqlite_utils.Database):
    """The right-hand side's conversation, where it differs from the left's (later turns of a side-by-side chat)."""
    db["labels"].add_column("prompt_b", str)


@migration
def add_label_replaced_by(db: sqlite_utils.Database):
    """The label that replaced this one (a new judgement of the same answer); undoing that one restores this."""
    db["labels"].add_column("replaced_by", int)


@migration
def add_run_pid_start(db: sqlite_utils.Database):
    """When the worker process started (seconds since boot, from /proc): a pid reused by another process after the
    worker died no longer passes for the worker (backend/jobs/processes.py)."""
    db["runs"].add_column("pid_start", float)


@migration
def add_dataset_upload(db: sqlite_utils.Database):
    """The web app's copy of the file a dataset was uploaded from, removed with the dataset."""
    db["datasets"].add_column("upload", str)


@migration
def add_run_evaluation(db: sqlite_utils.Database):
    """What a finished run was checked for: the held-back examples before and after (`heldout`), the diagnosis
    (`diagnosis`, a list of findings) and what it trained on and how it ended (`outcome`: example counts, early
    stopping). All JSON."""
    for column in ("heldout", "diagnosis", "outcome"):
        db["runs"].add_column(column, str)


@migration
def create_accounts(db: sqlite_utils.Database):
    """The labellers the owner adds (backend/accounts.py): the password only as its Argon2 hash. The owner's
    password is not stored: it comes from TUNELOOP_AUTH at each start."""
    db["accounts"].create({"name": str, "role": str, "password_hash": str, "created": str}, pk="name",
                          not_null={"role", "password_hash", "created"})


@migration
def add_label_labeller(db: sqlite_utils.Database):
    """Who gave each label: a labeller's account name, or 'owner'. Labels from before accounts have none: the
    owner's."""
    db["labels"].add_column("labeller", str)
    db["labels"].create_index(["labeller"])


@migration
def create_team_settings(db: sqlite_utils.Database):
    """The team's settings the owner chooses on the Team tab (backend/labels/overlap.py: how many labellers judge
    each item), one row per setting."""
    db["team_settings"].create({"name": str, "value": str}, pk="name")


@migration
def add_label_blind(db: sqlite_utils.Database):
    """Whether an A/B choice was made blind: 1 when the judge was not shown which model gave which answer (Chat's
    Blind A/B, the Label tab's Blind box), 0 when the names were shown, null when not recorded (every choice given
    before this column, one stored without saying, and thumbs and corrections). The win-rates count only 1: a judge who
    knows which model is which is no fair judge (backend/labels/winrate.py)."""
    db["labels"].add_column("blind", int)
