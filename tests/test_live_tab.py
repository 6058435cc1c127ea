"""The Progress tab's lines for a run, without a browser."""
from ui.live_tab import progress_html

METRICS = [{"step": step, "train_loss": 1.0, "total_steps": 44} for step in range(1, 25)]


def finished(fired: bool) -> dict:
    return {"status": "done", "total_steps": 44, "started": "2026-12-06T15:07:33+00:00",
            "ended": "2026-12-06T15:18:25+00:00",
            "outcome": {"early_stopping": {"fired": fired, "stopped_at_step": 24 if fired else None}}}


def test_a_run_that_stopped_early_shows_a_full_bar_and_says_why():
    """The walk (issue 26): 'quill, quick finished' above a bar at 55% and 'Step 24 of 44', which read as a run cut
    short; early stopping had ended it, as a paragraph further down said."""
    html = progress_html(finished(True), METRICS)
    assert 'width: 100.0%' in html
    assert "Stopped early at step 24 of at most 44: the held-back examples showed no more progress" in html


def test_a_run_that_went_to_its_end_counts_its_steps_as_before():
    html = progress_html(finished(False), METRICS)
    assert "Step 24 of 44" in html and "Stopped early" not in html
