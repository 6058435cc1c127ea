"""The charts' figures as data (how Chromium draws them: tests/browser/test_charts.py; one name for both files
clashed in pytest's collection)."""
import pytest

from backend.data.stats import histogram
from ui import charts


def lengths_chart(lengths: list[int], limit: int):
    return charts.length_histogram({"tokens": {"histogram": histogram(lengths, limit), "max_length": limit,
                                               "counted_with": "tokenizer"}})


def test_short_examples_fill_the_length_chart_and_are_not_said_to_be_cut():
    """The walk (issue 26): 40 examples of 30 to 59 tokens drew as two bars in the left corner beside a line at the
    limit, 512, under the words "red bars are cut" (empty bins past the limit were red)."""
    fig = lengths_chart(list(range(30, 60)) * 2, 512)
    bars = fig.data[0]
    assert sum(bars.y) == 60 and bars.y[-1] > 0  # no empty bins after the longest example
    assert max(bars.x) < 100 and not fig.layout.shapes  # the axis spans the examples; the limit is said in words
    assert fig.layout.annotations[0].text == "max length 512: every example fits"


def test_examples_past_the_limit_are_red_and_said_to_be_cut():
    fig = lengths_chart(list(range(30, 60)) + [300, 700], 512)
    assert fig.layout.shapes[0].x0 == 512
    assert fig.layout.annotations[0].text == "dashed line: max length 512; red bars are cut"
    red = [y for y, color in zip(fig.data[0].y, fig.data[0].marker.color) if color == charts.COLORS[4]]
    assert red and sum(red) == 1  # the bar of the 700-token example (the empty ones past it are gone)


def test_examples_that_fit_under_a_near_limit_are_not_said_to_be_cut():
    fig = lengths_chart(list(range(30, 60)), 70)
    assert fig.layout.shapes[0].x0 == 70 and fig.layout.annotations[0].text == "dashed line: max length 70"


def test_a_few_steps_are_ticked_at_whole_steps():
    """The walk (issue 26): a DPO run of 3 steps had ticks at 1, 1.5, 2, 2.5, 3, and a run's first point at 0.5 and
    1.5 as well: there is no step 1.5."""
    three = [{"step": s, "train_loss": 1.0 / s, "learning_rate": 1e-4 * s, "rewards_margin": s} for s in (1, 2, 3)]
    for fig in (charts.loss_figure(three), charts.learning_rate_figure(three), charts.method_figure(three, "dpo"),
                charts.loss_figure(three[:1])):
        assert (fig.layout.xaxis.tick0, fig.layout.xaxis.dtick) == (0, 1)
    many = [{"step": s, "train_loss": 1.0 / s} for s in range(1, 45)]
    assert charts.loss_figure(many).layout.xaxis.dtick is None  # Plotly's ticks: 10, 20, 30, 40


def test_a_loss_that_does_not_move_gets_a_range_around_it():
    """DPO's loss is ln 2 until the model moves; Plotly ticked the 1e-16 between it and its smoothed copy and drew the
    axis title at x = Infinity (the browser test counts the console's errors)."""
    flat = [{"step": s, "train_loss": 0.6931471805599453} for s in (1, 2)]
    assert tuple(charts.loss_figure(flat).layout.yaxis.range) == pytest.approx((0.6238, 0.7625), abs=1e-3)
    low, high = charts.loss_figure(flat, log=True).layout.yaxis.range
    assert low < -0.159 < high  # log10(0.693)
    moving = [{"step": s, "train_loss": 0.69 / s} for s in (1, 2)]
    assert charts.loss_figure(moving).layout.yaxis.range is None  # Plotly's own range
