"""What the trainer does for speed (figures in docs/benchmarks.md, measured by benchmarks/speed.py): the
settings it chooses, checked as behaviour, never as timings."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

RECORD_WAIT_POLICY_AT_TORCH_IMPORT = """
import importlib.abc, os, sys
class Watch(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "torch":
            print(os.environ.get("OMP_WAIT_POLICY"))
            raise SystemExit(0)  # seen: no need to wait for torch to load
        return None
sys.meta_path.insert(0, Watch())
import backend.train
print("torch never imported")
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
    """TRL turns gradient checkpointing on by default (each forward pass run twice); the memory plan leaves it off
    where the run fits without it, as it does for a small model on the CPU."""
    from backend.config import build_config
    from backend.train.common import prepare_model, trainer_arguments
    from backend.train.memory_plan import plan_checkpointing
    from backend.train.sft import build_sft_trainer

    config = build_config({"model": tiny_model, "max_steps": 1, "batch_size": 2})
    prepared = prepare_model(config)
    assert prepared.hardware.device == "cpu"
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"}]}] * 2
    checkpointing, why = plan_checkpointing(config, rows, prepared.tokenizer, prepared.hardware)
    assert (checkpointing, why) == (False, "")
    args = trainer_arguments(config, tmp_path, prepared.hardware, False, 2, gradient_checkpointing=checkpointing)
    trainer = build_sft_trainer(prepared, args, rows, [], [])
    trainer.train()
    assert not trainer.args.gradient_checkpointing
    assert not trainer.model.base_model.model.is_gradient_checkpointing


@pytest.mark.parametrize("method,data", [("dpo", "pairs_file"), ("kto", "labels_file")])
def test_reference_is_computed_once_when_the_rows_are_read_twice(method, data, tiny_model, tmp_path, request):
    """In this process, not through a worker: what is checked is the trainer that run_training builds."""
    from backend.config import build_config
    from backend.train.common import prepare_model, trainer_arguments
    from backend.train.dpo import build_dpo_trainer
    from backend.train.kto import build_kto_trainer

    rows = [json.loads(line) for line in request.getfixturevalue(data).read_text().splitlines()]  # 16 rows, batch 4: 4 steps are one pass, 8 steps two
    build = build_dpo_trainer if method == "dpo" else build_kto_trainer
    column = "ref_chosen_logps" if method == "dpo" else "ref_logps"
    trainers = {}
    for steps in (8, 4):
        config = build_config({"model": tiny_model, "method": method, "max_steps": steps, "batch_size": 4,
                               "lora_r": 4, "lora_alpha": 8, "max_length": 128})
        prepared = prepare_model(config)
        args = trainer_arguments(config, tmp_path / str(steps), prepared.hardware, False, len(rows),
                                 gradient_checkpointing=False)
        trainers[steps] = build(prepared, args, rows, [], [], 0.1)
    assert column in trainers[8].train_dataset.column_names  # every row carries its reference log-probability
    assert column not in trainers[4].train_dataset.column_names  # one pass: computed alongside each step, as before
    trainers[8].train()
    metrics = [m for m in trainers[8].state.log_history if "loss" in m]
    assert [m["step"] for m in metrics] == list(range(1, 9))
    assert all(m["loss"] == m["loss"] for m in metrics)  # no NaN from a missing reference


def test_reference_once_counts_passes_over_the_rows():
    from backend.train.common import reference_once

    def args(max_steps, epochs=3.0):
        return {"per_device_train_batch_size": 4, "gradient_accumulation_steps": 2, "max_steps": max_steps,
                "num_train_epochs": epochs}
    assert reference_once(args(0), 40)["precompute_ref_log_probs"]  # 3 epochs
    assert not reference_once(args(0, epochs=1.0), 40)["precompute_ref_log_probs"]
    assert not reference_once(args(5), 40)["precompute_ref_log_probs"]  # 5 steps x 8 rows = one pass
    assert reference_once(args(6), 40)["precompute_ref_log_probs"]


def test_everyday_answers_made_ahead_are_the_ones_a_run_uses(tiny_model, monkeypatch, tmp_path):
    """The web app makes the everyday answers when it starts; the first run then finds them instead of generating
    them before its first step."""
    from backend.evaluation import rehearsal
    from backend.models.loading import detect_hardware, resolve_model

    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(tmp_path / "cache"))  # a cache with no answers yet
    assert rehearsal.prepare_rehearsal(tiny_model, count=3) is True
    assert rehearsal.prepare_rehearsal(tiny_model, count=3) is False  # made once per base model

    def no_generation(*args, **kwargs):
        raise AssertionError("the answers were generated again")
    monkeypatch.setattr(rehearsal, "generate_texts", no_generation)
    quantization = detect_hardware().quantization("auto")
    key = rehearsal.rehearsal_key(resolve_model(tiny_model), quantization)
    rows = rehearsal.rehearsal_examples(None, None, key, 3)
    assert [row["messages"][0]["content"] for row in rows] == rehearsal.REHEARSAL_PROMPTS[:len(rows)]


def test_the_first_update_is_the_shortest_and_the_longest_row_comes_second():
    """The first loss point waits for the first update: it is the one of fewest tokens. The update holding the
    longest row (the Trainer's memory check) comes second, and every update is still one of the Trainer's own."""
    import torch
    from types import SimpleNamespace
    from transformers.trainer_pt_utils import LengthGroupedSampler

    from backend.train.common import step_order

    lengths = [30, 400, 35, 380, 20, 390, 25, 410, 40, 370, 15, 300, 22, 350, 18]  # 15 rows: 3 updates of 4 and 3
    args = SimpleNamespace(per_device_train_batch_size=2, world_size=1, gradient_accumulation_steps=2,
                           data_seed=7, seed=42)
    original = list(LengthGroupedSampler(4, lengths=lengths, generator=torch.Generator().manual_seed(7)))
    sampler = step_order(LengthGroupedSampler(2, lengths=lengths), args)
    order = list(sampler)
    assert sorted(order) == list(range(len(lengths))) and len(sampler) == len(lengths)

    def updates(rows):
        return [rows[i:i + 4] for i in range(0, len(rows), 4)]
    assert sorted(map(sorted, updates(order))) == sorted(map(sorted, updates(original)))  # the same updates
    whole = [u for u in updates(order) if len(u) == 4]
    tokens = [sum(lengths[i] for i in u) for u in whole]
    assert tokens[0] == min(tokens) and tokens[0] < max(tokens)
    assert lengths.index(max(lengths)) in updates(order)[1]  # the Trainer's longest-first, one update later
    assert original.index(lengths.index(max(lengths))) == 0
    assert list(step_order(LengthGroupedSampler(2, lengths=lengths), args)) == order  # the same every time
    assert len(updates(order)[-1]) == 3  # the short last update stays last: updates are never cut differently


def test_the_lm_head_scores_only_the_positions_that_have_a_label(tiny_model, monkeypatch):
    """On the CPU, TRL's fused LM head projected every position (prompt and padding too) through the 49,152-wide
    head and again in the backward pass; now only the positions with a label, as on a GPU: the same log-probabilities
    and gradients, from fewer rows (backend/train/lm_head.py; 6 quick-preset updates 52.7 s -> 39.5 s)."""
    import torch
    import trl.trainer.utils as trl_utils
    from transformers import AutoModelForCausalLM

    from backend.train import lm_head

    from trl.kernels.chunked_logprob import _use_triton as every_position  # TRL's own choice: False on the CPU
    assert lm_head.score_labelled_positions_only()  # the switch this relies on is still in this TRL
    labelled_only = trl_utils._use_triton
    assert labelled_only(torch.device("cpu")) and not every_position(torch.device("cpu"))
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    trl_utils.add_fused_lm_head(model, outputs=("log_probs", "is_top1"))
    input_ids = torch.randint(0, 200, (2, 12), generator=torch.Generator().manual_seed(0))
    labels = input_ids.clone()
    labels[:, :8] = -100  # the prompt
    labels[1, 10:] = -100  # padding
    scored = []
    apply = trl_utils._ChunkedLogProbFunction.apply
    monkeypatch.setattr(trl_utils._ChunkedLogProbFunction, "apply",
                        lambda hidden, *rest: scored.append(hidden.shape[0]) or apply(hidden, *rest))

    def run(choice):
        monkeypatch.setattr(trl_utils, "_use_triton", choice)
        model.zero_grad()
        out = model(input_ids=input_ids, labels=labels, fused_lm_head=True)
        out.loss.backward()
        return out.log_probs.detach(), out.is_top1, model.lm_head.weight.grad.clone()

    full, compact = run(every_position), run(labelled_only)
    assert scored == [2 * 11, 4 + 2]  # every next-token position, then only the labelled ones
    torch.testing.assert_close(full[0], compact[0], rtol=0, atol=1e-6)  # log-probabilities (equal here)
    assert torch.equal(full[1], compact[1])  # top-1 flags
    # the head's gradient: the same sums over fewer zero rows, so only float rounding (measured 3e-6 of 0.68)
    assert (full[2] - compact[2]).abs().max() <= 1e-5 * full[2].abs().max()


def test_every_run_turns_on_the_labelled_positions_only_head(tiny_model, chat_file, tmp_path, monkeypatch):
    """run_training switches it on for every method, before the trainer is built: with TRL's own choice put back
    first, one tiny run leaves it on."""
    import torch
    import trl.trainer.utils as trl_utils
    from trl.kernels.chunked_logprob import _use_triton as every_position

    from backend.train import run_training
    from tests.conftest import tiny_config

    monkeypatch.setattr(trl_utils, "_use_triton", every_position)
    rows = [json.loads(line) for line in chat_file.read_text().splitlines() if line.strip()]
    run_training(tiny_config(tiny_model, chat_file, max_steps=1), tmp_path / "run", rows, [],
                 on_metrics=lambda *a: None, on_total_steps=lambda *a: None, log=lambda *a: None)
    assert trl_utils._use_triton(torch.device("cpu"))
