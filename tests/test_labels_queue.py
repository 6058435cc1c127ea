"""Answers generated ahead of the person labelling: in batches, a few items ahead, in prompt order, with the
sides of an A/B pair shown in random order but recorded by source."""
import time

import pytest

from backend.answers import Sampling
from backend.models.pool import ModelPool
from backend.errors import ConfigError
from backend.labels import LabelQueue, Side
from backend.labels.prompts import prompts_from_dataset, prompts_from_text
from tests.fake_runs import fake_run

SHORT = Sampling(temperature=0, max_new_tokens=6)


def wait_until(condition, timeout=60):
    deadline = time.time() + timeout
    while not condition():
        assert time.time() < deadline, "timed out"
        time.sleep(0.05)


def test_thumbs_queue_stays_ahead_and_hands_out_every_prompt_in_order(tiny_model):
    pool = ModelPool()
    prompts = prompts_from_text("\n".join(f"Question {i}?" for i in range(11)) + "\nQuestion 3?\n\n")
    assert len(prompts) == 11  # repeats and blank lines dropped
    queue = LabelQueue(pool, prompts, [Side(pool.source(fake_run(tiny_model)), SHORT)], ahead=4, batch_size=3)
    wait_until(queue.full.is_set)  # it has stopped, waiting for the person
    # batches of 2, then 3: it stops at the first batch that brings it `ahead` or more, and generates no more
    assert queue.ready() == queue.generated() == 5
    seen = []
    while (item := queue.next(timeout=60)) is not None:
        assert len(item.answers) == 1 and item.answers[0].text
        seen.append(item.prompt[0]["content"])
        if len(seen) == 2:
            wait_until(lambda: queue.ready() >= 3)  # refilled behind the person
    assert seen == [f"Question {i}?" for i in range(11)]
    assert queue.left() == 0 and queue.handed_out == 11


def test_ab_queue_shows_sides_in_random_order_and_records_their_sources(tiny_model):
    pool = ModelPool()
    run_a, run_b = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)
    sides = [Side(pool.source(run_a), SHORT), Side(pool.source(run_b), SHORT)]
    queue = LabelQueue(pool, prompts_from_text("\n".join(f"Tell me about topic {i}." for i in range(12))), sides,
                       ahead=12, seed=0)
    items = [queue.next(timeout=60) for _ in range(12 - queue.identical_skipped)]
    left_runs = [item.answers[0].source.run_id for item in items if item]
    assert set(left_runs) == {run_a, run_b}
    for item in filter(None, items):
        assert {a.source.run_id for a in item.answers} == {run_a, run_b}
        assert item.answers[0].text != item.answers[1].text

    queue.put_back(items[0])
    assert queue.next(timeout=1) is items[0]


def test_one_run_at_two_seeds_is_a_valid_pair_and_identical_sides_are_refused(tiny_model):
    pool = ModelPool()
    run = pool.source(fake_run(tiny_model))
    with pytest.raises(ConfigError, match="same answers"):
        LabelQueue(pool, prompts_from_text("Hi"), [Side(run, SHORT), Side(run, SHORT)])
    hot = [Side(run, Sampling(temperature=1.0, max_new_tokens=8, seed=1)),
           Side(run, Sampling(temperature=1.0, max_new_tokens=8, seed=2))]
    queue = LabelQueue(pool, prompts_from_text("Hi\nHello"), hot, seed=0)
    item = queue.next(timeout=60)
    assert sorted(a.sampling.seed for a in item.answers) == [1, 2]


def test_prompts_from_a_stored_dataset(chat_file, pairs_file):
    from backend.data import DatasetStore, inspect_file
    from backend.db import connect
    db = connect()
    DatasetStore(db).add(inspect_file(chat_file), name="chat")
    DatasetStore(db).add(inspect_file(pairs_file), name="pairs")
    chat = prompts_from_dataset(db, "chat")
    assert len(chat) == 24 and chat[0][-1] == {"role": "user", "content": "Say hello number 0."}
    assert all(m["role"] != "assistant" for p in chat for m in p)
    assert prompts_from_dataset(db, "pairs", limit=5)[4] == [{"role": "user", "content": "Greet person 4."}]
