"""The charts' figures as data (how Chromium draws them: tests/browser/test_charts.py; one name for both files
clashed in pytest's collection)."""
import pytest

from backend.data.stats import histogram
from ui import charts


def lengths_chart(lengths: list[int], limit: int):
    return charts.length_histogram({"tokens": {"histogram": histogram(lengths, limit), "max_length": limit,
                                               "counted_with": "tokenizer"}})


def bars(fig) -> tuple[list[int], list[int]]:
    """(fit, cut) per bar: the blue and the red part of each."""
    return list(fig.data[0].y), list(fig.data[1].y)


def test_short_examples_fill_the_length_chart_and_are_not_said_to_be_cut():
    """The walk (issue 26): 40 examples of 30 to 59 tokens drew as two bars in the left corner beside a line at the
    limit, 512, under the words "red bars are cut" (empty bins past the limit were red)."""
    fig = lengths_chart(list(range(30, 60)) * 2, 512)
    fit, cut = bars(fig)
    assert sum(fit) == 60 and not any(cut) and fit[-1] > 0  # no empty bins after the longest example
    assert max(fig.data[0].x) < 100 and not fig.layout.shapes  # the axis spans the examples; the limit is in words
    assert fig.layout.annotations[0].text == "max length 512: every example fits"


def test_the_bins_follow_the_examples_lengths_not_the_limit():
    """The walk (issue 26, item 23's chart again): the bins ran from 0 to the limit in twentieths, so the 40 examples
    of identity_quill (48 to 59 tokens) made two bars, and dpo_en_demo's pairs (97 to 4,577 tokens against 512) put
    every pair that fits into two bars, the one the limit fell in drawn red whole."""
    quill = histogram([48, 50, 51, 52, 53, 53, 54, 55, 56, 57, 59] * 4, 512)
    assert quill["edges"][0] == 48 and quill["edges"][-1] == 60 and len(quill["counts"]) == 12  # a bar per length
    lengths = [97, 150, 230, 300, 380, 450, 500, 512, 513, 560, 640, 700, 900, 1300, 1919, 2600, 4577]
    dpo = histogram(lengths, 512)
    assert 12 <= len(dpo["counts"]) <= 25 and dpo["edges"][1] - dpo["edges"][0] in (100, 200, 250, 500)
    assert sum(dpo["counts"]) == len(lengths) and sum(dpo["cut"]) == 9  # those longer than 512
    fit, cut = bars(lengths_chart(lengths, 512))
    split = [i for i, (f, c) in enumerate(zip(fit, cut)) if f and c]
    assert split and fit[split[0]] == 3 and cut[split[0]] == 2  # 400 to 599: 450, 500, 512 fit; 513, 560 are cut


def test_examples_past_the_limit_are_red_and_said_to_be_cut():
    fig = lengths_chart(list(range(30, 60)) + [300, 700], 512)
    assert fig.layout.shapes[0].x0 == 512
    assert fig.layout.annotations[0].text == "dashed line: max length 512; red bars are cut"
    assert fig.data[1].marker.color == charts.COLORS[4] and sum(bars(fig)[1]) == 1  # the 700-token example


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
