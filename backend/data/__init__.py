"""Datasets: any common file is read, detected, validated, explained and stored, ready to train.

    report = inspect_file("chats.csv", tokenizer=tok)   # DataReport: kind, format, rows, errors, stats, summary()
    name = DatasetStore(db).add(report)                 # stored once; runs refer to it by name
    kind, train, validation = load_examples(name, db)   # canonical rows (see normalize.py)
    report = inspect_rows("kto", rows, source="labels") # rows made in the app, checked the same way
    what, ref, note = data_reference("faq")             # a saved dataset's name or a file, one rule for every command
"""
from .pipeline import data_reference, inspect_dataset, inspect_file, inspect_rows, load_examples
from .report import DataReport, RowError
from .store import DatasetStore

__all__ = ["inspect_file", "inspect_rows", "inspect_dataset", "load_examples", "data_reference", "DataReport",
           "RowError", "DatasetStore"]
