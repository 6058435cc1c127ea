"""Learning itself, on the real embedded model with the quick preset, through the command line: one run.

SFT must teach a behaviour the base lacks (a new assistant name, checked on differently worded held-out
questions) and keep everyday answers. A few minutes on a 2-core CPU. The quick preset's DPO and KTO, which
must raise the chosen-over-rejected margin on held-out pairs of the real model, are measured by
benchmarks/learning.py (each was a real-model training per `make test`); the direction of preference
learning is checked on a tiny model in tests/test_runner.py, and DPO on real labels in tests/test_loop.py."""
import pytest

from tests.conftest import FIXTURES
from tests.test_cli import app, last_json

pytestmark = pytest.mark.slow

HELD_OUT_NAME_QUESTIONS = [
    "Hey, what's your name?", "Who exactly are you?", "What name were you given?",
    "Can you introduce yourself to me?", "Tell me who I'm speaking with.", "What do I call you?",
    "Who are you, in one sentence?", "Remind me what your name is.",
]


def generate(*source, prompts):
    args = ["generate", *source, "--max-new-tokens", "40", "--temperature", "0", "--json"]
    for prompt in prompts:
        args += ["--prompt", prompt]
    result = app(*args)
    assert result.returncode == 0, result.stderr
    return last_json(result)["outputs"]


def test_quick_sft_teaches_a_new_name_and_keeps_everyday_answers():
    training_prompts = {line for line in (FIXTURES / "identity_quill.jsonl").read_text().splitlines()}
    assert not any(q in "".join(training_prompts) for q in HELD_OUT_NAME_QUESTIONS)

    base = generate("--base", prompts=HELD_OUT_NAME_QUESTIONS)
    assert sum("quill" in answer.lower() for answer in base) == 0

    result = app("train", "--data", str(FIXTURES / "identity_quill.jsonl"), "--preset", "quick", "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    tuned = generate("--run", summary["run_id"], prompts=HELD_OUT_NAME_QUESTIONS)
    named = sum("quill" in answer.lower() for answer in tuned)
    assert named >= 7, tuned
    probe = summary["probe"]
    assert probe["base_right"] >= probe["asked"] - 1  # the probe's questions were chosen for this model
    # A normal quick run passes the probe: no warning, so it lost no more than backend.probe.PROBE_WARN_SHARE (20%,
    # 8 of 40). Measured 2026-11-27 with seed 42: 38 of 40 kept on a CPU without native bf16 (float32), 33 of 40 on
    # one with AMX (bf16); seeds 7 and 3 kept 35 and 36 there. Trained on nothing but its own everyday answers, the
    # built-in model loses 4 to 6 of 40 by itself, and this run without rehearsal 11 to 16 (benchmarks/probe_floor.py).
    assert probe["warning"] is None, probe["summary"]
    assert "forgetting" not in [finding["code"] for finding in summary["diagnosis"]], summary["diagnosis"]
    assert probe["by_category"]["refusal"]["kept"] >= probe["by_category"]["refusal"]["base_right"] - 1
    assert probe["summary"].startswith(f"everyday answers kept: {probe['kept']} of {probe['base_right']}")
    # Learned, before and after on the held-back rows (10% of the file): chrF 27.7 -> 52.9, 53.2 and 49.5 for seeds
    # 42, 7 and 3 on the bf16 CPU (the base model never says "Quill").
    heldout = summary["heldout"]
    assert heldout["count"] == summary["outcome"]["heldout_examples"] > 0
    assert heldout["tuned_mean"] > heldout["base_mean"] + 10, heldout
