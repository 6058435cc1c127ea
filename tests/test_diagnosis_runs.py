"""The diagnosis on real runs of the built-in model: a run with a learning rate 20 times the quick preset's, and a
run that memorises made-up facts for many epochs. Each trains for minutes on a 2-core CPU."""
import random

import pytest

from tests.conftest import FIXTURES, write_jsonl
from tests.test_cli import app, last_json

pytestmark = pytest.mark.slow


def train_and_diagnose(data, *settings) -> tuple[dict, list[dict]]:
    """(the run record, its diagnosis as the worker stored it when the run ended)."""
    from backend.db import connect
    from backend.runs import RunStore

    args = ["train", "--data", str(data), "--preset", "quick", "--json"]
    for setting in settings:
        args += ["--set", setting]
    result = app(*args)
    assert result.returncode == 0, result.stderr
    run = RunStore(connect()).get(last_json(result)["run_id"])
    assert run["diagnosis"] is not None
    return run, run["diagnosis"]


def test_a_learning_rate_20_times_too_high_is_named():
    # early stopping off: this run is about what the curves say when they are let run
    _, findings = train_and_diagnose(FIXTURES / "identity_quill.jsonl", "learning_rate=1e-2", "keep_everyday=0",
                                     "max_steps=16", "patience=0")
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


def test_an_overfitted_run_is_named_and_early_stopping_keeps_its_best_checkpoint(tmp_path):
    from safetensors.torch import load_file

    from backend import workspace

    data = write_jsonl(tmp_path / "creatures.jsonl", made_up_facts(48, seed=1))
    run, findings = train_and_diagnose(data, "epochs=12", "keep_everyday=0", "validation_split=0.25", "probe=false")
    overfitting = [f for f in findings if f["code"] == "overfitting"]
    assert overfitting, findings
    assert overfitting[0]["try_settings"]["epochs"] < 12
    stopping = run["outcome"]["early_stopping"]  # the quick preset has patience 3
    assert stopping["fired"] and stopping["best_step"] < stopping["stopped_at_step"] < run["total_steps"], stopping
    assert overfitting[0]["next_step"].startswith(f"Early stopping already kept the adapter from step {stopping['best_step']}")
    assert run["final_metrics"]["eval_loss"] == stopping["best_eval_loss"]
    folder = workspace.run_dir(run["id"])
    kept = load_file(folder / "adapter" / "adapter_model.safetensors")
    best = load_file(folder / "checkpoints" / f"checkpoint-{stopping['best_step']}" / "adapter_model.safetensors")
    assert all((kept[k] == best[k]).all() for k in kept)
