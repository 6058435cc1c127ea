"""Which item a labeller gets next when each item goes to `overlap` labellers (1: each item once; 2 or 3: enough
to measure agreement), never the same item twice to one labeller.

An item is held by the labeller it was handed to until they judge it (it counts towards its overlap) or let it go
(skip, or they leave): then another labeller may get it. Items nearest to complete are handed out first, so that
finished items pile up instead of every item being half done.

    queue = Overlap(["q1", "q2", "q3"], overlap=2)
    item = queue.next_for("bea")        # "q1"
    queue.judged(item, "bea")
    queue.progress()                    # {"items": 3, "complete": 0, "judged": {"bea": 1}, ...}

Plain and in memory: not yet wired into the Label tab (each labeller there still has a queue of their own).
"""
from __future__ import annotations

import threading


class Overlap:
    def __init__(self, items: list[str], overlap: int = 1):
        if overlap < 1:
            raise ValueError("overlap: give each item to at least 1 labeller.")
        self.items, self.overlap = list(dict.fromkeys(items)), overlap
        self._judged: dict[str, set[str]] = {item: set() for item in self.items}
        self._held: dict[str, set[str]] = {item: set() for item in self.items}
        self._skipped: dict[str, set[str]] = {item: set() for item in self.items}
        self._lock = threading.Lock()

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

    def judged(self, item: str, labeller: str):
        with self._lock:
            self._held[item].discard(labeller)
            self._judged[item].add(labeller)

    def release(self, item: str, labeller: str):
        """The labeller skipped the item: another may get it, they will not."""
        with self._lock:
            self._held[item].discard(labeller)
            self._skipped[item].add(labeller)

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
        judged = counts if labeller is None else {labeller: counts.get(labeller, 0)}
        return {"items": len(self.items), "overlap": self.overlap, "complete": complete, "judged": judged}

    def _taken(self, item: str) -> int:
        return len(self._judged[item]) + len(self._held[item])

    def _open(self, item: str, labeller: str) -> bool:
        seen = self._judged[item] | self._held[item] | self._skipped[item]
        return labeller not in seen and self._taken(item) < self.overlap
