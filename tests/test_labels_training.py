"""One step from labels to a run: thumbs become a stored KTO dataset, A/B choices a DPO dataset, and the run
trains on top of the run whose answers were judged (tiny model: seconds). One run per kind, trained once for the
module, is read by the tests that check it."""
from types import SimpleNamespace

import pytest

from backend import workspace
from backend.answers import Answer, Sampling, Source
from backend.data import DatasetStore
from backend.db import connect
from backend.errors import ConfigError, ModelError
from backend.labels import LabelStore, labels_to_dataset, train_on_labels
from backend.jobs.runner import JobRunner
from backend.runs import RunStore
from tests.conftest import use_home
from tests.fake_runs import fake_run
from tests.test_cli import app, last_json

TINY = dict(max_steps=3, batch_size=4, learning_rate=1e-3, probe=False, validation_split=0.0, max_length=128)


def give_labels(run_id, model):
    store = LabelStore(connect())
    source = Source(model, run_id)
    for i in range(12):
        prompt = [{"role": "user", "content": f"Greet person {i}."}]
        good = Answer(f"Hello, person {i}! Nice to meet you.", source, Sampling(seed=i))
        bad = Answer("Go away.", source, Sampling(seed=100 + i))
        store.add_thumb(prompt, good if i % 2 else bad, "up" if i % 2 else "down", origin="label")
        store.add_choice(prompt, bad, good, "right", origin="label")
    store.add_choice([{"role": "user", "content": "Tie?"}], good, bad, "tie")


def test_labels_become_a_stored_dataset_in_trls_format(tiny_model):
    give_labels(fake_run(tiny_model), tiny_model)
    db = connect()
    name = labels_to_dataset(db, "dpo")
    info = DatasetStore(db).get(name)
    assert (info["kind"], info["valid_rows"]) == ("dpo", 12)  # the tie makes no pair
    assert name.startswith("labels-dpo-") and info["source"].startswith("labels: A/B choices")
    assert labels_to_dataset(db, "dpo") != name  # a second export gets its own name
    assert not (workspace.home() / "labels").exists()  # straight from the labels: no file written and read back


def test_a_bad_setting_leaves_no_dataset_and_no_run_behind(tiny_model):
    give_labels(fake_run(tiny_model), tiny_model)
    runner = JobRunner()
    try:
        before = (len(DatasetStore(runner.db).list()), len(runner.store.list()))
        with pytest.raises(ConfigError, match="learning_rate"):
            train_on_labels(runner.db, runner, "kto", overrides=dict(TINY, learning_rate="fast"))
        with pytest.raises(ModelError):
            train_on_labels(runner.db, runner, "kto", overrides=dict(TINY, model="/no/such/model"))
        assert (len(DatasetStore(runner.db).list()), len(runner.store.list())) == before
    finally:
        runner.close()


def test_the_command_line_says_how_many_labels_are_useful_and_trains_on_fewer_only_when_told(tiny_model):
    """`labels train` started on 8 pairs without a word (the Label tab now asks again; so does the command)."""
    give_labels(fake_run(tiny_model), tiny_model)  # 12 pairs
    settings = [arg for key, value in dict(TINY, batch_size=8).items() for arg in ("--set", f"{key}={value}")]
    refused = app("labels", "train", "--kind", "dpo", *settings)
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert refused.stderr.strip() == ("Error: DPO: 12 pairs; the 'quick' preset learns from at least 24 (with 12, "
                                      "each pass over them makes 1.5 updates of 8 pairs, fewer than 3: too few to "
                                      "learn from). Label more answers, or add --anyway to train on these.")
    assert RunStore(connect()).list()[0]["method"] != "dpo"  # only the judged run: nothing queued
    told = app("labels", "train", "--kind", "dpo", *settings, "--anyway", "--json")
    assert told.returncode == 0, told.stderr
    assert "DPO: 12 pairs; the 'quick' preset learns from at least 24" in told.stderr


@pytest.fixture(scope="module")
def trained(module_home, tiny_model):
    """Labels on a judged run, then one run per kind, each trained once and read by several tests: KTO on the
    thumbs through the runner (a quarter held back), DPO on the choices from the command line."""
    judged = fake_run(tiny_model)
    give_labels(judged, tiny_model)
    runner = JobRunner()
    try:
        run_id, dataset = train_on_labels(runner.db, runner, "kto", overrides=dict(TINY, validation_split=0.25))
        kto = runner.wait(run_id, timeout=600)
    finally:
        runner.close()
    settings = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    command_line = app("labels", "train", "--kind", "dpo", *settings, "--json")
    assert command_line.returncode == 0, command_line.stderr
    dpo = RunStore(connect()).get(last_json(command_line)["run_id"])
    return SimpleNamespace(home=module_home, judged=judged, runs={"kto": kto, "dpo": dpo},
                           datasets={"kto": dataset, "dpo": dpo["dataset"]}, command_line=command_line)


@pytest.fixture
def runs(trained, monkeypatch):
    use_home(monkeypatch, trained.home)
    return trained


def test_the_run_uses_the_split_that_was_stored(runs):
    run = runs.runs["kto"]
    assert run["status"] == "done", run.get("reason")
    stored = DatasetStore(connect())
    held_back = stored.rows(runs.datasets["kto"], "validation")
    assert len(held_back) == 3  # 12 thumbs, a quarter held back
    assert len(stored.rows(runs.datasets["kto"], "train")) == 9
    log = (workspace.run_dir(run["id"]) / "train.log").read_text()
    assert "Training KTO on 9 examples (3 held out)" in log


@pytest.mark.parametrize("kind", ["kto", "dpo"])
def test_training_on_labels_builds_on_the_judged_run(runs, tiny_model, kind):
    run = runs.runs[kind]
    assert run["status"] == "done", run.get("reason")
    assert (run["method"], run["base_run"], run["dataset"]) == (kind, runs.judged, runs.datasets[kind])
    assert DatasetStore(connect()).get(runs.datasets[kind])["kind"] == kind
    assert run["config"]["model"] == tiny_model
    assert run["final_metrics"]["steps"] == 3


def test_labels_train_from_the_command_line(runs):
    summary = last_json(runs.command_line)
    assert summary["status"] == "done" and summary["metrics"]["steps"] == 3
    assert f"on dataset '{runs.datasets['dpo']}'" in runs.command_line.stderr
    assert runs.datasets["dpo"].startswith("labels-dpo-")


def test_the_useful_number_of_labels_is_where_the_diagnosis_stops_saying_too_few():
    """The Label tab's "the 'quick' preset learns from at least N" is the rule by which a finished run's diagnosis
    says "Too few examples for these settings" (issue 26, item 5), after the rows held back to check learning."""
    from backend.data.stats import make_split
    from backend.evaluation.diagnosis import diagnose
    from backend.labels import readiness
    from backend.presets import config_from_preset
    for preset in ("quick", "balanced", "thorough"):
        ready = readiness(connect(), "dpo", preset)
        config = config_from_preset(preset, "dpo", {"dataset": "labels"}).to_dict()

        def too_few(pairs: int) -> bool:
            trained_on = len(make_split(pairs, 0, config["validation_split"])["train"])
            return "too_few_examples" in {finding["code"] for finding in diagnose([], None, config, trained_on)}
        assert too_few(ready.useful - 1) and not too_few(ready.useful), preset
    assert readiness(connect(), "dpo", "quick").words() == \
        "DPO: no pairs yet; the 'quick' preset learns from at least 27."
