"""Datasets stored once in the database (tables datasets, dataset_rows); runs refer to them by name."""
from __future__ import annotations

import json
import re
import sqlite3
from datetime import datetime, timezone
from pathlib import Path

from backend import workspace
from backend.errors import DataError

from .report import DataReport

MAX_NAME = 100
LIST_HINT = "See: python app.py data list"


NAME_RULE = "letters, digits, spaces, - or _"


def is_name(text: str) -> bool:
    """Whether `text` can be a dataset's name: letters, digits, spaces, - and _ only. A dot or a slash makes it a file
    (`train --data examples.jsonl` and `inspect ./faq` mean files), so a name never reads as a file name."""
    return bool(text.strip()) and all(c.isalnum() or c in " -_" for c in text)


def name_for(text: str) -> str:
    """A dataset name made from a file's name (or a refused name): each run of other characters becomes '-'."""
    name = re.sub(r"[^\w -]+", "-", str(text), flags=re.UNICODE).strip(" -")[:MAX_NAME]
    return name if is_name(name) else "my-data"


def _clean_name(name: str) -> str:
    name = str(name).strip()
    if not name:
        raise DataError("A dataset name cannot be empty. Pick a name (--name my-data).")
    if len(name) > MAX_NAME:
        raise DataError(f"The dataset name is {len(name)} characters long; keep it under {MAX_NAME}.")
    if not is_name(name):
        bad = dict.fromkeys("a control character" if ord(c) < 32 else f"'{c}'"
                            for c in name if not (c.isalnum() or c in " -_"))
        shown = ", ".join(bad)
        printable = "".join(c for c in name if ord(c) >= 32)
        raise DataError(f"The dataset name '{printable}' holds {shown}; use {NAME_RULE} (e.g. {name_for(name)}).")
    return name


class DatasetStore:
    def __init__(self, db):
        self.db = db

    def _row(self, name: str) -> dict | None:
        rows = self.db.rows("SELECT * FROM datasets WHERE name = ?", [name])
        return rows[0] if rows else None

    def _require(self, name: str) -> dict:
        row = self._row(str(name))
        if row is None:
            raise DataError(f"No dataset called '{name}'. {LIST_HINT}")
        return row

    def exists(self, name: str) -> bool:
        return self._row(str(name)) is not None

    def add(self, report: DataReport, name: str | None = None, source: str | Path | None = None,
            upload: str | Path | None = None) -> str:
        """Store a report's examples as a dataset. `upload`: the app's own copy of an uploaded file (inside the
        workspace's uploads folder), removed when the dataset is."""
        if report.preview_only:
            raise ValueError("a report trimmed to a preview cannot be stored: store it where it was inspected")
        source = str(source if source is not None else report.source)
        name = _clean_name(name if name is not None else name_for(Path(source).stem))
        if self.exists(name):
            raise DataError(f"A dataset called '{name}' already exists. Pick another name (--name NEW_NAME), "
                            f"or remove the old one: python app.py data rm \"{name}\"")
        split_of = {i: "validation" for i in report.split["validation"]}
        stats = dict(report.stats, warnings=report.warnings, notices=report.notices,
                     first_errors=[e.to_json() for e in report.errors[:50]])
        try:
            with self.db.atomic():
                cursor = self.db.execute(
                    "INSERT INTO datasets (name, kind, format, source, mapping, rows, valid_rows, invalid_rows, stats, created,"
                    " upload) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                    [name, report.kind, report.format, source, json.dumps(report.mapping), report.rows, report.valid_rows,
                     report.invalid_rows, json.dumps(stats, ensure_ascii=False),
                     datetime.now(timezone.utc).isoformat(timespec="seconds"), _upload_path(upload)])
                dataset_id = cursor.lastrowid
                self.db.conn.executemany(
                    "INSERT INTO dataset_rows (dataset_id, idx, split, data) VALUES (?, ?, ?, ?)",
                    ((dataset_id, i, split_of.get(i, "train"), json.dumps(ex, ensure_ascii=False))
                     for i, ex in enumerate(report.examples)))
        except sqlite3.IntegrityError:
            raise DataError(f"A dataset called '{name}' already exists. Pick another name (--name NEW_NAME).") from None
        return name

    def list(self) -> list[dict]:
        sql = """SELECT d.name, d.kind, d.format, d.source, d.rows, d.valid_rows, d.invalid_rows, d.created,
                   (SELECT COUNT(*) FROM dataset_rows r WHERE r.dataset_id = d.id AND r.split = 'train') AS train_rows,
                   (SELECT COUNT(*) FROM dataset_rows r WHERE r.dataset_id = d.id AND r.split = 'validation') AS validation_rows
                 FROM datasets d ORDER BY d.id"""
        return self.db.rows(sql)

    def get(self, name: str) -> dict:
        row = self._require(name)
        info = {k: v for k, v in row.items() if k != "id"}
        info["mapping"] = json.loads(row["mapping"] or "{}")
        info["stats"] = json.loads(row["stats"] or "{}")
        split = info["stats"].get("split", {})
        info["train_rows"] = split.get("train", row["valid_rows"])
        info["validation_rows"] = split.get("validation", 0)
        return info

    def rows(self, name: str, split: str | None = None) -> list[dict]:
        if split not in (None, "train", "validation"):
            raise DataError(f"Unknown split '{split}'. Use train or validation.")
        dataset_id = self._require(name)["id"]
        sql = "SELECT data FROM dataset_rows WHERE dataset_id = ?" + (" AND split = ?" if split else "") + " ORDER BY idx"
        params = [dataset_id, split] if split else [dataset_id]
        return [json.loads(row["data"]) for row in self.db.rows(sql, params)]

    def rename(self, old: str, new: str) -> str:
        row = self._require(old)
        new = _clean_name(new)
        if new == row["name"]:
            return new
        if self.exists(new):
            raise DataError(f"A dataset called '{new}' already exists. Pick another name, or remove that one first.")
        with self.db.atomic():
            self.db.execute("UPDATE datasets SET name = ? WHERE id = ?", [new, row["id"]])
        return new

    def delete(self, name: str) -> None:
        """Remove a dataset, and the app's copy of the file it was uploaded from."""
        row = self._require(name)
        with self.db.atomic():
            self.db.execute("DELETE FROM dataset_rows WHERE dataset_id = ?", [row["id"]])
            self.db.execute("DELETE FROM datasets WHERE id = ?", [row["id"]])
        remove_upload(row.get("upload"))


def _upload_path(upload) -> str | None:
    """An uploaded copy is remembered only when it lies in the workspace's uploads folder: removing a dataset never
    touches a file the user gave by its own path."""
    if not upload:
        return None
    path = Path(upload).resolve()
    return str(path) if path.is_relative_to(workspace.uploads_dir()) else None


def remove_upload(upload: str | None) -> None:
    """Delete an uploaded copy and the folder Gradio made for it, when empty (only inside the uploads folder)."""
    if not upload:
        return
    path = Path(upload)
    uploads = workspace.uploads_dir()
    if not path.resolve().is_relative_to(uploads):
        return
    path.unlink(missing_ok=True)
    folder = path.parent
    if folder != uploads and folder.resolve().is_relative_to(uploads):
        try:
            folder.rmdir()
        except OSError:  # other files still in it
            pass
