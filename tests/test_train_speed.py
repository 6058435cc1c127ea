"""What the trainer does for speed (figures in docs/benchmarks.md, measured by benchmarks/speed.py): the
settings it chooses, checked as behaviour, never as timings."""
import os
import subprocess
import sys
from pathlib import Path

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
