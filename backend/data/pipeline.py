"""inspect_file: read, detect, validate, measure and split one data file. inspect_rows: the same for rows made in
the app (labels), through their kind's converter. load_examples: file or stored dataset."""
from __future__ import annotations

from pathlib import Path

from backend.config import default
from backend.errors import DataError

from . import stats as stats_mod
from .detect import LOW_CONFIDENCE, Detection, detect
from .read import read_file
from .report import DataReport, KIND_NAMES
from .result import ReadResult
from .validate import validate

# Rows in TRL's conversational formats (what the label store makes), by kind: (format, converter, mapping).
TRL_FORMATS = {
    "sft": ("messages", "sft_messages", {"messages": "messages"}),
    "dpo": ("prompt_chosen_rejected", "dpo_prompt_chosen_rejected",
            {"prompt": "prompt", "chosen": "chosen", "rejected": "rejected"}),
    "kto": ("prompt_completion_label", "kto_prompt_completion",
            {"prompt": "prompt", "completion": "completion", "label": "label"}),
}


def inspect_file(path, mapping: dict | None = None, kind: str | None = None, tokenizer=None,
                 max_length: int | None = None, max_bytes: int | None = None, seed: int = 0,
                 validation_fraction: float = stats_mod.SHARE, read: ReadResult | None = None) -> DataReport:
    """Everything Tuneloop finds in a data file. Raises DataError only when no usable example remains.
    `read`: the file as read_file already read it (the sandbox reads first, to keep the columns of a file it
    cannot use)."""
    _check_options(max_length, validation_fraction)
    path = Path(path)
    read = read if read is not None else read_file(path, max_bytes=max_bytes)
    if not read.records:
        raise DataError(_nothing_readable(path.name, read))
    detection = detect([r for _, r in read.records[:200]], read.columns, mapping=mapping, kind=kind, name=path.name)
    return _report(read, detection, str(path), tokenizer, max_length, seed, validation_fraction)


def inspect_rows(kind: str, rows: list[dict], source: str, tokenizer=None, max_length: int | None = None,
                 seed: int = 0, validation_fraction: float = stats_mod.SHARE) -> DataReport:
    """A report for rows in TRL's format for `kind` (labels), checked row by row by that kind's converter:
    the same report a file gives, with no file written and nothing detected."""
    _check_options(max_length, validation_fraction)
    fmt, converter, mapping = TRL_FORMATS[kind]
    read = ReadResult(path=Path(source), file_format="labels", records=list(enumerate(rows, 1)),
                      columns=list(mapping.values()))
    if not read.records:
        raise DataError(f"No rows to store from {source}.")
    return _report(read, Detection(kind, fmt, converter, dict(mapping), 1.0), source, tokenizer, max_length, seed,
                   validation_fraction)


def _check_options(max_length, validation_fraction):
    if max_length is not None and (not isinstance(max_length, int) or max_length < 1):
        raise DataError(f"The max length must be a whole number of tokens above 0, not {max_length!r}.")
    if not 0 <= validation_fraction < 1:
        raise DataError(f"The validation fraction must be between 0 and 1, not {validation_fraction!r}.")


def _report(read: ReadResult, detection: Detection, source: str, tokenizer, max_length: int | None, seed: int,
            validation_fraction: float) -> DataReport:
    max_length = max_length or default("max_length")
    name = Path(source).name
    checked = validate(read, detection)
    report = DataReport(
        source=source, file_format=read.file_format, kind=detection.kind, format=detection.format,
        mapping=detection.mapping, confidence=detection.confidence, rows=read.total_rows,
        valid_rows=len(checked.examples), invalid_rows=checked.invalid_rows, errors=checked.errors,
        notices=read.notices + detection.notices, examples=checked.examples, example_rows=checked.example_rows,
        columns=read.columns, encoding=read.encoding,
    )
    if not checked.examples:
        raise DataError(_nothing_valid(name, report, checked.problems))
    if detection.confidence < LOW_CONFIDENCE:
        report.warnings.append(
            f"Not sure this is {detection.kind} data in the '{detection.format}' format (sure at {detection.confidence:.0%}). "
            "Check the columns used, or say which is which with --map FIELD=COLUMN.")
    if checked.placeholder_examples:
        names = ", ".join(checked.placeholders)
        report.notices.append(
            f"{checked.placeholder_examples:,} examples hold placeholders such as {names}. They are trained as written; "
            "replace them in the file first if they should be filled in.")
    report.lengths, counted_with = stats_mod.token_lengths(report.kind, report.examples, tokenizer)
    report.split = stats_mod.make_split(len(report.examples), seed, validation_fraction)
    report.stats, warnings = stats_mod.compute(
        report.kind, report.examples, report.example_rows, report.lengths, counted_with, max_length, report.split, seed,
        validation_fraction)
    report.stats["duplicates"] = checked.duplicates
    report.stats["problems"] = checked.problems
    report.warnings += warnings
    return report


def _nothing_readable(name: str, read) -> str:
    first = read.errors[0]
    return (f"No usable example in {name}: none of its {read.total_rows:,} rows could be read "
            f"(row {first.row}: {first.message}). Save it as one JSON object per line, or as a list of objects.")


def _nothing_valid(name: str, report: DataReport, problems: dict[str, int]) -> str:
    first = report.errors[0]
    counts = ", ".join(f"{what}: {n:,}" for what, n in sorted(problems.items(), key=lambda kv: -kv[1])[:3])
    return (f"No usable example in {name} ({KIND_NAMES[report.kind].split(' (')[0]}, format '{report.format}'): "
            f"{'all ' + format(report.rows, ',') + ' rows have problems' if report.rows > 1 else 'its one row has a problem'} "
            f"({counts}); row {first.row}: {first.message}. "
            "Fix those rows, or, if the wrong columns were picked, say which is which with --map FIELD=COLUMN.")


def data_reference(text, db=None) -> tuple[str, str, str]:
    """What `train --data TEXT` and `inspect TEXT` name, by one rule: ("dataset", name, note) for a saved dataset,
    ("file", absolute path, note) for a file. A saved dataset's name wins over a file of that name (the note says
    so, and that `./name` means the file); text that cannot be a dataset's name (a dot, a slash: `examples.jsonl`,
    `./faq`) is a file. A dataset kept from before names could hold a dot is found when no such file is here."""
    from .store import DatasetStore, is_name
    text = str(text)
    path = Path(text).expanduser()
    store = None

    def saved(name: str) -> bool:
        nonlocal store, db
        if store is None:
            if db is None:
                from backend import db as db_mod
                db = db_mod.connect()
            store = DatasetStore(db)
        return store.exists(name)

    if is_name(text) and saved(text):
        note = (f"Using the saved dataset '{text}'. A file of that name is here too: write ./{text} to use the file "
                "instead.") if path.is_file() else ""
        return "dataset", text, note
    if path.is_file():
        return "file", str(path.resolve()), ""
    if path.exists():
        raise DataError(f"'{text}' is a folder; give a data file (JSONL, JSON, CSV, TSV, Parquet or Excel).")
    if text.strip() and saved(text):
        return "dataset", text, (f"Using the saved dataset '{text}'. Dataset names hold no dots now: rename it with "
                                 f"python app.py data rename \"{text}\" NEW_NAME.")
    raise DataError(f"No dataset called '{text}' and no file at that path. See: python app.py data list")


def inspect_dataset(name: str, db=None, kind: str | None = None, tokenizer=None,
                    max_length: int | None = None) -> DataReport:
    """The report of a saved dataset, as `inspect` shows a file's: its stored rows checked and measured again, with
    the split it was stored with."""
    from .store import DatasetStore
    if db is None:
        from backend import db as db_mod
        db = db_mod.connect()
    store = DatasetStore(db)
    info = store.get(name)
    if kind is not None and info["kind"] != kind:
        raise DataError(f"Dataset '{name}' holds {info['kind']} examples, not {kind} examples.")
    split = info["stats"].get("split", {})
    report = inspect_rows(info["kind"], store.rows(name), f"dataset '{name}'", tokenizer=tokenizer,
                          max_length=max_length, seed=split.get("seed", 0),
                          validation_fraction=split.get("fraction", stats_mod.SHARE))
    report.file_format = "saved dataset"
    return report


def load_examples(path_or_name, db=None, mapping: dict | None = None, kind: str | None = None, tokenizer=None,
                  max_length: int | None = None, seed: int | None = None, validation_fraction: float | None = None):
    """(kind, train rows, validation rows) from a saved dataset's name or a data file (see data_reference).

    A saved dataset keeps the split it was stored with (the one the Data tab showed) unless another share
    (validation_fraction) or another seed is asked for; then it is split again, with the stored seed by default.
    """
    from .store import DatasetStore
    what, ref, _ = data_reference(path_or_name, db)
    if what == "file":
        report = inspect_file(ref, mapping=mapping, kind=kind, tokenizer=tokenizer, max_length=max_length,
                              seed=0 if seed is None else seed,
                              validation_fraction=stats_mod.SHARE if validation_fraction is None
                              else validation_fraction)
        return report.kind, report.train_examples(), report.validation_examples()
    if db is None:
        from backend import db as db_mod
        db = db_mod.connect()
    store = DatasetStore(db)
    info = store.get(ref)
    if kind is not None and info["kind"] != kind:
        raise DataError(f"Dataset '{ref}' holds {info['kind']} examples, but {kind} examples are needed here. "
                        f"Pick a {kind} dataset (see: python app.py data list).")
    stored = info["stats"].get("split", {})
    same_share = validation_fraction is None or validation_fraction == stored.get("fraction", stats_mod.SHARE)
    if seed is None and same_share:
        return info["kind"], store.rows(ref, "train"), store.rows(ref, "validation")
    if not 0 <= (validation_fraction or 0) < 1:
        raise DataError(f"The validation fraction must be between 0 and 1, not {validation_fraction!r}.")
    rows = store.rows(ref)
    share = stored.get("fraction", stats_mod.SHARE) if validation_fraction is None else validation_fraction
    split = stats_mod.make_split(len(rows), stored.get("seed", 0) if seed is None else seed, share)
    return info["kind"], [rows[i] for i in split["train"]], [rows[i] for i in split["validation"]]
