"""From labels to a run in one step: thumbs become a KTO dataset, A/B choices a DPO dataset, edits an SFT
dataset, stored like any other dataset; the run trains on top of the run whose answers were judged."""
from __future__ import annotations

from collections import Counter
from datetime import datetime

from backend import workspace
from backend.errors import DataError, RunNotFound

from .export import rows_for, write_jsonl
from .store import LabelStore

KIND_OF_LABEL = {"kto": "thumb", "dpo": "ab", "sft": "edit"}
WHAT = {"kto": "thumbs (👍/👎)", "dpo": "A/B choices (left or right better)", "sft": "edited answers"}


def labels_to_dataset(db, kind: str, name: str | None = None) -> str:
    """Store the standing labels of `kind` (kto, dpo, sft) as a dataset; returns its name."""
    from backend.data import DatasetStore, inspect_file
    from backend.data.commands import load_tokenizer

    rows = rows_for(db, kind)
    if not rows:
        raise DataError(f"There are no {WHAT[kind]} to train on yet. Label some answers first.")
    if kind == "kto" and len({r["label"] for r in rows}) < 2:
        missing = "bad (👎)" if rows[0]["label"] else "good (👍)"
        raise DataError(f"KTO needs answers marked good and answers marked bad; none is marked {missing} yet.")
    store = DatasetStore(db)
    name = name or _free_name(store, f"labels-{kind}-{datetime.now():%Y%m%d-%H%M%S}")
    path = write_jsonl(rows, workspace.home() / "labels" / f"{name}.jsonl")
    report = inspect_file(path, kind=kind, tokenizer=load_tokenizer())
    return store.add(report, name=name, source=path)


def train_on_labels(db, runner, kind: str, preset: str = "quick", base_run: str | None = None,
                    name: str | None = None, overrides: dict | None = None) -> tuple[str, str]:
    """Make the dataset and queue the run. Returns (run id, dataset name).

    `base_run` defaults to the finished run whose answers were judged most often; with none (the answers
    came from the base model) the run starts from the base model."""
    from backend.config import build_config
    from backend.presets import preset_values
    from backend.runs import RunStore

    runs = RunStore(db)
    base_run = base_run or judged_run(db, kind)
    model = runs.get(base_run)["config"]["model"] if base_run else judged_model(db, kind)
    dataset = labels_to_dataset(db, kind)
    values = preset_values(preset, kind)
    values.update(method=kind, dataset=dataset, model=model, base_run=base_run or "",
                  name=name or f"{kind.upper()} on labels ({dataset.removeprefix('labels-' + kind + '-')})")
    values.update(overrides or {})
    return runner.submit(build_config(values)), dataset


def judged_run(db, kind: str) -> str | None:
    """The finished run (with an adapter) whose answers appear most often in the standing labels of `kind`."""
    from backend.runs import RunStore
    counts = Counter()
    for label in LabelStore(db).list(KIND_OF_LABEL[kind]):
        counts.update(r for r in (label["run_id"], label.get("run_id_b")) if r)
    for run_id, _ in counts.most_common():
        try:
            run = RunStore(db).get(run_id)
        except RunNotFound:  # deleted since
            continue
        if run["status"] in ("done", "stopped") and (workspace.run_dir(run_id) / "adapter").exists():
            return run_id
    return None


def judged_model(db, kind: str) -> str:
    counts = Counter()
    for label in LabelStore(db).list(KIND_OF_LABEL[kind]):
        counts.update(m for m in (label["model"], label.get("model_b")) if m)
    return counts.most_common(1)[0][0] if counts else "smollm2"


def _free_name(store, name: str) -> str:
    candidate, n = name, 2
    while store.exists(candidate):
        candidate, n = f"{name}-{n}", n + 1
    return candidate
