"""Benchmark: does "Train on labels" with the default (quick) preset change what the model says?

A simulated person who likes answers that open with enthusiasm labels answers from the label queue, as the
Label tab would hand them out, on 40 training topics:
  - A/B (DPO): the base model as it is against the base model told to open like a pirate; the person picks the
    enthusiastic opening and calls the rest ties.
  - thumbs (KTO): the base model at temperature 0.7, no system prompt; 👍 for an enthusiastic opening, 👎 otherwise.
Each set of labels trains a run on the defaults (train_on_labels, quick preset). Printed: the labels, the share of
enthusiastic openings on 24 held-out prompts (greedy, no system prompt), base against tuned, how many held-out
answers changed at all, the everyday probe, and the time. Run: .venv/bin/python benchmarks/loop.py [dpo] [kto]
(set TUNELOOP_HOME to keep it out of your workspace)."""
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from backend.answers import Sampling  # noqa: E402
from backend.models.pool import ModelPool  # noqa: E402
from backend.db import connect  # noqa: E402
from backend.labels import LabelQueue, LabelStore, Side, label_stats, new_session, train_on_labels  # noqa: E402
from backend.jobs.runner import JobRunner  # noqa: E402
from tests.preference_data import HELD_OUT_TOPICS, TRAIN_TOPICS  # noqa: E402
from tests.test_loop import ENTHUSIASTIC, MAX_TOKENS, opens_with_enthusiasm, person_prefers, prompts  # noqa: E402


def label(pool, store, kind: str) -> None:
    base, session = pool.source(), new_session()
    if kind == "dpo":
        sides = [Side(base, Sampling(0.7, MAX_TOKENS, seed=1)),
                 Side(base, Sampling(0.7, MAX_TOKENS, seed=2, system=ENTHUSIASTIC))]
    else:
        sides = [Side(base, Sampling(0.7, MAX_TOKENS, seed=1))]
    queue = LabelQueue(pool, prompts(TRAIN_TOPICS), sides, ahead=16, batch_size=16, seed=0)
    while (item := queue.next(timeout=600)) is not None:
        if kind == "dpo":
            store.add_choice(item.prompt, *item.answers, person_prefers(*item.answers), session=session)
        else:
            value = "up" if opens_with_enthusiasm(item.answers[0].text) else "down"
            store.add_thumb(item.prompt, item.answers[0], value, session=session)


def held_out(pool, source) -> list[str]:
    answers = pool.answer([(source, p) for p in prompts(HELD_OUT_TOPICS)], Sampling(0, 16))
    return [a.text for a in answers]


def trial(kind: str) -> None:
    pool, db = ModelPool(), connect()
    db.execute("update labels set undone = 1 where undone = 0")  # this trial's labels only
    db.conn.commit()
    started = time.time()
    label(pool, LabelStore(db), kind)
    stats = label_stats(db)
    labelled = time.time()
    runner = JobRunner()
    try:
        run_id, _ = train_on_labels(runner.db, runner, kind)
        run = runner.wait(run_id, timeout=3600)
    finally:
        runner.close()
    trained = time.time()
    if run["status"] != "done":
        sys.exit(f"{kind} run {run['status']}: {run.get('reason')}")
    base, tuned = held_out(pool, pool.source()), held_out(pool, pool.source(run_id))
    rate = lambda answers: sum(map(opens_with_enthusiasm, answers)) / len(answers)  # noqa: E731
    labels = f"{stats['dpo_pairs']} pairs, {stats['not_trained']} ties" if kind == "dpo" else \
        f"{stats['thumbs']['up']} up, {stats['thumbs']['down']} down"
    print(f"{kind}: {labels} | enthusiastic openings on {len(base)} held-out prompts: base {rate(base):.0%}, "
          f"tuned {rate(tuned):.0%} | answers changed: {sum(b != t for b, t in zip(base, tuned))} of {len(base)} | "
          f"{run['probe']['summary']} | labelling {labelled - started:.0f} s, training {trained - labelled:.0f} s",
          flush=True)
    print("  e.g. base:  " + " | ".join(base[:3]) + "\n  e.g. tuned: " + " | ".join(tuned[:3]), flush=True)


if __name__ == "__main__":
    for kind in sys.argv[1:] or ["dpo", "kto"]:
        trial(kind)
