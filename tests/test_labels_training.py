"""One step from labels to a run: thumbs become a stored KTO dataset, A/B choices a DPO dataset, and the run
trains on top of the run whose answers were judged (tiny model: seconds)."""
import pytest

from backend import workspace
from backend.answers import Answer, Sampling, Source
from backend.data import DatasetStore
from backend.db import connect
from backend.errors import ConfigError, ModelError
from backend.labels import LabelStore, labels_to_dataset, train_on_labels
from backend.runner import JobRunner
from tests.fake_runs import fake_run

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


def test_the_run_uses_the_split_that_was_stored(tiny_model):
    give_labels(fake_run(tiny_model), tiny_model)
    runner = JobRunner()
    try:
        run_id, dataset = train_on_labels(runner.db, runner, "kto", overrides=dict(TINY, validation_split=0.25))
        run = runner.wait(run_id, timeout=300)
    finally:
        runner.close()
    assert run["status"] == "done", run.get("reason")
    stored = DatasetStore(runner.db)
    held_back = stored.rows(dataset, "validation")
    assert len(held_back) == 3 and len(stored.rows(dataset, "train")) == 9  # 12 thumbs, a quarter held back
    log = (workspace.run_dir(run_id) / "train.log").read_text()
    assert "Training KTO on 9 examples (3 held out)" in log


@pytest.mark.parametrize("kind", ["kto", "dpo"])
def test_training_on_labels_builds_on_the_judged_run(tiny_model, kind):
    judged = fake_run(tiny_model)
    give_labels(judged, tiny_model)
    runner = JobRunner()
    try:
        run_id, dataset = train_on_labels(runner.db, runner, kind, overrides=TINY)
        run = runner.wait(run_id, timeout=300)
    finally:
        runner.close()
    assert run["status"] == "done", run.get("reason")
    assert (run["method"], run["base_run"], run["dataset"]) == (kind, judged, dataset)
    assert run["config"]["model"] == tiny_model
    assert run["final_metrics"]["steps"] == 3


def test_labels_train_from_the_command_line(tiny_model):
    from tests.test_cli import app, last_json
    judged = fake_run(tiny_model)
    give_labels(judged, tiny_model)
    settings = [arg for key, value in TINY.items() for arg in ("--set", f"{key}={value}")]
    result = app("labels", "train", "--kind", "dpo", *settings, "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    assert summary["status"] == "done" and summary["metrics"]["steps"] == 3
    assert "on dataset 'labels-dpo-" in result.stderr
