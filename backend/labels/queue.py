"""LabelQueue: answers generated ahead of the person labelling, in a background thread, so that the next
answer is ready the moment a judgement is given. Batched generation is about 10x faster per answer than one
at a time on a CPU (40 prompts: 150 s one by one, 12 s in batches of 20 in bf16), so the thread fills the queue in
batches and stops `ahead` items ahead.

Thumbs mode has one side; A/B mode has two (two runs, or one run at two temperatures, seeds or system
prompts). Which side is shown on the left is drawn at random per item, so a habit of clicking one side
does not favour one source; the stored label records which source each shown answer came from.
"""
from __future__ import annotations

import atexit
import random
import secrets
import threading
import weakref
from collections import deque
from dataclasses import dataclass, replace

from backend.answers import Answer, Sampling, Source
from backend.models.pool import ModelPool
from backend.errors import ConfigError

FIRST_BATCH = 2  # small first batches: the first answers show up within seconds
_LIVE = weakref.WeakSet()  # queues to stop when the process exits, rather than kill mid-generation


@dataclass(frozen=True)
class Side:
    source: Source
    sampling: Sampling


@dataclass
class Item:
    id: str
    number: int  # 1-based position of the prompt in the list
    prompt: list[dict]
    answers: list[Answer]  # in the order shown: [answer] in thumbs mode, [left, right] in A/B mode


class LabelQueue:
    def __init__(self, pool: ModelPool, prompts: list[list[dict]], sides: list[Side], ahead: int = 8,
                 batch_size: int = 8, seed: int | None = None, swap_sides: bool = True):
        if len(sides) not in (1, 2):
            raise ConfigError("sides", "give one source (thumbs) or two (A/B).")
        if len(sides) == 2 and _same_answers(*sides):
            raise ConfigError("sides", "both sides would give the same answers. Pick two different runs, or "
                                       "set a temperature above 0 (or different system prompts) for the two sides.")
        self.pool, self.prompts, self.sides = pool, list(prompts), list(sides)
        self.ahead, self.batch_size = max(1, ahead), max(1, batch_size)
        self.swap_sides = swap_sides and len(sides) == 2
        self._rng = random.Random(seed)
        self._ready: deque[Item] = deque()
        self._next_prompt = 0
        self._batches = 0
        self.full = threading.Event()  # set while the thread waits because `ahead` answers are ready
        self.handed_out = 0
        self.identical_skipped = 0  # A/B pairs whose two answers came out the same: nothing to choose
        self.error: BaseException | None = None
        self._finished = False
        self._stop = threading.Event()
        self._cond = threading.Condition()
        self._thread = threading.Thread(target=self._work, name="tuneloop-label-queue", daemon=True)
        self._thread.start()
        _LIVE.add(self)

    @property
    def mode(self) -> str:
        return "ab" if len(self.sides) == 2 else "thumb"

    # --- the person's side ------------------------------------------------------------------------
    def next(self, timeout: float | None = None) -> Item | None:
        """The next item, waiting for it if need be; None when every prompt has been handed out.
        Raises TimeoutError after `timeout` seconds, and the generation error if generating failed."""
        with self._cond:
            if not self._cond.wait_for(lambda: self._ready or self._finished or self.error, timeout):
                raise TimeoutError("The next answer is still being generated.")
            if self._ready:
                item = self._ready.popleft()
                self.handed_out += 1
                self._cond.notify_all()
                return item
            if self.error is not None:
                raise self.error
            return None

    def put_back(self, item: Item):
        """Show `item` again next (after an undo)."""
        with self._cond:
            self._ready.appendleft(item)
            self.handed_out -= 1
            self._cond.notify_all()

    def ready(self) -> int:
        return len(self._ready)

    def generated(self) -> int:
        """Prompts taken for generation so far (handed out, ready, or in the batch being generated)."""
        return self._next_prompt

    def left(self) -> int:
        """Prompts not yet handed out (ready or still to generate)."""
        return len(self.prompts) - self.handed_out - self.identical_skipped

    def close(self, wait: bool = False, timeout: float | None = None):
        """Stop generating (the current batch ends at its next token)."""
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        if wait:
            self._thread.join(timeout)

    # --- the generating thread --------------------------------------------------------------------
    def _work(self):
        try:
            while not self._stop.is_set():
                with self._cond:
                    if len(self._ready) >= self.ahead:
                        self.full.set()
                    self._cond.wait_for(lambda: len(self._ready) < self.ahead or self._stop.is_set())
                    self.full.clear()
                if self._stop.is_set() or self._next_prompt >= len(self.prompts):
                    break
                size = min(self.batch_size, FIRST_BATCH * 2 ** self._batches)  # 2, 4, 8...: a quick start
                start, self._next_prompt = self._next_prompt, min(len(self.prompts), self._next_prompt + size)
                self._add(start, self.prompts[start:self._next_prompt])
                self._batches += 1
        except BaseException as exc:
            self.error = exc
        finally:
            with self._cond:
                self._finished = True
                self._cond.notify_all()

    def _add(self, start: int, chunk: list[list[dict]]):
        per_side = []
        for side in self.sides:
            sampling = side.sampling if side.sampling.seed is None else \
                replace(side.sampling, seed=side.sampling.seed + self._batches)
            per_side.append(self.pool.answer([(side.source, p) for p in chunk], sampling, len(chunk),
                                             stop=self._stop, background=True))
        if self._stop.is_set():
            return
        items = []
        for offset, prompt in enumerate(chunk):
            answers = [answers[offset] for answers in per_side]
            if len(answers) == 2:
                if answers[0].text.strip() == answers[1].text.strip():
                    self.identical_skipped += 1
                    continue
                if self.swap_sides and self._rng.random() < 0.5:
                    answers.reverse()
            items.append(Item(secrets.token_hex(6), start + offset + 1, prompt, answers))
        with self._cond:
            self._ready.extend(items)
            self._cond.notify_all()


def _same_answers(a: Side, b: Side) -> bool:
    if a.source != b.source or a.sampling.system != b.sampling.system:
        return False
    return a.sampling.temperature == 0 and b.sampling.temperature == 0 or \
        (a.sampling.seed is not None and a.sampling == b.sampling)


@atexit.register
def _stop_all():
    for queue in list(_LIVE):
        queue.close(wait=True, timeout=30)
