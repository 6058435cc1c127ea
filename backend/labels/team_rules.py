"""Which labels a run learns from when several people labelled: every label, the majority label per item, only the
items everyone agreed on, optionally leaving one labeller out.

An item is what agreement.py compares: the same question with the same answer(s). A labeller counts once per item,
with their latest standing label; an item one person judged is its own majority and agrees with itself.

    rule_rows(db, "dpo", "majority")            # TRL rows, one per item whose majority chose an answer
    rule_counts(db, "kto", leave_out="sam")     # {"every": 40, "majority": 17, "all_agree": 14}

Corrections (SFT) are not voted on: every rule trains on every correction.
"""
from __future__ import annotations

from backend.errors import DataError

from .agreement import judgements, majority
from .export import LABELLED, _assistant, _prompt
from .store import GOOD

RULES = ("every", "majority", "all_agree")
RULE_WORDS = {"every": "every label", "majority": "the majority label per item (more than half; ties dropped)",
              "all_agree": "only items where everyone who judged them agreed"}
KIND_OF_LABEL = {"kto": "thumb", "dpo": "ab", "sft": "edit"}


def rule_rows(db, kind: str, rule: str = "every", leave_out: str | None = None) -> list[dict]:
    """The training rows of `kind` under `rule`, without `leave_out`'s labels."""
    if kind not in LABELLED:
        raise DataError(f"Unknown kind '{kind}'; use one of: {', '.join(LABELLED)}.")
    if rule not in RULES:
        raise DataError(f"Unknown choice of labels '{rule}'; use one of: {', '.join(RULES)}.")
    if leave_out:
        check_labeller(db, leave_out)
    if rule == "every" or kind == "sft":
        return [row for label, row in LABELLED[kind](db) if label["labeller"] != leave_out]
    rows = []
    for label, answers, value in _decided(db, kind, rule, leave_out):
        if kind == "kto":
            rows.append({"prompt": _prompt(label), "completion": _assistant(answers[0]), "label": value == GOOD})
        elif value in ("first", "second"):  # a tie or "both bad" prefers neither answer
            chosen, rejected = answers if value == "first" else answers[::-1]
            rows.append({"prompt": _prompt(label), "chosen": _assistant(chosen), "rejected": _assistant(rejected)})
    return rows


def check_labeller(db, name: str):
    """A labeller to leave out must have given labels: a misspelt name left nobody out, under a run named 'without'
    them."""
    from .export import label_stats
    known = sorted(label_stats(db)["labellers"])
    if name not in known:
        raise DataError(f"No labels from '{name}'. The labellers who gave labels: {', '.join(known) or 'none yet'}.")


def rule_counts(db, kind: str, leave_out: str | None = None) -> dict[str, int]:
    """How many rows each rule makes: the numbers beside the choices."""
    return {rule: len(rule_rows(db, kind, rule, leave_out)) for rule in RULES}


def _decided(db, kind: str, rule: str, leave_out: str | None):
    """(a label of the item, its answers, the value the rule settles on) per item the rule keeps."""
    table, items = judgements(db, KIND_OF_LABEL[kind], leave_out)
    for key, given in table.items():
        values = list(given.values())
        decided = majority(values) if rule == "majority" else (values[0] if len(set(values)) == 1 else None)
        if decided is not None:
            yield items[key]["label"], items[key]["answers"], decided
