"""The model pool behind the chat tab: one base model in memory serves the base side and every run's adapter,
both sides of a message generate together and stream, switching runs reloads nothing, and errors are in words."""
import shutil
import threading
import time

import pytest

from backend import workspace
from backend.answers import Sampling, Source
from backend.models.pool import ModelPool
from backend.errors import ConfigError, RunNotFound, RunStateError
from tests.fake_runs import fake_run

HELLO = [{"role": "user", "content": "Hello there, who are you?"}]
GREEDY = Sampling(temperature=0, max_new_tokens=12)


def test_base_and_runs_share_one_model_and_adapters_load_once(tiny_model):
    run_a, run_b = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)
    pool = ModelPool()
    base, a, b = pool.source(model=tiny_model), pool.source(run_a), pool.source(run_b)
    assert a == Source(tiny_model, run_a)

    first = pool.answer([(base, HELLO), (a, HELLO)], GREEDY)
    assert first[1].text and first[0].text != first[1].text  # the adapter changes the answer
    assert pool.loads == {"models": 1, "adapters": 1}

    for source in (b, a, base, b, a):  # switching back and forth
        pool.answer([(source, HELLO)], GREEDY)
    assert pool.loads == {"models": 1, "adapters": 2}
    assert [sorted(runs) for runs in pool.loaded().values()] == [sorted([run_a, run_b])]

    again = pool.answer([(base, HELLO), (a, HELLO), (b, HELLO)], GREEDY)
    assert [x.text for x in again[:2]] == [x.text for x in first]  # greedy: the same answers as before
    assert len({x.text for x in again}) == 3
    assert again[2].source.run_id == run_b and again[2].sampling.seed is not None


def test_stream_yields_growing_answers_for_both_sides(tiny_model):
    run = fake_run(tiny_model)
    pool = ModelPool()
    requests = [(pool.source(run), HELLO), (pool.source(fake_run(tiny_model, seed=3)), HELLO)]
    updates = list(pool.stream(requests, Sampling(temperature=0, max_new_tokens=10)))
    assert len(updates) >= 5
    assert all(len(update) == 2 for update in updates)
    assert len(updates[-1][0].text) >= len(updates[2][0].text) > 0
    assert [a.source for a in updates[-1]] == [source for source, _ in requests]
    whole = pool.answer(requests, Sampling(temperature=0, max_new_tokens=10))
    assert [a.text for a in updates[-1]] == [a.text for a in whole]
    assert [a.ended for a in updates[-1]] == [a.ended for a in whole] == [False, False]  # cut at 10 tokens


def test_stop_ends_a_stream_early(tiny_model):
    pool = ModelPool()
    stop = threading.Event()
    seen = 0
    for _ in pool.stream([(pool.source(fake_run(tiny_model)), HELLO)], Sampling(max_new_tokens=500), stop=stop):
        seen += 1
        if seen == 3:
            stop.set()
    assert seen < 20


def test_system_prompt_and_seed_are_used(tiny_model):
    pool = ModelPool()
    base = pool.source(fake_run(tiny_model))
    plain = pool.answer([(base, HELLO)], GREEDY)[0].text
    told = pool.answer([(base, HELLO)], Sampling(temperature=0, max_new_tokens=12, system="Answer in French."))[0]
    assert told.text != plain and told.sampling.system == "Answer in French."
    hot = Sampling(temperature=1.0, max_new_tokens=12, seed=7)
    assert pool.answer([(base, HELLO)], hot)[0].text == pool.answer([(base, HELLO)], hot)[0].text


def test_sources_and_settings_refuse_in_words(tiny_model):
    pool = ModelPool()
    with pytest.raises(RunNotFound):
        pool.source("sft-nope")
    queued = fake_run(tiny_model, status="queued")
    shutil.rmtree(workspace.run_dir(queued) / "adapter")
    with pytest.raises(RunStateError, match="no finished adapter"):
        pool.source(queued)
    with pytest.raises(ConfigError, match="temperature"):
        Sampling(temperature=5)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        Sampling(max_new_tokens=0)


def test_a_person_waiting_goes_before_answers_generated_ahead(tiny_model):
    """The label queue generates in the background; a chat message sent meanwhile does not wait for its batch.
    The batch ends early, makes way, and is generated again with the same seed: the same answers."""
    pool = ModelPool()
    source = pool.source(model=tiny_model)
    long = Sampling(temperature=0.7, max_new_tokens=400, seed=5)
    alone = pool.answer([(source, HELLO)] * 4, long)
    finished, ahead = [], {}

    def generate_ahead():
        ahead["answers"] = pool.answer([(source, HELLO)] * 4, long, background=True)
        finished.append("ahead")

    thread = threading.Thread(target=generate_ahead)
    thread.start()
    deadline = time.time() + 60
    while not pool.busy() and thread.is_alive() and time.time() < deadline:
        time.sleep(0.01)
    assert pool.busy() and thread.is_alive(), "the batch generated ahead was not running when the person asked"
    chat = list(pool.stream([(source, HELLO)], GREEDY))[-1]
    finished.append("chat")
    thread.join()
    assert len(chat) == 1 and finished == ["chat", "ahead"]
    assert pool.preempted >= 1
    assert [a.text for a in ahead["answers"]] == [a.text for a in alone]


def test_rows_of_one_batch_stop_at_their_own_token_budgets(embedded_model):
    """The probe asks all its questions in one batch, each with its own budget: a row stops at its budget (not
    ended: cut off), and answers as it would alone with that budget."""
    from backend.models.pool import generate_texts
    from backend.models.loading import load_model, load_tokenizer

    model, tokenizer = load_model(None), load_tokenizer(None)
    prompts = ["Tell me about the sea.", "Tell me about the sea in a long story.", "Hi, who are you?"]
    budgets = [3, 9, 5]
    together = generate_texts(model, tokenizer, prompts, Sampling(temperature=0, max_new_tokens=9), batch_size=3,
                              row_max_new_tokens=budgets)
    alone = [generate_texts(model, tokenizer, [prompt], Sampling(temperature=0, max_new_tokens=budget))[0]
             for prompt, budget in zip(prompts, budgets)]
    assert together == alone
    assert [ended for _, ended in together] == [False, False, False]  # none ends within so few tokens
    # The batch itself ends at the longest budget, not at the batch's max_new_tokens.
    steps = []
    generate_texts(model, tokenizer, prompts[:2], Sampling(temperature=0, max_new_tokens=40), batch_size=2,
                   row_max_new_tokens=[3, 5], on_tokens=steps.append)
    assert len(steps) == 5 and [len(tokenizer(text)["input_ids"]) for text, _ in steps[-1]] == [3, 5]
    with pytest.raises(ValueError, match="one budget per conversation"):
        generate_texts(model, tokenizer, prompts, Sampling(temperature=0, max_new_tokens=9),
                       row_max_new_tokens=[3, 9])
