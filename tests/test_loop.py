"""The feedback loop improves something measurable, on the real embedded model.

A person who likes enthusiastic answers labels pairs from the label queue: one side is the base model as it is,
the other the base model with a system prompt that makes it open with an exclamation now and then. They pick
the answer that opens with enthusiasm and call the rest ties. Those labels train DPO on prompts without any
system prompt; on held-out topics the tuned model then opens with enthusiasm, unprompted, more often than the
base model did."""
import time

import pytest

from backend.answers import Sampling
from backend.models.pool import ModelPool
from backend.db import connect
from backend.labels import LabelQueue, LabelStore, Side, label_stats, new_session, train_on_labels
from backend.jobs.runner import JobRunner
from tests.preference_data import HELD_OUT_TOPICS, TRAIN_TOPICS

pytestmark = pytest.mark.slow

TEMPLATES = ["Tell me about {}.", "What do you know about {}?"]
ENTHUSIASTIC = "Always answer like a pirate, starting with 'Ahoy, matey!'"  # a third of answers open with '!'
MAX_TOKENS = 32  # the opening is what is judged


def prompts(topics):
    return [[{"role": "user", "content": template.format(t)}] for t in topics for template in TEMPLATES]


def opens_with_enthusiasm(text: str) -> bool:
    return "!" in " ".join(text.split()[:6])


def person_prefers(left, right) -> str:
    """A person who likes an enthusiastic opening picks the answer that has one; otherwise a tie."""
    left_excited, right_excited = opens_with_enthusiasm(left.text), opens_with_enthusiasm(right.text)
    if left_excited == right_excited:
        return "tie"
    return "left" if left_excited else "right"


def enthusiasm_rate(pool, source, topics) -> tuple[float, list[str]]:
    answers = pool.answer([(source, p) for p in prompts(topics)], Sampling(temperature=0, max_new_tokens=16))
    return sum(opens_with_enthusiasm(a.text) for a in answers) / len(answers), [a.text for a in answers]


def test_labels_for_enthusiastic_openings_make_the_tuned_model_open_with_enthusiasm(capsys):
    started = time.time()
    pool, store, session = ModelPool(), LabelStore(connect()), new_session()
    base = pool.source()
    sides = [Side(base, Sampling(temperature=0.7, max_new_tokens=MAX_TOKENS, seed=1)),
             Side(base, Sampling(temperature=0.7, max_new_tokens=MAX_TOKENS, seed=2, system=ENTHUSIASTIC))]
    queue = LabelQueue(pool, prompts(TRAIN_TOPICS), sides, ahead=16, batch_size=16, seed=0)
    while (item := queue.next(timeout=600)) is not None:
        store.add_choice(item.prompt, *item.answers, person_prefers(*item.answers), session=session, origin="label")
    stats = label_stats(connect())
    labelled = time.time()
    assert stats["dpo_pairs"] >= 20, stats

    runner = JobRunner()
    try:
        run_id, _ = train_on_labels(runner.db, runner, "dpo")
        run = runner.wait(run_id, timeout=1200)
    finally:
        runner.close()
    assert run["status"] == "done", run.get("reason")
    trained = time.time()

    base_rate, base_answers = enthusiasm_rate(pool, base, HELD_OUT_TOPICS)
    tuned_rate, tuned_answers = enthusiasm_rate(pool, pool.source(run_id), HELD_OUT_TOPICS)
    with capsys.disabled():
        print(f"\nloop: {stats['dpo_pairs']} DPO pairs and {stats['not_trained']} ties from "
              f"{len(prompts(TRAIN_TOPICS))} prompts; enthusiastic openings on {len(base_answers)} held-out prompts: "
              f"base {base_rate:.0%}, tuned {tuned_rate:.0%}; {run['probe']['summary']}; labelling {labelled - started:.0f} s, "
              f"training {trained - labelled:.0f} s, measuring {time.time() - trained:.0f} s")
        print("  e.g. base:  " + " | ".join(base_answers[:3]) + "\n  e.g. tuned: " + " | ".join(tuned_answers[:3]))
    assert tuned_rate >= base_rate + 0.25, (base_answers, tuned_answers)
