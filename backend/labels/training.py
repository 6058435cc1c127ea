"""From labels to a run in one step: thumbs become a KTO dataset, A/B choices a DPO dataset, edits an SFT
dataset, stored like any other dataset; the run trains on top of the run whose answers were judged.

The rows go straight from the label store through their kind's converter into the dataset store: no file is
written and read back. The run's config is built and checked first; then the dataset and the queued run are
stored in one transaction, so a bad setting or a missing model leaves nothing behind.
"""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from backend.config import MIN_BATCHES_PER_EPOCH
from backend.errors import DataError, RunNotFound, RunStateError
from backend.words import plural

from .export import label_stats
from .store import LabelStore
from .team_rules import RULE_WORDS, rule_rows

KIND_OF_LABEL = {"kto": "thumb", "dpo": "ab", "sft": "edit"}
WHAT = {"kto": "thumbs (👍/👎)", "dpo": "A/B choices (left or right better)", "sft": "edited answers"}
ROWS_COUNTED = {"kto": "kto_examples", "dpo": "dpo_pairs", "sft": "sft_examples"}  # label_stats' keys
UNIT = {"kto": "example", "dpo": "pair", "sft": "example"}
RULE_NAMES = {"majority": " (majority)", "all_agree": " (all agree)"}  # in a run's name; every label: nothing added


@dataclass(frozen=True)
class LabelReadiness:
    """How many rows the standing labels of `kind` make, against how many a run with `preset` learns from. `useful`
    is the fewest rows whose training share (after the held-back rows) makes MIN_BATCHES_PER_EPOCH updates per
    pass: the rule by which a finished run's diagnosis says "Too few examples for these settings"."""
    kind: str
    preset: str
    rows: int
    train_rows: int  # after the held-back share
    per_update: int  # batch_size x grad_accum
    useful: int

    @property
    def enough(self) -> bool:
        return self.rows >= self.useful

    def count(self, n: int | None = None) -> str:
        return plural(self.rows if n is None else n, UNIT[self.kind])

    def words(self) -> str:
        """One sentence for people: what there is, what is useful, what fewer would do."""
        name, preset = self.kind.upper(), f"the '{self.preset}' preset"
        if not self.rows:
            return f"{name}: no {UNIT[self.kind]}s yet; {preset} learns from at least {self.useful}."
        if self.enough:
            return f"{name}: {self.count()}, enough for {preset} (it learns from at least {self.useful})."
        updates = f"{self.train_rows / self.per_update:.1f}".removesuffix(".0")
        return (f"{name}: {self.count()}; {preset} learns from at least {self.useful} (with {self.rows}, each pass "
                f"over them makes {updates} update{'' if updates == '1' else 's'} of {self.count(self.per_update)}, "
                f"fewer than {MIN_BATCHES_PER_EPOCH}: too few to learn from).")


def readiness(db, kind: str, preset: str = "quick", overrides: dict | None = None,
              stats: dict | None = None, rule: str = "every", leave_out: str | None = None) -> LabelReadiness:
    """The standing labels of `kind` against the number a run with `preset` (and `overrides`) learns from. The rows
    are counted by label_stats (`stats`, when already at hand), as the Label tab and `labels stats` show them; with
    another `rule` or a labeller left out, as that choice makes them (backend/labels/team_rules.py)."""
    from backend.data.stats import make_split
    from backend.presets import config_from_preset
    config = config_from_preset(preset, kind, {"dataset": "labels", **(overrides or {})})
    per_update = config.batch_size * config.grad_accum

    def train_share(n: int) -> int:
        return len(make_split(n, 0, config.validation_split)["train"])

    useful = MIN_BATCHES_PER_EPOCH * per_update
    while train_share(useful) < MIN_BATCHES_PER_EPOCH * per_update:
        useful += 1
    if rule != "every" or leave_out:
        rows = len(rule_rows(db, kind, rule, leave_out))
    else:
        rows = (stats or label_stats(db))[ROWS_COUNTED[kind]]
    return LabelReadiness(kind, preset, rows, train_share(rows), per_update, useful)


def labels_report(db, kind: str, model: str | None = None, max_length: int | None = None,
                  validation_fraction: float = 0.1, rule: str = "every", leave_out: str | None = None):
    """The standing labels of `kind` (kto, dpo, sft) as a checked DataReport, ready to store. Its source says which
    labels: `rule` (team_rules.RULES) and the labeller left out."""
    from backend.data import inspect_rows
    from backend.models.loading import load_tokenizer

    rows = trainable_rows(db, kind, rule, leave_out)
    return inspect_rows(kind, rows, source=f"labels: {WHAT[kind]}, {labels_used(kind, rule, leave_out)}",
                        tokenizer=load_tokenizer(model), max_length=max_length,
                        validation_fraction=validation_fraction)


def labels_used(kind: str, rule: str = "every", leave_out: str | None = None) -> str:
    """Which labels a run learns from, in words: what its dataset's source records."""
    words = RULE_WORDS["every" if kind == "sft" else rule]
    return words + (f", without {leave_out}'s" if leave_out else "")


def trainable_rows(db, kind: str, rule: str = "every", leave_out: str | None = None) -> list[dict]:
    """The rows the standing labels of `kind` make (under `rule`, without `leave_out`'s); DataError when no run could
    train on them."""
    rows = rule_rows(db, kind, rule, leave_out)
    if not rows:
        raise DataError(f"There are no {WHAT[kind]} to train on yet. Label some answers first.")
    if kind == "kto" and len({r["label"] for r in rows}) < 2:
        missing = "bad (👎)" if rows[0]["label"] else "good (👍)"
        raise DataError(f"KTO needs answers marked good and answers marked bad; none is marked {missing} yet.")
    return rows


def labels_to_dataset(db, kind: str, name: str | None = None) -> str:
    """Store the standing labels of `kind` as a dataset; returns its name."""
    from backend.data import DatasetStore
    report = labels_report(db, kind)
    store = DatasetStore(db)
    return store.add(report, name=name or free_name(store, kind), source=report.source)


def train_on_labels(db, runner, kind: str, preset: str = "quick", base_run: str | None = None,
                    name: str | None = None, overrides: dict | None = None, rule: str = "every",
                    leave_out: str | None = None) -> tuple[str, str]:
    """Store the labels as a dataset and queue a run on it. Returns (run id, dataset name).

    `base_run` defaults to the finished run whose answers were judged most often; with none (the answers
    came from the base model) the run starts from the base model. `rule` and `leave_out` choose the labels of a
    team (team_rules.py): the dataset's source and the run's name say which."""
    from backend.data import DatasetStore
    from backend.presets import config_from_preset
    from backend.runs import RunStore

    runs, datasets = RunStore(db), DatasetStore(db)
    base_run = base_run or judged_run(db, kind)
    model = runs.get(base_run)["config"]["model"] if base_run else judged_model(db, kind)
    dataset = free_name(datasets, kind)
    changes = {"dataset": dataset, "model": model, "base_run": base_run or "",
               "name": name or f"{kind.upper()} on labels{RULE_NAMES.get(rule, '')}"
                       f"{f' without {leave_out}' if leave_out else ''} "
                       f"({dataset.removeprefix('labels-' + kind + '-')})"}
    changes.update(overrides or {})
    config = config_from_preset(preset, kind, changes)  # a bad setting stops here, before anything is stored
    runner.check(config)
    report = labels_report(db, kind, config.model, config.max_length, config.validation_split, rule, leave_out)
    with db.atomic():
        datasets.add(report, name=dataset, source=report.source)
        run_id = runs.create(config)
    runner.wake()
    return run_id, dataset


def judged_run(db, kind: str) -> str | None:
    """The finished run (with an adapter) whose answers appear most often in the standing labels of `kind`."""
    from backend.runs import RunStore
    runs = RunStore(db)
    counts = Counter()
    for label in LabelStore(db).list(KIND_OF_LABEL[kind]):
        counts.update(r for r in (label["run_id"], label.get("run_id_b")) if r)
    for run_id, _ in counts.most_common():
        try:
            runs.finished_adapter(run_id)
        except (RunNotFound, RunStateError):  # deleted or failed since
            continue
        return run_id
    return None


def judged_model(db, kind: str) -> str:
    counts = Counter()
    for label in LabelStore(db).list(KIND_OF_LABEL[kind]):
        counts.update(m for m in (label["model"], label.get("model_b")) if m)
    return counts.most_common(1)[0][0] if counts else "smollm2"


def free_name(store, kind: str) -> str:
    name = f"labels-{kind}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, n = name, 2
    while store.exists(candidate):
        candidate, n = f"{name}-{n}", n + 1
    return candidate
