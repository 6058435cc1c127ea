"""The label values and their words are declared once (backend/labels/store.py, issue 29): the store accepts exactly
those values, and Chat, the Label tab and `labels stats` name each value in the same words (Chat said "a tie" and
"left answer better" where the Label tab said "tie" and "left better")."""
from collections import deque

import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels import Item, LabelError, LabelStore, label_stats, stats_text
from backend.labels.shared import SharedQueues
from backend.labels.store import VALUE_WORDS, VALUES, value_words
from ui import chat_tab, label_tab
from ui.common import Context

SOURCE = Source("tiny", None)
ASK = [{"role": "user", "content": "Which is better?"}]
TWO = [Answer("One.", SOURCE, Sampling(seed=1)), Answer("Two.", SOURCE, Sampling(seed=2))]


class TwoSided:
    """A made A/B label queue of one item."""
    mode, error, identical_skipped = "ab", None, 0

    def __init__(self):
        self.prompts = [ASK]
        self._items = deque([Item("ab0", 1, ASK, TWO)])

    def next(self, timeout=None):
        return self._items.popleft() if self._items else None

    def ready(self):
        return len(self._items)

    left = ready

    def close(self):
        pass


class App:
    pass


def test_the_store_takes_the_declared_values_only():
    assert VALUES == {kind: tuple(words) for kind, words in VALUE_WORDS.items()}
    assert value_words("up") == "👍 good" and value_words("both_bad") == "both bad"
    with pytest.raises(LabelError, match="use one of: left, right, tie, both_bad"):
        LabelStore(connect()).add_choice(ASK, *TWO, "neither")


@pytest.mark.parametrize("value", VALUES["ab"])
def test_chat_the_label_tab_and_labels_stats_name_an_ab_value_alike(value):
    ctx, words = Context(None), value_words(value)
    seat = SharedQueues.of(app := App()).join([ASK], [], "owner", TwoSided, db=connect)
    session = label_tab.LabelSession(seat, blind=False)
    session.item = seat.next(timeout=0)
    label_tab.judge(ctx, {"state": session, "shown": "ab0"}, value=value)
    assert f"Took back your last judgement ({words})" in label_tab.undo_last(ctx, {"state": session})[1]

    conv = chat_tab.Conversation(prompts=[ASK, ASK], answers=TWO)
    assert f"Saved: {words}." in chat_tab.choose(ctx, {"conversation": conv}, value=value)

    assert f"1 {words}" in stats_text(label_stats(ctx.db()))  # Chat's choice (the Label tab's was taken back)
    del app
