"""How long a run will take, before it starts (backend/models/run_time.py): the speed is this model's, measured here where a
run of it finished, else scaled by the arithmetic a token costs in it; unknown where its size is not known yet. The
walk found the preset cards saying "about 6 min" for Llama 3.1 8B as for the 135M built-in model."""
import re

import pytest

from backend.models.run_time import BUILTIN_TOKENS_PER_SECOND, Speed, training_speed, work_per_token

QWEN = "Qwen/Qwen2.5-0.5B-Instruct"
LLAMA = "meta-llama/Llama-3.1-8B-Instruct"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "models"))  # no hub model downloaded


def test_a_bigger_model_is_slower_by_the_work_a_token_costs_in_it(cache):
    builtin = training_speed("smollm2", [], "cpu")
    assert builtin == Speed(BUILTIN_TOKENS_PER_SECOND["cpu"], "typical")
    qwen, llama = training_speed(QWEN, [], "cpu"), training_speed(LLAMA, [], "cpu")
    assert qwen.basis == llama.basis == "scaled"
    assert qwen.tokens_per_second == pytest.approx(120 * work_per_token("smollm2") / work_per_token(QWEN))
    assert 120 / 8 < qwen.tokens_per_second < 120 / 2  # about 0.5B against 0.135B, with the output layers
    assert llama.tokens_per_second < qwen.tokens_per_second / 10


def test_a_speed_measured_here_wins_and_scales_to_other_models(cache):
    measured = [("smollm2", 200.0)]
    assert training_speed("smollm2", measured, "cpu") == Speed(200.0, "measured")
    scaled = training_speed(QWEN, measured, "cpu")
    assert scaled.basis == "scaled" and scaled.tokens_per_second == pytest.approx(
        200 * work_per_token("smollm2") / work_per_token(QWEN))
    assert training_speed(QWEN, [(QWEN, 31.0)] + measured, "cpu") == Speed(31.0, "measured")


def test_a_model_whose_size_is_not_known_gets_no_figure(cache):
    assert training_speed("someone/not-in-the-catalogue", [("smollm2", 200.0)], "cpu") == Speed(None, "unknown")


def test_the_preset_cards_follow_the_chosen_model(home, chat_file):
    from backend.data import DatasetStore, inspect_file
    from backend.jobs.runner import JobRunner
    from ui import train_tab
    from ui.common import Context
    from ui.settings_form import form_values
    runner = JobRunner()
    try:
        ctx = Context(runner)
        DatasetStore(ctx.db()).add(inspect_file(chat_file), name="chats")
        v = dict(form_values("quick", "sft"), dataset="chats", method="sft", preset="quick", source="builtin",
                 hub_model=None, folder="", base_run=None)

        def minutes(html: str) -> int:
            return int(re.search(r"about (\d+) min for 'chats'", html)[1])
        builtin = minutes(train_tab.on_model_cards(ctx, v))
        qwen = train_tab.on_model_cards(ctx, {**v, "source": "hub", "hub_model": QWEN})
        assert minutes(qwen) > builtin and "worked out from this model's size" in qwen
        assert minutes(train_tab.on_model_cards(ctx, {**v, "source": "hub", "hub_model": LLAMA})) > minutes(qwen)
        unknown = train_tab.on_model_cards(ctx, {**v, "source": "hub", "hub_model": "someone/else"})
        assert "unknown until the first steps" in unknown
    finally:
        runner.close(stop_current=True)


def test_the_speeds_measured_here_are_each_finished_runs_last(home):
    from backend.config import build_config
    from backend.db import connect
    from backend.models.run_time import measured_speeds
    from backend.runs import RunStore
    store = RunStore(connect())
    older, running, newer = (store.create(build_config({"dataset": "d", "model": model})) for model in
                             ("smollm2", QWEN, LLAMA))
    for run_id, speeds in ((older, [100.0, 110.0]), (running, [50.0]), (newer, [20.0, 25.0])):
        for step, speed in enumerate(speeds, 1):
            store.add_metrics(run_id, step, {"train_loss": 1.0, "tokens_per_second": speed})
        store.add_metrics(run_id, len(speeds) + 1, {"eval_loss": 1.0})  # a row without a speed comes last
    for run_id in (older, newer):
        store.set_status(run_id, "running")
        store.set_status(run_id, "done")
    store.set_status(running, "running")
    assert measured_speeds(store) == [(LLAMA, 25.0), ("smollm2", 110.0)]
