"""A label given while another program holds the database's write lock: a short hold is waited out and the label is
stored; a hold longer than the wait is refused in words, nothing half-stored, and the same label stored on retry."""
import sqlite3
import threading
import time

import pytest

from backend import workspace
from backend.db import connect
from backend.errors import StorageError
from backend.labels import LabelStore
from tests.test_labels import ask, said


def _hold_lock(seconds: float | None):
    other = sqlite3.connect(workspace.db_path(), timeout=0, isolation_level=None, check_same_thread=False)
    other.execute("BEGIN EXCLUSIVE")
    if seconds is not None:
        threading.Timer(seconds, lambda: (other.execute("ROLLBACK"), other.close())).start()
    return other


def test_a_short_lock_is_waited_out_and_the_label_is_stored():
    store = LabelStore(connect())  # waits up to 30 s for the lock
    _hold_lock(1.0)
    label_id = store.add_thumb(ask("Is it locked?"), said("No."), "up", session="s1")
    rows = LabelStore(connect()).db.rows("select id, value from labels")
    assert rows == [{"id": label_id, "value": "up"}]


def test_a_long_lock_is_refused_in_words_and_the_label_is_stored_on_retry():
    db = connect()
    db.execute("PRAGMA busy_timeout=200")  # stands for the 30 s wait running out
    store = LabelStore(db)
    other = _hold_lock(None)
    with pytest.raises(StorageError, match="database is busy.*not saved. Try again"):
        store.add_thumb(ask("Is it locked?"), said("Yes."), "down", session="s1")
    other.execute("ROLLBACK")
    other.close()
    assert db.rows("select * from labels") == []  # nothing half-stored
    assert not db.conn.in_transaction
    store.add_thumb(ask("Is it locked?"), said("Yes."), "down", session="s1")  # the same click again
    assert [r["value"] for r in LabelStore(connect()).db.rows("select value from labels")] == ["down"]
