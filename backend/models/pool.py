"""The model pool: the one generation engine. Answers from base models and runs' adapters, batched or streamed,
for chat, the label queue, the command line, the forgetting probe and the rehearsed everyday answers.

`generate_texts` is the engine itself: a batch of conversations in, one (text, ended) per conversation out, greedy or
sampled, each row stopping at the model's end-of-turn tokens; `generate_ids`, under it, is the one call of
`model.generate`. It works on any model in memory (the training worker
calls it on the model it has just trained). `ModelPool` keeps models loaded for the app and the CLI:

One base model is kept in memory per base model name. Each run's LoRA adapter is attached to it once, by
the run's id, and stays attached: switching runs never reloads anything already loaded. A batch may mix
sides: PEFT's `adapter_names` runs each row through its own adapter ("__base__": none), so the base and a
tuned answer to the same message are generated together, in one pass, and stream side by side.
A lock per base model keeps two generations from interleaving on it. A person waiting (chat) goes first:
answers generated ahead in the background (the label queue) end their batch early when someone is waiting
for the model, and that batch is generated again afterwards, with the same seed, so with the same answers.
"""
from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Iterator

from backend.answers import Answer, Sampling, Source, decoded
from backend.config import BUILTIN_MODEL

BASE = "__base__"  # PEFT's name for "no adapter" in a mixed batch
MAX_ADAPTERS = 8  # per base model; the least recently used is dropped beyond this (a few MB each)
MAX_MODELS = 2  # base models kept loaded at once
# Sampling draws from torch's one global random generator: two sampled generations at once (two models, or a queue
# left running by another session) would draw from each other's stream, and a seed would no longer give the same
# answers. They take turns; greedy generation draws nothing and needs no turn.
_SAMPLING = threading.Lock()


def chat_prompt(tokenizer, conversation, system: str | None = None) -> str:
    """The text the model continues: a conversation (or one user message) with the system prompt, if any, first."""
    messages = conversation if isinstance(conversation, list) else [{"role": "user", "content": conversation}]
    if system:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate_texts(model, tokenizer, conversations: list, sampling: Sampling, *, batch_size: int = 16,
                   adapter_names: list[str] | None = None, on_tokens: Callable | None = None,
                   should_stop: Callable[[], bool] | None = None,
                   max_seconds: float | None = None,
                   row_max_new_tokens: list[int] | None = None) -> list[tuple[str, bool]]:
    """(text, ended) for each conversation (a message list or one user message), in order. `ended` is False for an
    answer cut off at max_new_tokens. `adapter_names` (PeftModel only): the adapter per row, BASE for none.
    `on_tokens` gets every row's (text, ended) so far as tokens arrive (one batch at a time); `should_stop()`
    returning True ends the current batch at its next token (rows end as they are). `max_seconds`: a batch ends after
    this long (its rows cut off where they are). `row_max_new_tokens`: each conversation's own longest answer (at most
    `sampling.max_new_tokens`), so that answers of different lengths share one batch: a row stops at its own budget."""
    import torch
    from transformers import StoppingCriteria, StoppingCriteriaList

    texts = [chat_prompt(tokenizer, c, sampling.system or None) for c in conversations]
    eos_ids = _eos_ids(model, tokenizer)

    if row_max_new_tokens is not None and (len(row_max_new_tokens) != len(conversations) or not all(
            1 <= budget <= sampling.max_new_tokens for budget in row_max_new_tokens)):
        raise ValueError(f"row_max_new_tokens needs one budget per conversation ({len(conversations)}), each from 1 to "
                         f"{sampling.max_new_tokens}; got {row_max_new_tokens}")

    class _Stop(StoppingCriteria):
        def __init__(self, prompt_length: int, budgets: list[int] | None):
            self.prompt_length = prompt_length
            self.budgets = None if budgets is None else torch.tensor(budgets, device=model.device)

        def __call__(self, input_ids, scores, **_):
            stop = torch.full((input_ids.shape[0],), bool(should_stop and should_stop()), dtype=torch.bool,
                              device=input_ids.device)
            if self.budgets is not None:  # a row that has its budget of new tokens ends now (the streamer trims too)
                stop |= (input_ids.shape[1] - self.prompt_length) >= self.budgets
            return stop

    results: list[tuple[str, bool]] = []
    was_training = model.training
    model.eval()
    try:
        with _SAMPLING if sampling.temperature > 0 else contextlib.nullcontext():
            if sampling.seed is not None:
                torch.manual_seed(sampling.seed)
            for start in range(0, len(texts), batch_size):
                chunk = texts[start:start + batch_size]
                batch = tokenizer(chunk, return_tensors="pt", padding=True, padding_side="left",
                                  add_special_tokens=False).to(model.device)
                budgets = None if row_max_new_tokens is None else row_max_new_tokens[start:start + batch_size]
                streamer = _RowStreamer(tokenizer, len(chunk), eos_ids, None if on_tokens is None else
                                        lambda rows, done=list(results): on_tokens(done + rows), budgets)
                adapters = {} if adapter_names is None else {"adapter_names": adapter_names[start:start + batch_size]}
                stop = _Stop(batch["input_ids"].shape[1], budgets)
                generate_ids(model, batch, sampling, eos_token_id=sorted(eos_ids), pad_token_id=tokenizer.pad_token_id,
                             streamer=streamer, stopping_criteria=StoppingCriteriaList([stop]), max_time=max_seconds,
                             **adapters)
                results += streamer.results()
    finally:
        model.train(was_training)
    return results


def generate_ids(model, batch: dict, sampling: Sampling, *, eos_token_id, pad_token_id, **extra):
    """The one call of `model.generate`: prompt and answer token ids for each row of `batch` (input_ids and
    attention_mask), greedy or sampled as `sampling` says, at most `sampling.max_new_tokens` new tokens, without
    gradients. `extra`: generate's own arguments (streamer, stopping criteria, max_time, adapter_names).
    generate_texts calls it for the answers people read; the GGUF export check for the token ids it compares."""
    import torch
    decoding = {"do_sample": True, "temperature": sampling.temperature} if sampling.temperature > 0 \
        else {"do_sample": False, "temperature": None, "top_p": None, "top_k": None}
    with torch.no_grad():
        return model.generate(**batch, max_new_tokens=sampling.max_new_tokens, pad_token_id=pad_token_id,
                              eos_token_id=eos_token_id, **decoding, **extra)


@dataclass
class _Loaded:
    model: object  # the base model, or a PeftModel around it once an adapter is attached
    tokenizer: object
    adapters: OrderedDict = field(default_factory=OrderedDict)  # run id -> adapter name, least recent first
    lock: threading.Lock = field(default_factory=threading.Lock)
    waiting: int = 0  # people (not background work) waiting for `lock`
    counter: threading.Lock = field(default_factory=threading.Lock)


class ModelPool:
    def __init__(self, runs=None, max_seconds: float | None = None):
        """`runs`: a RunStore to look runs up in (default: the workspace's database). `max_seconds`: the longest a
        batch of answers may take (default: answer_seconds in backend/limits.py)."""
        from backend.limits import current
        self._runs = runs
        self.max_seconds = current().answer_seconds if max_seconds is None else max_seconds
        self._models: OrderedDict[str, _Loaded] = OrderedDict()
        self._lock = threading.Lock()
        self.loads = {"models": 0, "adapters": 0}  # how often something was read from disk, for tests and logs
        self.preempted = 0  # background batches ended early for a person waiting, and generated again

    # --- sources ----------------------------------------------------------------------------------
    def source(self, run_id: str | None = None, model: str | None = None) -> Source:
        """The base model (run_id None) or a finished run; raises RunNotFound / RunStateError in words."""
        if not run_id:
            return Source(model or BUILTIN_MODEL)
        self._run_store().finished_adapter(run_id)
        return Source(self._run_store().get(run_id)["config"]["model"], run_id)

    def _run_store(self):
        if self._runs is None:
            from backend.db import connect
            from backend.runs import RunStore
            self._runs = RunStore(connect())
        return self._runs

    def busy(self) -> bool:
        """Whether a generation is running on any loaded model now."""
        return any(entry.lock.locked() for entry in list(self._models.values()))

    def loaded(self) -> dict:
        """{base model folder: [run ids attached]}: what is in memory now."""
        return {key: list(entry.adapters) for key, entry in self._models.items()}

    # --- answering --------------------------------------------------------------------------------
    def answer(self, requests: list[tuple[Source, list[dict]]], sampling: Sampling, batch_size: int = 16,
               stop: threading.Event | None = None, background: bool = False) -> list[Answer]:
        """Answers to (source, messages) requests, in order, in batches (about 10x faster than one by one).
        `stop` set: the current batch ends early and the rest are answered with nothing.
        `background`: work done ahead of need (the label queue), which makes way for anyone waiting."""
        sampling = sampling.with_seed()
        answers: list[Answer | None] = [None] * len(requests)
        for key, indices in _group_by_model(requests).items():
            for start in range(0, len(indices), batch_size):
                chunk = indices[start:start + batch_size]
                if stop is not None and stop.is_set():
                    results = [("", False)] * len(chunk)
                else:
                    results = self._generate(key, [requests[i] for i in chunk], sampling, stop=stop,
                                             background=background)
                for i, (text, ended) in zip(chunk, results):
                    answers[i] = Answer(text, requests[i][0], sampling, ended)
        return answers

    def stream(self, requests: list[tuple[Source, list[dict]]], sampling: Sampling,
               stop: threading.Event | None = None) -> Iterator[list[Answer]]:
        """Yields every request's answer so far, as tokens arrive; the last yield holds the whole answers.
        Requests on one base model generate together; `stop` (or closing the iterator) ends generation."""
        sampling = sampling.with_seed()
        stop = stop or threading.Event()
        answers = [Answer("", source, sampling, False) for source, _ in requests]
        try:
            for key, indices in _group_by_model(requests).items():
                updates: queue.Queue = queue.Queue()
                worker = threading.Thread(target=self._generate_into, daemon=True, name="tuneloop-stream",
                                          args=(key, [requests[i] for i in indices], sampling, updates, stop))
                worker.start()
                while (item := updates.get()) is not None:
                    if isinstance(item, BaseException):
                        raise item
                    for i, (text, ended) in zip(indices, item):
                        answers[i] = Answer(text, requests[i][0], sampling, ended)
                    yield list(answers)
        finally:
            stop.set()

    def _generate_into(self, key, requests, sampling, updates: queue.Queue, stop):
        try:
            self._generate(key, requests, sampling, on_tokens=updates.put, stop=stop)
        except BaseException as exc:  # handed to the reading side, which raises it there
            updates.put(exc)
        finally:
            updates.put(None)

    def _generate(self, key, requests, sampling: Sampling, on_tokens=None, stop=None,
                  background: bool = False) -> list[tuple[str, bool]]:
        entry = self._entry(key, requests[0][0].model)
        if not background:
            with entry.counter:
                entry.waiting += 1
            with entry.lock:
                with entry.counter:
                    entry.waiting -= 1
                return self._generate_locked(entry, requests, sampling, on_tokens, stop, lambda: False)
        while True:
            while entry.waiting:  # someone is waiting for the model: they go first
                time.sleep(0.05)
            made_way = threading.Event()

            def make_way() -> bool:
                if entry.waiting:
                    made_way.set()
                return made_way.is_set()

            with entry.lock:
                results = self._generate_locked(entry, requests, sampling, on_tokens, stop, make_way)
            if not made_way.is_set() or (stop is not None and stop.is_set()):
                return results
            self.preempted += 1  # ended early for a person; generated again with the same seed: the same answers

    def _generate_locked(self, entry: _Loaded, requests, sampling: Sampling, on_tokens, stop,
                         make_way) -> list[tuple[str, bool]]:
        names = [self._adapter(entry, source) for source, _ in requests]
        return generate_texts(entry.model, entry.tokenizer, [messages for _, messages in requests], sampling,
                              batch_size=len(requests), adapter_names=names if _is_peft(entry.model) else None,
                              on_tokens=on_tokens, max_seconds=self.max_seconds,
                              should_stop=lambda: (stop is not None and stop.is_set()) or make_way())

    # --- loading ----------------------------------------------------------------------------------
    def _entry(self, key: str, model_name: str) -> _Loaded:
        with self._lock:
            if key in self._models:
                self._models.move_to_end(key)
                return self._models[key]
            from backend.models.loading import load_model, load_tokenizer
            while len(self._models) >= MAX_MODELS:
                self._models.popitem(last=False)
            entry = _Loaded(load_model(model_name), load_tokenizer(model_name))
            entry.model.eval()
            self.loads["models"] += 1
            self._models[key] = entry
            return entry

    def _adapter(self, entry: _Loaded, source: Source) -> str:
        """The adapter name for a source, attaching the run's adapter the first time (entry.lock held)."""
        if source.run_id is None:
            return BASE
        if source.run_id in entry.adapters:
            entry.adapters.move_to_end(source.run_id)
            return entry.adapters[source.run_id]
        from peft import PeftModel

        from backend.runs import adapter_dir
        path = str(adapter_dir(source.run_id))
        name = "run_" + source.run_id.replace(".", "_").replace("-", "_")
        if _is_peft(entry.model):
            entry.model.load_adapter(path, adapter_name=name)
        else:
            entry.model = PeftModel.from_pretrained(entry.model, path, adapter_name=name)
        entry.model.eval()
        self.loads["adapters"] += 1
        entry.adapters[source.run_id] = name
        if len(entry.adapters) > MAX_ADAPTERS:
            _, oldest = entry.adapters.popitem(last=False)
            entry.model.delete_adapter(oldest)
        return name


class _RowStreamer:
    """A generate() streamer for a whole batch: keeps each row's tokens until its end-of-turn token, or until its own
    budget of tokens (`budgets`, one per row) when the rows have different ones."""

    def __init__(self, tokenizer, rows: int, eos_ids: set[int], on_tokens=None, budgets: list[int] | None = None):
        self.tokenizer, self.eos_ids, self.on_tokens, self.budgets = tokenizer, eos_ids, on_tokens, budgets
        self.ids = [[] for _ in range(rows)]
        self.done = [False] * rows
        self.cut = [False] * rows  # reached its budget before its end-of-turn token
        self.prompt_seen = False

    def put(self, value):
        if not self.prompt_seen:  # generate() first hands over the prompt itself
            self.prompt_seen = True
            return
        for row, token in enumerate(value.reshape(-1).tolist()):
            if self.done[row] or self.cut[row]:
                continue
            if token in self.eos_ids:
                self.done[row] = True
            else:
                self.ids[row].append(token)
                self.cut[row] = self.budgets is not None and len(self.ids[row]) >= self.budgets[row]
        if self.on_tokens is not None:
            self.on_tokens(self.results())

    def end(self):
        pass

    def texts(self) -> list[str]:
        return [decoded(self.tokenizer, ids) for ids in self.ids]

    def results(self) -> list[tuple[str, bool]]:
        return list(zip(self.texts(), self.done))


def _group_by_model(requests) -> dict[str, list[int]]:
    from backend.models.loading import resolve_model
    groups: dict[str, list[int]] = {}
    for i, (source, _) in enumerate(requests):
        groups.setdefault(str(resolve_model(source.model)), []).append(i)
    return groups


def _eos_ids(model, tokenizer) -> set[int]:
    eos = model.generation_config.eos_token_id
    ids = set(eos if isinstance(eos, list) else [eos])
    ids.add(tokenizer.eos_token_id)
    return {i for i in ids if i is not None}


def _is_peft(model) -> bool:
    return hasattr(model, "peft_config")
