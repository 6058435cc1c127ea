"""After a run ends, the worker checks it (probe, held-back examples before and after, diagnosis) and keeps the
results with the run; `runs --json` and the model card report them. One tiny run serves the whole module."""
import json

import pytest

from backend.answers import Answer, Sampling, Source
from tests.conftest import tiny_config, write_jsonl


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny_model):
    """(home, run_id): one finished tiny run with a held-back share and early stopping on, in a home of its own. The probe is off here
    (40 questions cost a minute on a busy 2-core machine even for the tiny model; tests/test_probe.py covers it)."""
    from backend.jobs.runner import JobRunner

    home = tmp_path_factory.mktemp("checked-home")
    rows = [{"messages": [{"role": "user", "content": f"Say hello number {i}."},
                          {"role": "assistant", "content": f"Hello number {i}!"}]} for i in range(24)]
    data = write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", rows)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELOOP_HOME", str(home))
        runner = JobRunner()
        run_id = runner.submit(tiny_config(tiny_model, data, validation_split=0.25, max_steps=6, patience=2))
        run = runner.wait(run_id, timeout=600)
        runner.close()
    assert run["status"] == "done", run.get("reason")
    return home, run_id


@pytest.fixture
def run(trained, monkeypatch):
    from backend.db import connect
    from backend.runs import RunStore

    home, run_id = trained
    monkeypatch.setenv("TUNELOOP_HOME", str(home))
    db = connect()
    with db.atomic():
        db.execute("delete from labels")  # each test casts its own votes
    return RunStore(db).get(run_id)


def test_the_run_keeps_its_held_back_scores_before_and_after(run):
    heldout = run["heldout"]
    assert heldout["metric"] == "chrF" and heldout["count"] == 6 == run["outcome"]["heldout_examples"]
    for example in heldout["examples"]:
        assert example["reference"].startswith("Hello number ")
        assert 0 <= example["base_score"] <= 100 and 0 <= example["tuned_score"] <= 100
    assert heldout["tuned_mean"] == pytest.approx(sum(e["tuned_score"] for e in heldout["examples"]) / 6, abs=0.01)


def test_the_checks_after_training_are_recorded_as_their_own_phase(run):
    """Progress showed the minutes of checks after training as "Step 32 of 32 · about 0 s left"; each check now
    records a row when it begins (the probe is off in this run: one check)."""
    from backend.db import connect
    from backend.runs import RunStore
    rows = RunStore(connect()).metrics(run["id"])
    phases = [row for row in rows if "checking" in row]
    assert phases == [{"step": run["final_metrics"]["steps"], "checking": "the held-back examples", "check": 1,
                       "of_checks": 1}]
    assert rows.index(phases[0]) > max(i for i, row in enumerate(rows) if "train_loss" in row)


def test_progress_details_read_one_line_per_check_and_the_raw_log_stays_behind(run):
    """The Details fold showed the libraries' output (progress bars, Python dicts, FutureWarnings); it now shows
    Tuneloop's own sentences and one line per check (events.log), and the raw log a click further."""
    import re

    from backend import workspace
    from ui import live_tab
    lines = live_tab.log_tail(run["id"], lines=100, name=workspace.EVENTS_LOG).splitlines()
    assert all(re.match(r"\d\d:\d\d:\d\d  \S", line) for line in lines), lines
    text = "\n".join(lines)
    assert "Training SFT on 18 examples (6 held out)." in text and "Run finished." in text
    assert re.search(r"Check at step \d+: held-back loss [\d.]+, training loss [\d.]+\.", text)
    assert "Training done at step" in text and "Checking the held-back examples (1 of 1)." in text
    assert "{'loss'" not in text and "Warning" not in text and "it/s]" not in text
    assert "{'loss'" in live_tab.log_tail(run["id"], lines=100)  # the raw log: the libraries' own output


def test_the_run_keeps_its_outcome_and_diagnosis(run):
    from backend.evaluation.diagnosis import diagnose
    from backend.db import connect
    from backend.runs import RunStore

    stopping = run["outcome"].pop("early_stopping")
    checks = run["outcome"].pop("behaviour_checks")
    assert run["outcome"] == {"train_examples": 18, "heldout_examples": 6, "everyday_mixed": 0}
    # the checks answered the held-back examples: what the answers share ("Hello number"), scored at every check
    assert [part["text"] for part in checks["signature"]] == ["Hello number"]
    assert checks["checks"] and all(0 <= check["behaviour"] <= 1 for check in checks["checks"])
    assert run["heldout"]["behaviour"]["signature"] == checks["signature"]
    assert stopping["patience"] == 2 and stopping["note"]
    assert isinstance(run["diagnosis"], list)
    # what the worker stored is the diagnosis of the run's own curves, probe and data
    metrics = RunStore(connect()).metrics(run["id"])
    assert run["diagnosis"] == diagnose(metrics, run["probe"], run["config"], 18, stopping, heldout=run["heldout"],
                                        checks=checks)
    for finding in run["diagnosis"]:
        assert set(finding) == {"code", "title", "detail", "next_step", "try_settings"}


def add_votes(run_id: str, run_wins: int, base_wins: int, ties: int):
    from backend.db import connect
    from backend.labels.store import LabelStore

    store = LabelStore(connect())
    tuned = Answer("tuned", Source("smollm2", run_id), Sampling())
    base = Answer("base", Source("smollm2", None), Sampling())
    for i, value in enumerate(["left"] * run_wins + ["right"] * base_wins + ["tie"] * ties):
        store.add_choice([{"role": "user", "content": f"Question {i}?"}], tuned, base, value, blind=True)


def test_runs_json_reports_the_checks_and_the_win_rate(run, capsys):
    from backend.cli import main

    add_votes(run["id"], run_wins=6, base_wins=2, ties=2)
    assert main(["runs", "--json"]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["heldout"]["count"] == 6 and listed["probe"] is None
    assert listed["outcome"]["train_examples"] == 18 and isinstance(listed["diagnosis"], list)
    (pair,) = listed["preferred"]
    assert pair["against"] == "base:smollm2" and pair["votes"] == 10
    assert (pair["wins"], pair["losses"], pair["ties"]) == (6, 2, 2)
    assert pair["win_rate"] == pytest.approx(0.7)
    assert pair["interval"][0] < 0.7 < pair["interval"][1]


def test_the_model_card_carries_the_report(run, tmp_path):
    from backend.db import connect
    from backend.export.merged import export_run
    from backend.runs import RunStore

    add_votes(run["id"], run_wins=3, base_wins=1, ties=0)
    out = export_run(RunStore(connect()), run["id"], tmp_path / "export", adapter_only=True)
    card = (out / "README.md").read_text()
    heldout = run["heldout"]
    assert "## Did it learn? Held-back examples, before and after" in card
    assert f"base {heldout['base_mean']}, tuned {heldout['tuned_mean']}" in card
    assert "## Did it keep what it knew?" in card
    assert "## Do people prefer it? Blind A/B votes" in card and "| base:smollm2 |" in card
    assert "## Diagnosis" in card and "- Training examples: 18" in card and "- Held back to check learning: 6" in card
    for finding in run["diagnosis"]:
        assert finding["title"] in card


def test_the_card_names_a_forgetting_warning_and_an_early_stop():
    from backend.evaluation.report_card import card_markdown

    card = {"learned": None, "preferred": [], "diagnosis": [], "settings": {"learning_rate": 5e-4},
            "kept": {"summary": "everyday answers kept: 30 of 38 (lost 5 arithmetic, 3 format)",
                     "warning": "This run lost 8 of the 38 everyday answers.", "suggestion": "Halve the learning rate."},
            "data": {"dataset": "mine.jsonl", "train_examples": 40},
            "early_stopping": {"fired": True, "note": "stopped at step 30; kept the best checkpoint (step 20)."}}
    text = "\n".join(card_markdown(card))
    assert "Everyday answers kept: 30 of 38 (lost 5 arithmetic, 3 format)." in text
    assert "**Warning:** This run lost 8 of the 38 everyday answers. Halve the learning rate." in text
    assert "No held-back examples were checked" in text and "No blind A/B votes yet." in text
    assert "Nothing looked wrong" in text and "- Early stopping: stopped at step 30" in text
    assert '"learning_rate": 0.0005' in text


def test_with_early_stopping_the_kept_adapter_is_the_best_checkpoint(run):
    from safetensors.torch import load_file

    from backend import workspace
    from backend.db import connect
    from backend.runs import RunStore

    from backend.train.behaviour_check import checkpoint_value

    stopping = run["outcome"]["early_stopping"]
    rows = RunStore(connect()).metrics(run["id"])
    losses = {r["step"]: r["eval_loss"] for r in rows if "eval_loss" in r}
    # every check also answered the held-back examples; the best checkpoint shows the most of what they teach, then
    # keeps the most everyday answers, then has the lowest held-back loss (the first of equals)
    value = {r["step"]: checkpoint_value(r["heldout_behaviour"], r["everyday_kept"], losses[r["step"]])
             for r in rows if "heldout_behaviour" in r}
    assert value.keys() == losses.keys() and len(losses) >= 2
    best_step = max(value, key=lambda step: (value[step], -step))
    assert (stopping["best_step"], stopping["best_eval_loss"]) == (best_step, losses[best_step])
    assert run["final_metrics"]["eval_loss"] == losses[best_step]
    folder = workspace.run_dir(run["id"])
    kept = load_file(folder / "adapter" / "adapter_model.safetensors")
    at_best = load_file(folder / "checkpoints" / f"checkpoint-{best_step}" / "adapter_model.safetensors")
    assert kept.keys() == at_best.keys() and all((kept[k] == at_best[k]).all() for k in kept)
