"""A label queue several labellers share: the answers are generated once (one LabelQueue) and each item is handed to
`labellers_per_item` labellers, never twice to one (Overlap). Everyone who gets an item judges the same answers,
which is what agreement compares, whatever the temperature.

Labellers who start the Label tab with the same prompts, models and answer settings share one queue (`join`); a
labeller who starts it again gets only what they have not judged, and items they judged in an earlier sitting (the
same question and the same answers, found in the labels table) are not handed to them again. Once every item of a
queue is complete, starting it again makes a new one: new answers where they are sampled, nothing new for anyone
who judged them where they are not (temperature 0).

    queues = SharedQueues.of(app)                        # one registry per web app
    seat = queues.join(prompts, sides, "bea", make_queue, db=connect)
    item = seat.next(timeout=0)                          # the LabelQueue's interface, for one labeller
    seat.judged(item) / seat.skipped(item) / seat.taken_back(item)
    seat.progress()                                      # {"items", "overlap", "complete", "judged": {"bea": 3}}
"""
from __future__ import annotations

import json
import threading
import time
import weakref
from collections import OrderedDict
from typing import Callable

from .agreement import labellers_of
from .overlap import Overlap, labellers_per_item
from .queue import Item, LabelQueue, Side

KEPT = 20  # shared queues kept once nobody labels them (their answers stay, for those who come later)


class SharedQueue:
    def __init__(self, queue: LabelQueue, overlap: int):
        self.queue = queue
        self.overlap = Overlap(overlap=overlap)
        self.items: dict[str, Item] = {}
        self.seats: weakref.WeakSet = weakref.WeakSet()
        self._lock = threading.Lock()

    @property
    def mode(self) -> str:
        return self.queue.mode

    def hand_out(self, labeller: str, db, timeout: float | None = 0) -> Item | None:
        """An item for `labeller`: one already generated that is open to them, else the next one generated (waiting
        up to `timeout`, then TimeoutError). None when nothing is left for them."""
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self.overlap.overlap = labellers_per_item(db)  # the owner may change it while the team labels
            item_id = self.overlap.next_for(labeller)
            if item_id is not None:
                return self.items[item_id]
            wait = None if deadline is None else max(0.0, deadline - time.monotonic())
            item = self.queue.next(timeout=wait)
            if item is None:  # every prompt generated and handed out: one more look, another may have freed one
                item_id = self.overlap.next_for(labeller)
                return self.items[item_id] if item_id is not None else None
            with self._lock:
                self.items[item.id] = item
            self.overlap.add(item.id, labellers_of(db, self.mode, item.prompt, item.answers))

    def exhausted(self) -> bool:
        """Every prompt generated and handed out, and every item complete: nothing left for anyone."""
        return self.queue.left() == 0 and all(self.overlap.complete(item) for item in list(self.items))

    def total(self) -> int:
        """The items this queue will have: its prompts, less the A/B pairs whose answers came out the same."""
        return len(self.queue.prompts) - self.queue.identical_skipped

    def progress(self, labeller: str | None = None) -> dict:
        """The Overlap's progress over all the queue's items (those not generated yet count as not complete)."""
        return {**self.overlap.progress(labeller), "items": self.total()}

    def describe(self) -> str:
        """The queue in a few words, for the owner's list: its first prompt and how many more."""
        first = self.queue.prompts[0][-1]["content"] if self.queue.prompts else ""
        more = len(self.queue.prompts) - 1
        what = "thumbs" if self.mode == "thumb" else "A/B"
        return f"“{first[:60]}”" + (f" and {more} more" if more else "") + f" ({what})"

    def close(self):
        self.queue.close()


class Seat:
    """One labeller's place at a shared queue, with the LabelQueue's interface (next, put_back, ready, left, close,
    mode) that the Label tab's session uses, and what became of each item handed out."""

    def __init__(self, shared: SharedQueue, labeller: str, db: Callable):
        self.shared, self.labeller, self._db = shared, labeller, db
        self._again: list[Item] = []  # put back (after an undo): shown next, still theirs
        self._held: set[str] = set()
        shared.seats.add(self)

    @property
    def mode(self) -> str:
        return self.shared.mode

    def next(self, timeout: float | None = None) -> Item | None:
        if self._again:
            return self._again.pop()
        item = self.shared.hand_out(self.labeller, self._db(), timeout)
        if item is not None:
            self._held.add(item.id)
        return item

    def put_back(self, item: Item):
        self._again.append(item)

    def judged(self, item: Item):
        self._held.discard(item.id)
        self.shared.overlap.judged(item.id, self.labeller)

    def skipped(self, item: Item):
        self._held.discard(item.id)
        self.shared.overlap.release(item.id, self.labeller)

    def taken_back(self, item: Item):
        """Their judgement of `item` undone: it is theirs to judge again."""
        self._held.add(item.id)
        self.shared.overlap.undo(item.id, self.labeller)

    def ready(self) -> int:
        return len(self._again) + self.shared.overlap.open_for(self.labeller) + self.shared.queue.ready()

    def left(self) -> int:
        """Items they may still be handed (some may be completed by others first)."""
        return len(self._again) + self.shared.overlap.open_for(self.labeller) + self.shared.queue.left()

    def progress(self, everyone: bool = False) -> dict:
        return self.shared.progress(None if everyone else self.labeller)

    def close(self):
        """They left (their page closed, or they started again): what they held goes to the others. The queue goes
        on generating for whoever labels it next."""
        for item_id in self._held:
            self.shared.overlap.hand_back(item_id, self.labeller)
        self._held.clear()
        self._again.clear()
        self.shared.seats.discard(self)


class SharedQueues:
    """The shared queues of one web app, by what they label: the prompts, the models and how answers are made."""
    _apps: "weakref.WeakKeyDictionary[object, SharedQueues]" = weakref.WeakKeyDictionary()
    _apps_lock = threading.Lock()

    def __init__(self):
        self._queues: OrderedDict[str, SharedQueue] = OrderedDict()
        self._lock = threading.Lock()

    @classmethod
    def of(cls, app) -> "SharedQueues":
        with cls._apps_lock:
            if app not in cls._apps:
                queues = cls._apps[app] = cls()
                weakref.finalize(app, queues.close)  # the app gone: its queues stop generating
            return cls._apps[app]

    def join(self, prompts: list[list[dict]], sides: list[Side], labeller: str,
             make: Callable[[], LabelQueue], db: Callable) -> Seat:
        """A seat at the queue for these prompts and sides, made (`make`) when there is none, or none that works."""
        key = queue_key(prompts, sides)
        with self._lock:
            shared = self._queues.get(key)
            if shared is None or shared.queue.error is not None or shared.exhausted():
                if shared is not None:
                    shared.close()
                shared = self._queues[key] = SharedQueue(make(), labellers_per_item(db()))
            self._queues.move_to_end(key)
            self._forget_idle()
            return Seat(shared, labeller, db)

    def live(self) -> list[SharedQueue]:
        """The queues, newest first."""
        with self._lock:
            return list(reversed(self._queues.values()))

    def close(self):
        with self._lock:
            for shared in self._queues.values():
                shared.close()
            self._queues.clear()

    def _forget_idle(self):
        idle = [key for key, shared in self._queues.items() if not shared.seats]
        for key in idle[:max(0, len(self._queues) - KEPT)]:
            self._queues.pop(key).close()


def queue_key(prompts: list[list[dict]], sides: list[Side]) -> str:
    return json.dumps([prompts, [[s.source.model, s.source.run_id, s.sampling.to_dict()] for s in sides]],
                      ensure_ascii=False, sort_keys=True)
