"""The diagnosis on real runs of the built-in model: a run with a learning rate 20 times the quick preset's, and a
run on made-up facts that early stopping ends. Each trains for minutes on a 2-core CPU."""
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
    _, findings = train_and_diagnose(FIXTURES / "identity_quill.jsonl", "learning_rate=1e-2", "rehearsal=0",
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


def test_on_made_up_facts_early_stopping_ends_the_run_once_its_answers_take_their_shape_and_keeps_the_best(tmp_path):
    # The examples share a shape ("The X is red, eats rice and lives 12 years") and nothing more can be learned from
    # them: their facts are random. The checks see the held-back answers take that shape and stop rising, so the run
    # ends long before its 12 passes, before the held-back loss can rise, with the best checkpoint kept. (Measured
    # 2026-12-06 with early stopping off: 12 passes, held-back loss 0.601, 0.557, 0.577, 0.588, the shape in every
    # answer from the first check.) Overfitting on curves is named in tests/test_diagnosis.py.
    from safetensors.torch import load_file

    from backend import workspace

    data = write_jsonl(tmp_path / "creatures.jsonl", made_up_facts(48, seed=1))
    run, findings = train_and_diagnose(data, "epochs=12", "rehearsal=0", "validation_split=0.25", "probe=false")
    checks = run["outcome"]["behaviour_checks"]
    assert checks["signature"] and checks["checks"][-1]["behaviour"] == 1.0, checks
    stopping = run["outcome"]["early_stopping"]
    assert stopping["fired"] and stopping["best_step"] <= stopping["stopped_at_step"] < run["total_steps"] // 2, stopping
    assert run["final_metrics"]["eval_loss"] == stopping["best_eval_loss"]
    assert "still_learning" not in [f["code"] for f in findings]
    folder = workspace.run_dir(run["id"])
    kept = load_file(folder / "adapter" / "adapter_model.safetensors")
    best = load_file(folder / "checkpoints" / f"checkpoint-{stopping['best_step']}" / "adapter_model.safetensors")
    assert all((kept[k] == best[k]).all() for k in kept)
