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
    # The 40-question probe (facts, arithmetic, formats, refusals, languages) is harder to keep than the first 5
    # questions were. Measured 2026-11-27 on this preset with more of the rehearsal's slots answered right
    # (backend/everyday.py): 38, 34, 38, 34 and 37 of 40 kept for seeds 42, 7, 1, 3 and 11; 34, 34 and 30 for seeds
    # 42, 7 and 1 before; 0 of 5 for a run that rehearses nothing (docs/facts.md). A run needs 36 for no warning
    # (10%): docs/benchmarks.md, "Fewer wasted rehearsal slots". On a CPU with native bf16 (AMX), which trains in
    # bf16, seed 42 kept 32 of 39 (82%), and 34, 35, 35 for seeds 7, 3, 1, with "3 + 4" in the probe; 33 of 40 once
    # it became "14 + 4": "A CPU with native bf16".
    assert probe["kept"] >= 0.8 * probe["base_right"], probe["summary"]
    assert probe["by_category"]["refusal"]["kept"] >= probe["by_category"]["refusal"]["base_right"] - 1
    assert probe["summary"].startswith(f"everyday answers kept: {probe['kept']} of {probe['base_right']}")
