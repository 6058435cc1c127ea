"""The diagnosis on real runs of the built-in model: a run with a learning rate 20 times the quick preset's, and a
run that memorises made-up facts for many epochs. Each trains for minutes on a 2-core CPU."""
import random

import pytest

from tests.conftest import FIXTURES, write_jsonl
from tests.test_cli import app, last_json

pytestmark = pytest.mark.slow


def train_and_diagnose(data, *settings) -> list[dict]:
    from backend.data import load_examples
    from backend.db import connect
    from backend.diagnosis import diagnose
    from backend.runs import RunStore

    args = ["train", "--data", str(data), "--preset", "quick", "--json"]
    for setting in settings:
        args += ["--set", setting]
    result = app(*args)
    assert result.returncode == 0, result.stderr
    run_id = last_json(result)["run_id"]
    store = RunStore(connect())
    run = store.get(run_id)
    config = run["config"]
    _, train_rows, _ = load_examples(config["dataset"], seed=config["seed"],
                                     validation_fraction=config["validation_split"])
    return diagnose(store.metrics(run_id), run.get("probe"), config, len(train_rows))


def test_a_learning_rate_20_times_too_high_is_named():
    findings = train_and_diagnose(FIXTURES / "identity_quill.jsonl", "learning_rate=1e-2", "keep_everyday=0",
                                  "max_steps=16")
    codes = [f["code"] for f in findings]
    rate_findings = [f for f in findings if f["code"] in ("nan_loss", "diverging", "spikes")]
    assert rate_findings, findings
    assert rate_findings[0]["try_settings"]["learning_rate"] < 1e-2
    assert "learning rate" in rate_findings[0]["next_step"]
    assert "forgetting" in codes, findings  # at this rate it also overwrites everyday answers


def made_up_facts(count: int, seed: int) -> list[dict]:
    """Questions about invented creatures with arbitrary answers: the pattern can be learned, the answers only
    memorised, so the loss on held-back creatures falls at first and then rises."""
    rng = random.Random(seed)
    colours = ["red", "green", "blue", "yellow", "purple", "orange", "silver", "brown"]
    foods = ["apples", "cheese", "rice", "fish", "bread", "honey", "carrots", "nuts"]
    rows = []
    for i in range(count):
        name = "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3)).capitalize()
        rows.append({"messages": [
            {"role": "user", "content": f"Tell me about the {name}."},
            {"role": "assistant", "content": f"The {name} is {rng.choice(colours)}, eats {rng.choice(foods)} and "
                                             f"lives {rng.randint(2, 90)} years."}]})
    return rows


def test_an_overfitted_run_is_named(tmp_path):
    data = write_jsonl(tmp_path / "creatures.jsonl", made_up_facts(48, seed=1))
    findings = train_and_diagnose(data, "epochs=12", "keep_everyday=0", "validation_split=0.25", "probe=false")
    overfitting = [f for f in findings if f["code"] == "overfitting"]
    assert overfitting, findings
    assert overfitting[0]["try_settings"]["epochs"] < 12
