"""RunStore owns the run lifecycle (statuses, queue order, finished adapters) on a Database whose atomic() block
makes writes that span tables all or nothing."""
import pytest

from backend.config import build_config
from backend.db import connect
from backend.errors import RunNotFound, RunStateError
from backend.runs import RunStore
from tests.fake_runs import fake_run


def queued(store, name):
    return store.create(build_config({"dataset": "d", "name": name}))


def test_queue_position_counts_the_run_training_and_those_waiting_before():
    store = RunStore(connect())
    first, second, third = queued(store, "1"), queued(store, "2"), queued(store, "3")
    assert [store.ahead(r) for r in (first, second, third)] == [0, 1, 2]
    store.set_status(second, "running")
    assert [store.ahead(r) for r in (second, first, third)] == [0, 1, 2]  # the runner takes the oldest waiting next
    store.set_status(second, "done")
    assert store.ahead(second) == 0 and store.ahead(third) == 1


def test_only_a_finished_run_with_its_adapter_can_answer_build_on_or_export(tiny_model):
    store = RunStore(connect())
    done = fake_run(tiny_model)
    assert store.finished_adapter(done).name == "adapter"
    assert [r["id"] for r in store.finished()] == [done]
    waiting = fake_run(tiny_model, status="queued")
    with pytest.raises(RunStateError, match="is queued and has no finished adapter"):
        store.finished_adapter(waiting)
    with pytest.raises(RunNotFound):
        store.finished_adapter("sft-nope")


def test_an_active_run_cannot_be_deleted_or_resumed():
    store = RunStore(connect())
    run_id = queued(store, "busy")
    with pytest.raises(RunStateError, match="Stop it first"):
        store.delete(run_id)
    with pytest.raises(RunStateError, match="only a stopped or failed run can be resumed"):
        store.queue_resume(run_id)


def test_atomic_writes_all_or_nothing_and_nests():
    db = connect()
    store = RunStore(db)
    with pytest.raises(ZeroDivisionError):
        with db.atomic():
            queued(store, "kept only if all goes well")  # its own atomic() nests inside this one
            1 / 0
    assert store.list() == []
    with db.atomic():
        queued(store, "a")
        queued(store, "b")
    assert sorted(r["name"] for r in store.list()) == ["a", "b"]


def test_app_py_runs_prints_the_final_loss_the_page_shows_and_nothing_for_a_run_not_ended(capsys):
    """Issue 26, item 25: `app.py runs` printed "loss=None" for unfinished runs (and the training loss where the
    page shows the held-back one)."""
    from argparse import Namespace

    from backend.cli.runs import cmd_runs
    store = RunStore(connect())
    waiting = queued(store, "waiting")
    ended = queued(store, "ended")
    store.set_status(ended, "done")
    store.update(ended, final_metrics={"train_loss": 0.91234, "eval_loss": 1.23456})
    assert cmd_runs(Namespace(json=False)) == 0
    lines = {line.split()[0]: line for line in capsys.readouterr().out.splitlines()}
    assert "None" not in lines[waiting] and "loss" not in lines[waiting]
    assert "final loss 1.235" in lines[ended]
    # Early stopping kept an earlier checkpoint: its loss is named as that (the walk read 'final loss 0.436' under a
    # curve that ended at 0.21), on the page and in the command alike.
    store.update(ended, final_metrics={"eval_loss": 0.436, "steps": 18},
                 outcome={"early_stopping": {"fired": True, "best_step": 12}})
    assert cmd_runs(Namespace(json=False)) == 0
    line = [line for line in capsys.readouterr().out.splitlines() if line.startswith(ended)][0]
    assert "held-back loss 0.436 at step 12, the checkpoint kept" in line
    from ui.live_tab import status_html
    assert "held-back loss 0.436 at step 12, the checkpoint kept" in status_html(store.get(ended))


def test_a_run_stored_under_a_settings_former_name_reads_under_its_current_one():
    """A run (and its diagnosis' suggestion) stored while rehearsal was called keep_everyday: read back, built and
    suggested again under the current name."""
    import json

    from ui.verdict import suggestion
    store = RunStore(connect())
    run_id = queued(store, "old")
    stored = {k: v for k, v in store.get(run_id)["config"].items() if k != "rehearsal"}
    stored["keep_everyday"] = 0
    finding = {"code": "learned_only_part", "title": "t", "detail": "d", "next_step": "n",
               "try_settings": {"keep_everyday": 120}}
    store.db.execute("update runs set config = ?, diagnosis = ? where id = ?",
                     [json.dumps(stored), json.dumps([finding]), run_id])
    run = store.get(run_id)
    assert "keep_everyday" not in run["config"] and run["config"]["rehearsal"] == 0
    assert store.config(run_id).rehearsal == 0
    assert run["diagnosis"][0]["try_settings"] == {"rehearsal": 120}
    assert suggestion(run)["config"]["rehearsal"] == 120
