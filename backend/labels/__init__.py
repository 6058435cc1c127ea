"""Labels: judgements of answers (thumbs, A/B choices, corrections), kept the moment they are given, and
turned into training data.

    store = LabelStore(db)
    store.add_thumb(prompt, answer, "up")                  # answer: backend.answers.Answer
    store.add_choice(prompt, left, right, "left")          # left | right | tie | both_bad
    store.add_edit(prompt, answer, "the corrected text")
    store.undo(session)                                    # the last label of a session
    kto_rows(db), dpo_rows(db), sft_rows(db)               # TRL's formats (see export.py)
    readiness(db, "dpo", "quick")                          # how many pairs there are, how many are useful
    train_on_labels(db, runner, "kto")                     # a stored dataset and a queued run, in one transaction

Thumbs and A/B choices are kept apart: a thumb becomes a KTO example, a left/right choice a DPO pair; a choice
does not imply a thumb (the better of two answers may still be a bad answer). Ties and "both bad" are stored
but make no DPO pair. An edit becomes an SFT example.
"""
from .export import dpo_rows, kto_rows, label_stats, sft_rows, stats_text, write_jsonl
from .queue import Item, LabelQueue, Side
from .store import LabelError, LabelStore, new_session
from .training import LabelReadiness, labels_to_dataset, readiness, train_on_labels

__all__ = ["LabelStore", "LabelError", "LabelQueue", "Side", "Item", "new_session", "kto_rows", "dpo_rows",
           "sft_rows", "label_stats", "stats_text", "write_jsonl", "labels_to_dataset", "train_on_labels",
           "readiness", "LabelReadiness"]
