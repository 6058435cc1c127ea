"""Which item a labeller gets next when each item goes to `overlap` labellers (1: each item once; 2 or 3: enough
to measure agreement), never the same item twice to one labeller. The owner chooses the overlap on the Team tab; it
is kept in the database (`labellers_per_item`).

An item is held by the labeller it was handed to until they judge it (it counts towards its overlap) or let it go
(a skip: another labeller may get it, they will not; or they leave: anyone may). Items nearest to complete are
handed out first, so that finished items pile up instead of every item being half done.

    queue = Overlap(["q1", "q2", "q3"], overlap=2)
    item = queue.next_for("bea")        # "q1"
    queue.judged(item, "bea")
    queue.progress()                    # {"items": 3, "complete": 0, "judged": {"bea": 1}, ...}

`team_progress(db)` counts the same from the labels table, for every item anyone judged: what `labels stats` and
the Team tab show.
"""
from __future__ import annotations

import threading

from backend.errors import ConfigError

DEFAULT_OVERLAP = 1
MAX_OVERLAP = 5  # more labellers per item than a team of a few people can give


class Overlap:
    def __init__(self, items: list[str] = (), overlap: int = DEFAULT_OVERLAP):
        self.items: list[str] = []
        self._judged: dict[str, set[str]] = {}
        self._held: dict[str, set[str]] = {}
        self._skipped: dict[str, set[str]] = {}
        self._lock = threading.Lock()
        self.overlap = overlap
        for item in items:
            self.add(item)

    @property
    def overlap(self) -> int:
        return self._overlap

    @overlap.setter
    def overlap(self, value: int):
        """Changed while labellers work (the owner chose another number): it counts from the next item handed out."""
        if value < 1:
            raise ValueError("overlap: give each item to at least 1 labeller.")
        self._overlap = value

    def add(self, item: str, judged_by=()):
        """A new item, with the labellers who judged it already (in an earlier sitting): they will not get it."""
        with self._lock:
            if item not in self._judged:
                self.items.append(item)
                self._judged[item], self._held[item], self._skipped[item] = set(judged_by), set(), set()

    def next_for(self, labeller: str) -> str | None:
        """An item this labeller has not judged, skipped or been handed, still short of its overlap; None when none
        is left for them."""
        with self._lock:
            open_items = [item for item in self.items if self._open(item, labeller)]
            if not open_items:
                return None
            item = max(open_items, key=self._taken)  # the first of the fullest: complete items pile up
            self._held[item].add(labeller)
            return item

    def open_for(self, labeller: str) -> int:
        """How many items this labeller could be handed now."""
        with self._lock:
            return sum(self._open(item, labeller) for item in self.items)

    def judged(self, item: str, labeller: str):
        with self._lock:
            self._held[item].discard(labeller)
            self._judged[item].add(labeller)

    def release(self, item: str, labeller: str):
        """The labeller skipped the item: another may get it, they will not."""
        with self._lock:
            self._held[item].discard(labeller)
            self._skipped[item].add(labeller)

    def hand_back(self, item: str, labeller: str):
        """The labeller left before judging it (their page closed): anyone may get it, they too."""
        with self._lock:
            self._held[item].discard(labeller)

    def undo(self, item: str, labeller: str):
        """A judgement taken back: the item is theirs to judge again."""
        with self._lock:
            self._judged[item].discard(labeller)
            self._held[item].add(labeller)

    def complete(self, item: str) -> bool:
        return len(self._judged[item]) >= self.overlap

    def progress(self, labeller: str | None = None) -> dict:
        """Items complete out of all; per labeller, how many they judged (only theirs when `labeller` is given)."""
        with self._lock:
            counts: dict[str, int] = {}
            for judged in self._judged.values():
                for name in judged:
                    counts[name] = counts.get(name, 0) + 1
            complete = sum(self.complete(item) for item in self.items)
            items = len(self.items)
        judged = counts if labeller is None else {labeller: counts.get(labeller, 0)}
        return {"items": items, "overlap": self.overlap, "complete": complete, "judged": judged}

    def _taken(self, item: str) -> int:
        return len(self._judged[item]) + len(self._held[item])

    def _open(self, item: str, labeller: str) -> bool:
        seen = self._judged[item] | self._held[item] | self._skipped[item]
        return labeller not in seen and self._taken(item) < self.overlap


# --- the owner's choice, kept --------------------------------------------------------------------------------------
SETTING = "labellers_per_item"


def labellers_per_item(db) -> int:
    """How many labellers judge each item: the owner's choice, DEFAULT_OVERLAP until they make one."""
    value = db.value("select value from team_settings where name = ?", [SETTING])
    return int(value) if value is not None else DEFAULT_OVERLAP


def set_labellers_per_item(db, n: int) -> int:
    try:
        n = int(n)
    except (TypeError, ValueError):
        n = 0
    if not 1 <= n <= MAX_OVERLAP:
        raise ConfigError(SETTING, f"give each item to 1 to {MAX_OVERLAP} labellers (1: each item once; 2 or 3 "
                                   "to see how far they agree).")
    with db.atomic():
        db["team_settings"].insert({"name": SETTING, "value": str(n)}, replace=True)
    return n


def team_progress(db) -> dict:
    """From the labels table, per kind of judgement (thumbs, A/B): the items anyone judged, how many of them are
    complete (judged by `labellers_per_item` labellers), and how many each labeller judged. An item is what
    agreement compares: the same question with the same answer(s)."""
    from .agreement import KINDS, judgements
    n = labellers_per_item(db)
    report = {"labellers_per_item": n}
    for kind in KINDS:
        table, _ = judgements(db, kind)
        judged: dict[str, int] = {}
        for votes in table.values():
            for name in votes:
                judged[name] = judged.get(name, 0) + 1
        report[kind] = {"items": len(table), "complete": sum(len(votes) >= n for votes in table.values()),
                        "judged": dict(sorted(judged.items()))}
    return report


def progress_words(report: dict) -> list[str]:
    """`team_progress` in words: the lines `labels stats` prints and the Team tab shows."""
    n = report["labellers_per_item"]
    lines = [f"Each item goes to {n} labeller{'s' if n != 1 else ''} (set on the Team tab)."]
    for kind, what in (("thumb", "Thumbs"), ("ab", "A/B choices")):
        part = report[kind]
        if not part["items"]:
            continue
        by = ", ".join(f"{name} {count}" for name, count in part["judged"].items())
        lines.append(f"{what}: {part['complete']} of the {part['items']} items judged so far are complete; judged by "
                     f"{by}")
    return lines
