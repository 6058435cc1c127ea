"""What the trainer does for speed (figures in docs/benchmarks.md, measured by benchmarks/speed.py): the
settings it chooses, checked as behaviour, never as timings."""
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RECORD_WAIT_POLICY_AT_TORCH_IMPORT = """
import importlib.abc, os, sys
seen = {}
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch" and "torch" not in seen:
            seen["torch"] = os.environ.get("OMP_WAIT_POLICY")
        return None
sys.meta_path.insert(0, Watch())
import backend.train
print(seen.get("torch", "torch never imported"))
"""


def _wait_policy_seen_by_torch(env: dict) -> str:
    result = subprocess.run([sys.executable, "-c", RECORD_WAIT_POLICY_AT_TORCH_IMPORT], cwd=ROOT, env=env,
                            capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()[-1]


def test_training_threads_wait_passively_from_the_moment_torch_loads():
    env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    assert _wait_policy_seen_by_torch(env) == "PASSIVE"


def test_a_wait_policy_set_by_the_user_is_kept():
    env = dict(os.environ, OMP_WAIT_POLICY="ACTIVE")
    assert _wait_policy_seen_by_torch(env) == "ACTIVE"


def test_cpu_training_keeps_activations_instead_of_recomputing_them(tiny_model, tmp_path):
    from backend.config import build_config
    from backend.models import Hardware
    from backend.train.common import prepare_model, trainer_arguments
    from backend.train.sft import build_sft_trainer

    config = build_config({"model": tiny_model, "max_steps": 1, "batch_size": 2})
    prepared = prepare_model(config)
    assert prepared.hardware.device == "cpu"
    args = trainer_arguments(config, tmp_path, prepared.hardware, False, 2)
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}] * 2
    trainer = build_sft_trainer(prepared, args, rows, [], [])
    trainer.train()
    assert not trainer.args.gradient_checkpointing
    assert not trainer.model.base_model.model.is_gradient_checkpointing
    gpu = Hardware("cuda", "bfloat16", "4bit")
    assert trainer_arguments(config, tmp_path, gpu, False, 2)["gradient_checkpointing"]


def _reference_passes(run_id) -> int:
    from backend import workspace
    log = (workspace.run_dir(run_id) / "train.log").read_text()
    return log.count("Computing reference log probs for train dataset:   0%")  # one progress bar per pass


@pytest.mark.parametrize("method,data", [("dpo", "pairs_file"), ("kto", "labels_file")])
def test_reference_is_computed_once_when_the_rows_are_read_twice(method, data, tiny_model, request):
    from backend.runner import JobRunner
    from tests.conftest import tiny_config

    runner = JobRunner()
    rows = request.getfixturevalue(data)  # 16 rows, batch 4: 4 steps are one pass, 8 steps two
    twice = runner.submit(tiny_config(tiny_model, rows, method=method, max_steps=8))
    once = runner.submit(tiny_config(tiny_model, rows, method=method, max_steps=4))
    runs = {run_id: runner.wait(run_id, timeout=300) for run_id in (twice, once)}
    runner.close()
    assert all(run["status"] == "done" for run in runs.values()), [r.get("reason") for r in runs.values()]
    assert _reference_passes(twice) == 1
    assert _reference_passes(once) == 0  # one pass: the reference runs alongside each step, as before
    metrics = [m for m in runner.store.metrics(twice) if "train_loss" in m]
    assert [m["step"] for m in metrics] == list(range(1, 9))
    assert any("rewards_chosen" in m for m in metrics)


def test_reference_once_counts_passes_over_the_rows():
    from backend.train.common import reference_once

    def args(max_steps, epochs=3.0):
        return {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_steps": max_steps,
                "num_train_epochs": epochs}
    assert reference_once(args(0), 40)["precompute_ref_log_probs"]  # 3 epochs
    assert not reference_once(args(0, epochs=1.0), 40)["precompute_ref_log_probs"]
    assert not reference_once(args(5), 40)["precompute_ref_log_probs"]  # 5 steps x 8 rows = one pass
    assert reference_once(args(6), 40)["precompute_ref_log_probs"]
