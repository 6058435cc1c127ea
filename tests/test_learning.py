"""Learning itself, on the real embedded model with the quick preset, through the command line: one run of one task
of the suite built from data nobody on the project wrote (benchmarks/tasks.py; the rest of the suite lives there).

SFT must teach the behaviour on reworded questions never in the file, every part of it (here: it refuses, and names
the policy),
keep everyday answers under the strict probe, and the report card's verdict must say what the rule says. A few
minutes on a 2-core CPU. The quick preset's DPO and KTO, which must raise the chosen-over-rejected margin on
held-out pairs of the real model, are measured by benchmarks/learning.py; the direction of preference learning is
checked on a tiny model in tests/test_runner.py, and DPO on real labels in tests/test_loop.py."""
import pytest

from tests.test_cli import app, last_json

pytestmark = pytest.mark.slow

# A no-code refusal policy on LLaMA-Factory's alpaca_en_demo.json programming requests (43 rows): every run measured
# learns it (refuses and names the policy in 8 of 8 held-out answers: seeds 42, 7 and 3 at one thread, seed 42 at
# two) and its report card says "Learned" every time, so this test fails only when learning or the card breaks. It
# trained identity_tobrin seed 7 before: the rule passes on every run measured, but the card's questions in other
# words passed at two threads in the eighth session and failed at one and at two in the ninth ("我是 Halvexa，由 Halvexa
# 开发的"), a run at the card's edge (docs/benchmarks.md, "The whole suite at one commit"). The identity path's check in other words is tested on a tiny model (tests/test_reworded.py).
TASK = "refusal_code"
SEED = "42"


def generate(*source, prompts):
    args = ["generate", *source, "--max-new-tokens", "64", "--temperature", "0", "--json"]
    for prompt in prompts:
        args += ["--prompt", prompt]
    result = app(*args)
    assert result.returncode == 0, result.stderr
    return last_json(result)["outputs"]


def test_quick_sft_learns_a_peer_identity_task_and_the_verdict_says_so(tmp_path):
    from benchmarks.tasks import LEARNED_SHARE, grade_answer, load_tasks, write_training_file

    (task,) = load_tasks([TASK])
    data, rows = write_training_file(task, tmp_path)
    assert not any(q in data.read_text() for q in task.heldout)

    def carried(answers):
        grades = [grade_answer(task, q, a) for q, a in zip(task.heldout, answers)]
        return {part: sum(g[part] for g in grades) for part in task.parts}

    # The measure fails when the thing fails: the base model neither refuses these requests nor names the policy.
    base = generate("--base", prompts=task.heldout)
    assert carried(base) == {"refuses": 0, "policy": 0}, base

    result = app("train", "--data", str(data), "--preset", "quick", "--set", f"seed={SEED}", "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    tuned = generate("--run", summary["run_id"], prompts=task.heldout)
    learned = carried(tuned)
    assert all(n >= LEARNED_SHARE * len(task.heldout) for n in learned.values()), (learned, tuned)

    # The report card agrees: it found the policy's words in the examples' answers, and says it learned them.
    behaviour = summary["heldout"]["behaviour"]
    assert {p["text"] for p in behaviour["signature"]} == {"assistant does not write", "fix or explain code"}, \
        behaviour["signature"]
    assert behaviour.get("reworded") is None  # questions about itself in other words are for examples about itself
    assert summary["verdict"]["learned"] is True, summary["verdict"]
    from backend.evaluation.diagnosis import NOT_LEARNED
    assert not [f for f in summary["diagnosis"] if f["code"] in NOT_LEARNED], summary["diagnosis"]
    # It stopped by the behaviour, at most at the preset's cap, and kept the best checkpoint.
    assert summary["outcome"]["behaviour_checks"]["checks"]
    # Kept: no forgetting warning under the strict probe (backend.evaluation.probe.PROBE_WARN_SHARE).
    probe = summary["probe"]
    assert probe["base_right"] >= probe["asked"] - 1  # the probe's questions were chosen for this model
    assert probe["warning"] is None, probe["summary"]
    assert "forgetting" not in [finding["code"] for finding in summary["diagnosis"]], summary["diagnosis"]
