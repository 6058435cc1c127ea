"""Issue 26 follow-up: the two sides of an A/B choice are named by the model that gave each and, where that is the
same, by what made them differ. A blind reveal read "A was run 'quill, quick', B was run 'quill, quick'" when one run
answered at two temperatures."""
import pytest

from backend.answers import Answer, Sampling, Source
from backend.db import connect
from backend.labels.sides import sampling_differences, side_names
from ui.common import Context


def base(text="I am SmolLM.", **sampling):
    return Answer(text, Source("smollm2", None), Sampling(**sampling))


def tuned(text="I am Quill.", run_id="run-1", **sampling):
    return Answer(text, Source("smollm2", run_id), Sampling(**sampling))


def test_the_same_run_at_two_temperatures_is_named_by_its_temperatures():
    """The reveal read "A was run 'quill, quick', B was run 'quill, quick'"."""
    from backend.runs import RunStore
    db = connect()
    store = RunStore(db)
    from tests.conftest import tiny_config
    run_id = store.create(tiny_config("smollm2", "fake.jsonl"))
    store.update(run_id, name="quill, quick")
    names = side_names(db, [tuned(run_id=run_id, temperature=0.7, seed=3), tuned(run_id=run_id, temperature=1.0,
                                                                                   seed=9)])
    assert names == ["run “quill, quick” (temperature 0.7)", "run “quill, quick” (temperature 1)"]
    assert side_names(db, [tuned(run_id=run_id), base()]) == ["run “quill, quick”", "the base model"]
    two_bases = [base(), Answer("Hi.", Source("Qwen/Qwen2.5-0.5B-Instruct", None), Sampling())]
    assert side_names(db, two_bases) == ["the base model (smollm2)", "the base model (Qwen/Qwen2.5-0.5B-Instruct)"]


@pytest.mark.parametrize("a,b,words", [
    (Sampling(seed=1), Sampling(seed=2), ["seed 1", "seed 2"]),  # only the seed differs: it is what is named
    (Sampling(temperature=0.2, seed=1), Sampling(temperature=0.2, seed=1), None),
    (Sampling(max_new_tokens=32, seed=1), Sampling(max_new_tokens=64, seed=2), ["at most 32 tokens", "at most 64 tokens"]),
    (Sampling(system="Be brief."), Sampling(), ["system prompt “Be brief.”", "no system prompt"]),
    (Sampling(temperature=0.0, system="x" * 60), Sampling(temperature=1.0, system=""),
     [f"temperature 0, system prompt “{'x' * 39}…”", "temperature 1, no system prompt"]),
])
def test_what_differs_between_two_samplings_is_named(a, b, words):
    assert sampling_differences(a, b) == words


def test_the_label_tab_names_one_run_by_its_two_temperatures(tiny_model):
    from backend.models.pool import ModelPool
    from tests.fake_runs import fake_run
    from ui import label_tab

    ctx = Context(None, ModelPool())
    run_id = fake_run(tiny_model)
    name = ctx.runs().get(run_id)["name"]
    setup = {"state": None, "prompt_from": "pasted", "dataset": None, "pasted": "Say hi.\nSay bye.", "mode": "ab",
             "source_a": run_id, "temperature_a": 0, "source_b": run_id, "temperature_b": 1.0, "system": "",
             "max_tokens": 4, "blind": True}
    session, _, _, a, b, item_id = label_tab.begin(ctx, setup)[:6]
    assert "A (left)" in a and "run" not in a + b
    temperatures = [answer.sampling.temperature for answer in session.item.answers]
    after = label_tab.judge(ctx, {"state": session, "shown": item_id}, value="left")
    assert (f"Revealed: A (left) was run “{name}” (temperature {temperatures[0]:g}), B (right) was run “{name}” "
            f"(temperature {temperatures[1]:g}).") in after[1]
    session.close()

    seen = label_tab.begin(ctx, {**setup, "pasted": "Say yes.\nSay no.", "blind": False})
    assert f"Left: run “{name}” (temperature" in seen[3] and f"Right: run “{name}” (temperature" in seen[4]
    seen[0].close()
