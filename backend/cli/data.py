"""Commands about data: `inspect FILE` and `data add|list|rm|rename`."""
from __future__ import annotations

import argparse
import sys

from backend.cli.options import add_json, print_json
from backend.config import METHODS, default
from backend.data import DatasetStore, sandbox
from backend.data.detect import FIELD_ALIASES
from backend.errors import DataError
from backend.words import plural


def _db():
    from backend import db
    return db.connect()


def parse_mapping(items: list[str] | None) -> dict[str, str] | None:
    if not items:
        return None
    mapping = {}
    for item in items:
        field, sep, column = item.partition("=")
        if not sep or not field.strip() or not column.strip():
            raise DataError(f"--map '{item}' should look like FIELD=COLUMN, e.g. --map completion=Answer.")
        mapping[field.strip()] = column.strip()
    return mapping


def _add_detection_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--map", action="append", metavar="FIELD=COLUMN", default=None,
                        help="Say which column holds which field when detection picks wrong, e.g. --map prompt=Question "
                             f"--map completion=Answer (repeatable; fields: {', '.join(FIELD_ALIASES)}).")
    parser.add_argument("--kind", choices=METHODS, default=None,
                        help="The kind of data expected: sft (example conversations), dpo (chosen/rejected pairs), "
                             "kto (answers labelled good/bad); default: detected.")
    parser.add_argument("--max-length", type=int, default=default("max_length"), metavar="N",
                        help="The max length in tokens used in training; longer examples are reported "
                             f"(default {default('max_length')}).")


def _options(args) -> dict:
    return dict(mapping=parse_mapping(args.map), kind=args.kind, max_length=args.max_length)


def cmd_inspect(args) -> int:
    """A saved dataset's name or a file, read as `train --data` reads it (data_reference). A file is read in a child
    process under the caps of backend/limits.py (backend/data/sandbox.py)."""
    from backend.data import data_reference, inspect_dataset
    what, ref, note = data_reference(args.file)
    if note:
        print(note, file=sys.stderr)
    if what == "dataset":
        if args.map:
            raise DataError(f"'{ref}' is a saved dataset, whose columns were mapped when it was added; --map is for "
                            f"a file: write ./{ref} to inspect the file of that name.")
        from backend.models.loading import load_tokenizer
        report = inspect_dataset(ref, kind=args.kind, tokenizer=load_tokenizer(), max_length=args.max_length)
    else:
        report = sandbox.inspect(ref, **_options(args)).raise_error().report
    if args.json:
        print_json(report.to_json())
    else:
        print(report.summary())
    return 0


def cmd_add(args) -> int:
    added = sandbox.add(args.file, name=args.name, source=args.file, **_options(args)).raise_error()
    report, name = added.report, added.stored
    print(report.summary())
    split = report.stats["split"]
    print(f"Stored as dataset '{name}': {split['train']:,} training and {split['validation']:,} validation examples.")
    return 0


def cmd_list(args) -> int:
    datasets = DatasetStore(_db()).list()
    if args.json:
        print_json(datasets)
        return 0
    if not datasets:
        print("No datasets yet. Add one with: python app.py data add FILE")
        return 0
    width = max(len(d["name"]) for d in datasets)
    for d in datasets:
        print(f"{d['name']:<{width}}  {d['kind']:<3}  {plural(d['valid_rows'], 'example'):>16} "
              f"({d['train_rows']:,} train, {d['validation_rows']:,} validation)  {d['format']}  added {d['created']}")
    return 0


def cmd_rm(args) -> int:
    DatasetStore(_db()).delete(args.name)
    print(f"Removed dataset '{args.name}'.")
    return 0


def cmd_rename(args) -> int:
    new = DatasetStore(_db()).rename(args.old, args.new)
    print(f"Renamed dataset '{args.old}' to '{new}'.")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("inspect", help="Check a data file: what it holds, what is wrong, how long the examples are.",
                              description="Read a data file (JSONL, JSON, CSV, TSV, Parquet, XLSX), detect its kind and "
                                          "format, list bad rows with their numbers and show stats. Nothing is stored. "
                                          "A saved dataset's name shows that dataset, as train --data would use it.")
    p.add_argument("file", help="The data file to check, or a saved dataset's name (./NAME for a file of that name).")
    add_json(p, "Print the report as one JSON object instead of text.")
    _add_detection_options(p)
    p.set_defaults(func=cmd_inspect)

    data = subparsers.add_parser("data", help="Stored datasets: add, list, rename, remove.",
                                 description="Datasets are checked once and stored; training runs refer to them by name.")
    sub = data.add_subparsers(dest="data_command", metavar="COMMAND", required=True)

    p = sub.add_parser("add", help="Check a data file and store its good rows as a dataset.")
    p.add_argument("file", help="The data file to add.")
    p.add_argument("--name", default=None, help="The dataset's name: letters, digits, spaces, - or _ (default: the "
                                                "file name without extension, other characters made '-').")
    _add_detection_options(p)
    p.set_defaults(func=cmd_add)

    p = sub.add_parser("list", help="List the stored datasets.")
    add_json(p, "Print the list as one JSON array.")
    p.set_defaults(func=cmd_list)

    p = sub.add_parser("rm", help="Remove a stored dataset.")
    p.add_argument("name", help="The dataset to remove.")
    p.set_defaults(func=cmd_rm)

    p = sub.add_parser("rename", help="Rename a stored dataset.")
    p.add_argument("old", help="The dataset's current name.")
    p.add_argument("new", help="The new name.")
    p.set_defaults(func=cmd_rename)
