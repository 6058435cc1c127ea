"""Learning itself, on the real embedded model with the quick preset, through the command line.

SFT must teach a behaviour the base lacks (a new assistant name, checked on differently worded
held-out questions) and keep everyday answers; DPO and KTO must raise the chosen-over-rejected margin
on held-out pairs. These take minutes each on a 2-core CPU."""
import pytest

from tests.conftest import FIXTURES, write_jsonl
from tests.preference_data import HELD_OUT_TOPICS, TRAIN_TOPICS, dpo_rows, held_out_pairs, kto_rows
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
    assert probe["kept"] >= 0.8 * probe["base_right"], probe["items"]
    assert probe["summary"].startswith(f"everyday answers kept: {probe['kept']} of {probe['base_right']}")


def held_out_margin(run_id=None):
    from backend import workspace
    from tests.conftest import model_with_adapter
    from tests.scoring import preference_margins

    adapter = workspace.run_dir(run_id) / "adapter" if run_id else None
    model, tokenizer = model_with_adapter(None, adapter)
    return preference_margins(model, tokenizer, held_out_pairs())


@pytest.mark.parametrize("method,rows", [("dpo", dpo_rows), ("kto", kto_rows)])
def test_quick_preference_training_raises_the_held_out_margin(method, rows, tmp_path):
    assert not set(TRAIN_TOPICS) & set(HELD_OUT_TOPICS)
    data = write_jsonl(tmp_path / f"{method}.jsonl", rows(TRAIN_TOPICS))
    result = app("train", "--data", str(data), "--preset", "quick", "--json")
    assert result.returncode == 0, result.stderr
    summary = last_json(result)
    assert summary["status"] == "done"

    base = held_out_margin()
    tuned = held_out_margin(summary["run_id"])
    mean = lambda values: sum(values) / len(values)
    assert mean(tuned) > mean(base) + 1.0, (base, tuned)  # chosen gained over rejected, in log-probability
    raised = sum(t > b for t, b in zip(tuned, base))
    assert raised >= 0.9 * len(base), (base, tuned)
    assert summary["probe"]["kept"] >= 0.8 * summary["probe"]["base_right"]
