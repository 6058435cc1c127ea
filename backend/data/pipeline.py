"""inspect_file: read, detect, validate, measure and split one data file. load_examples: file or stored dataset."""
from __future__ import annotations

from pathlib import Path

from backend.errors import DataError

from . import stats as stats_mod
from .detect import LOW_CONFIDENCE, detect
from .read import read_file
from .report import DataReport, KIND_NAMES
from .validate import validate


def inspect_file(path, mapping: dict | None = None, kind: str | None = None, tokenizer=None, max_length: int = 1024,
                 max_bytes: int | None = None, seed: int = 0, validation_fraction: float = 0.1) -> DataReport:
    """Everything Tuneloop finds in a data file. Raises DataError only when no usable example remains."""
    if not isinstance(max_length, int) or max_length < 1:
        raise DataError(f"The max length must be a whole number of tokens above 0, not {max_length!r}.")
    if not 0 <= validation_fraction < 1:
        raise DataError(f"The validation fraction must be between 0 and 1, not {validation_fraction!r}.")
    path = Path(path)
    read = read_file(path, max_bytes=max_bytes)
    if not read.records:
        raise DataError(_nothing_readable(path.name, read))
    detection = detect([r for _, r in read.records[:200]], read.columns, mapping=mapping, kind=kind, name=path.name)
    checked = validate(read, detection)
    report = DataReport(
        source=str(path), file_format=read.file_format, kind=detection.kind, format=detection.format,
        mapping=detection.mapping, confidence=detection.confidence, rows=read.total_rows,
        valid_rows=len(checked.examples), invalid_rows=checked.invalid_rows, errors=checked.errors,
        notices=read.notices + detection.notices, examples=checked.examples, example_rows=checked.example_rows,
        columns=read.columns, encoding=read.encoding,
    )
    if not checked.examples:
        raise DataError(_nothing_valid(path.name, report, checked.problems))
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
            "Fix those rows, or pass --map FIELD=COLUMN if the wrong columns were picked.")


def load_examples(path_or_name, db=None, mapping: dict | None = None, kind: str | None = None, tokenizer=None,
                  max_length: int = 1024, seed: int | None = None, validation_fraction: float | None = None):
    """(kind, train rows, validation rows) from a data file or a stored dataset's name (a file path wins).

    A stored dataset keeps the split it was stored with unless seed or validation_fraction ask for another one.
    """
    from .store import DatasetStore
    candidate = Path(str(path_or_name)).expanduser()
    if candidate.is_file():
        report = inspect_file(candidate, mapping=mapping, kind=kind, tokenizer=tokenizer, max_length=max_length,
                              seed=0 if seed is None else seed,
                              validation_fraction=0.1 if validation_fraction is None else validation_fraction)
        return report.kind, report.train_examples(), report.validation_examples()
    if db is None:
        from backend import db as db_mod
        db = db_mod.connect()
    store = DatasetStore(db)
    name = str(path_or_name)
    if not store.exists(name):
        raise DataError(f"No dataset called '{name}' and no file at that path. See: python app.py data list")
    info = store.get(name)
    if kind is not None and info["kind"] != kind:
        raise DataError(f"Dataset '{name}' holds {info['kind']} examples, but {kind} examples are needed here. "
                        f"Pick a {kind} dataset (see: python app.py data list).")
    stored = info["stats"].get("split", {})
    if seed is None and validation_fraction is None:
        return info["kind"], store.rows(name, "train"), store.rows(name, "validation")
    if not 0 <= (validation_fraction or 0) < 1:
        raise DataError(f"The validation fraction must be between 0 and 1, not {validation_fraction!r}.")
    rows = store.rows(name)
    split = stats_mod.make_split(len(rows), stored.get("seed", 0) if seed is None else seed,
                                 stored.get("fraction", 0.1) if validation_fraction is None else validation_fraction)
    return info["kind"], [rows[i] for i in split["train"]], [rows[i] for i in split["validation"]]
