"""The Runs tab's handlers, called as plain functions."""
from tests.fake_runs import fake_run
from tests.test_ui_handlers import ctx  # noqa: F401 (the fixture)
from ui import runs_tab


def delete_button(ctx, run_id):
    return runs_tab.show(ctx, {"run": run_id, "other": None, "log_y": False})[-2]


def test_delete_is_offered_only_for_a_run_that_neither_trains_nor_waits(ctx, tiny_model):
    """The walk (issue 26): Delete was red beside a run that was training, and refused only after 'Yes, delete it'."""
    assert delete_button(ctx, fake_run(tiny_model, status="running"))["interactive"] is False
    assert delete_button(ctx, fake_run(tiny_model, status="queued"))["interactive"] is False
    assert delete_button(ctx, fake_run(tiny_model))["interactive"] is True
    assert delete_button(ctx, None)["interactive"] is False
