"""Plotly figures: token lengths against the max length, loss curves, the method's own measures, the learning rate.

`uirevision` keeps a user's zoom while the live view redraws the figure every few seconds.
"""
import math

import plotly.graph_objects as go

COLORS = ["#2563eb", "#ea580c", "#16a34a", "#9333ea", "#dc2626", "#0891b2"]
HEIGHT = 300


FEW_STEPS = 10  # over fewer steps than this, a tick at every step; over more, Plotly's ticks fall on whole numbers
TITLE_SPACE = 36  # px from the figure's top edge to where the legend begins: the title's line above it


def _layout(fig: go.Figure, title: str, x: str, y: str, height: int = HEIGHT, log: bool = False) -> go.Figure:
    """The title on the figure's first line, the legend on the lines under it and the plot below both. (A legend
    anchored to the plot's top edge grew upward over the title whenever its entries took more than one line or
    reached the title: at the Progress tab's half width, or drawn while the tab was hidden.) Both are placed on the
    whole figure (yref "container"), so Plotly widens the top margin for as many lines as the legend takes."""
    fig.update_layout(title=dict(text=title, font=dict(size=15), yref="container", y=1, yanchor="top",
                                 pad=dict(t=10)),
                      height=height, uirevision="keep", margin=dict(l=55, r=20, t=45, b=45), template="plotly_white",
                      legend=dict(orientation="h", yref="container", y=1 - TITLE_SPACE / height, yanchor="top",
                                  xanchor="left", x=0),
                      hovermode="x unified")
    fig.update_xaxes(title_text=x)
    if x == "step":
        steps = [s for trace in fig.data for s in (trace.x or ())]
        if steps and max(steps) - min(steps) < FEW_STEPS:  # whole steps: Plotly's own ticks gave 1, 1.5, 2, 2.5, 3
            fig.update_xaxes(tick0=0, dtick=1)
    fig.update_layout(yaxis=dict(title_text=y, type="log" if log else "linear"))  # not the right axis of a share
    _range_for_flat_values(fig, log)
    return fig


def _range_for_flat_values(fig: go.Figure, log: bool):
    """A range around values that do not change: DPO's loss is ln 2 until the model moves, and the smoothed copy of
    two such points differs from them in the 16th digit; Plotly then ticked the 1e-16 between them and drew the axis
    title at x = Infinity (Chromium's console: 'Error: <text> attribute x: Expected length, "Infinity"', four at each
    redraw). Values on the right axis (a share, 0 to 100%) have their range already."""
    values = [v for trace in fig.data if getattr(trace, "yaxis", None) in (None, "y")
              for v in (trace.y or ()) if isinstance(v, (int, float)) and math.isfinite(v)]
    if not values or fig.layout.yaxis.range is not None or max(values) - min(values) > 1e-9 * max(map(abs, values)):
        return
    middle = (max(values) + min(values)) / 2
    if not log:
        pad = max(abs(middle) * 0.1, 0.05)
        fig.update_layout(yaxis_range=[middle - pad, middle + pad])
    elif middle > 0:  # a log axis' range is in powers of ten
        fig.update_layout(yaxis_range=[math.log10(middle) - 0.1, math.log10(middle) + 0.1])


def empty(title: str, message: str, height: int = HEIGHT) -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, font=dict(size=14, color="#6b7280"), x=0.5, y=0.5,
                       xref="paper", yref="paper")
    fig.update_xaxes(visible=False)
    fig.update_yaxes(visible=False)
    return _layout(fig, title, "", "", height)


LIMIT_COLOR = "#111827"  # dark: a red line vanished over the red bars of the examples it cuts
FAR_BEYOND = 0.5  # the max-length line is drawn when it lies within half the data's width past the longest bar


def length_histogram(stats: dict) -> go.Figure:
    """Bars of the examples' lengths (backend/data/stats.histogram): blue what fits under the max length, red what is
    cut, stacked where the limit falls inside a bar; the limit as a dashed line, or in words when it lies far past
    every example."""
    tokens = stats["tokens"]
    hist, limit = tokens["histogram"], tokens["max_length"]
    edges, counts = hist["edges"], hist["counts"]
    # Datasets saved before the bins followed the data reach the limit: the empty bins past the longest example go
    # (40 short examples drew as two bars in a corner), and a bar is cut whole when it reaches past the limit.
    last = max((i for i, count in enumerate(counts) if count), default=0)
    edges, counts = edges[:last + 2], counts[:last + 1]
    width = edges[1] - edges[0]
    cut = hist["cut"][:last + 1] if "cut" in hist else [c if left + width > limit else 0
                                                          for left, c in zip(edges, counts)]
    tokens_in = [f"{left:,}" if width == 1 else f"{left:,} to {left + width - 1:,}" for left in edges[:-1]]
    middles = [left + width / 2 for left in edges[:-1]]
    fig = go.Figure()
    for color, shown, words in ((COLORS[0], [c - k for c, k in zip(counts, cut)], "fit"),
                                (COLORS[4], cut, "are longer than the max length: cut")):
        fig.add_trace(go.Bar(x=middles, y=shown, width=width * 0.95, marker_color=color, customdata=tokens_in,
                             name=words, showlegend=False,
                             hovertemplate=f"%{{y}} of %{{customdata}} tokens {words}<extra></extra>"))
    fig.update_layout(barmode="stack")
    # The limit's words go in the top right corner, not beside its line: there they sat on the tallest bars when a
    # few very long examples stretched the axis (DPO pairs up to 4,577 tokens against 512).
    if limit <= edges[-1] + FAR_BEYOND * (edges[-1] - edges[0]):
        fig.add_vline(x=limit, line_dash="dash", line_color=LIMIT_COLOR, line_width=2, layer="above")
        words = f"dashed line: max length {limit}" + ("; red bars are cut" if any(cut) else "")
    else:  # a line far to the right would squeeze every bar into one corner
        words = f"max length {limit}: every example fits"
    fig.add_annotation(text=words, showarrow=False, xref="paper", yref="paper", x=1, y=1, xanchor="right",
                       yanchor="bottom", font=dict(color=LIMIT_COLOR))
    how = "" if tokens["counted_with"] == "tokenizer" else " (estimated)"
    fig = _layout(fig, f"Length of the examples in tokens{how}", "tokens per example", "examples", height=280)
    return fig.update_layout(hovermode="closest")  # one bar's words, not a heading of its middle ("48.5")


def smooth(values: list[float], weight: float = 0.8) -> list[float]:
    """Exponential moving average with bias correction, as TensorBoard draws it."""
    out, average = [], 0.0
    for i, value in enumerate(values, 1):
        average = weight * average + (1 - weight) * value
        out.append(average / (1 - weight ** i))
    return out


def series(metrics: list[dict], key: str) -> tuple[list[int], list[float]]:
    points = [(m["step"], m[key]) for m in metrics if isinstance(m.get(key), (int, float)) and math.isfinite(m[key])]
    return [p[0] for p in points], [p[1] for p in points]


NOTHING_LOGGED = "No training step was logged."


def line_mode(steps: list) -> str:
    """A line through one point draws nothing: the first step of a run (12 s after Start) shows as a dot."""
    return "lines" if len(steps) > 1 else "lines+markers"


def loss_figure(metrics: list[dict], log: bool = False, name: str = "", waiting: bool = True) -> go.Figure:
    steps, train = series(metrics, "train_loss")
    eval_steps, evals = series(metrics, "eval_loss")
    if not steps and not eval_steps:
        return empty("Loss", "Waiting for the first training step..." if waiting else NOTHING_LOGGED)
    fig = go.Figure()
    fig.add_scatter(x=steps, y=train, name="training (raw)", mode="lines", line=dict(color=COLORS[0], width=1),
                    opacity=0.35)
    fig.add_scatter(x=steps, y=smooth(train), name="training (smoothed)", mode=line_mode(steps),
                    line=dict(color=COLORS[0], width=2.5))
    if eval_steps:
        fig.add_scatter(x=eval_steps, y=evals, name="held-back examples", mode="lines+markers",
                        line=dict(color=COLORS[1], width=2), marker=dict(size=7))
    return _layout(fig, f"Loss{' - ' + name if name else ''} (lower is better)", "step", "loss", log=log)


def overlay_figure(runs: list[tuple[str, list[dict]]], log: bool = False) -> go.Figure:
    fig = go.Figure()
    for i, (name, metrics) in enumerate(runs):
        color = COLORS[i % len(COLORS)]
        steps, train = series(metrics, "train_loss")
        fig.add_scatter(x=steps, y=smooth(train), name=f"{name}: training", mode="lines", line=dict(color=color))
        eval_steps, evals = series(metrics, "eval_loss")
        if eval_steps:
            fig.add_scatter(x=eval_steps, y=evals, name=f"{name}: held back", mode="lines+markers",
                            line=dict(color=color, dash="dot"))
    return _layout(fig, "Loss of both runs (smoothed; lower is better)", "step", "loss", log=log)


METHOD_SERIES = {
    "sft": [("token_accuracy", "next words guessed right (training)"),
            ("heldout_behaviour", "held-back answers showing what the examples teach")],
    "dpo": [("rewards_chosen", "better answer"), ("rewards_rejected", "worse answer"),
            ("rewards_margin", "margin (better minus worse)"), ("eval_rewards_margin", "margin, held back")],
    "kto": [("rewards_chosen", "good answers"), ("rewards_rejected", "bad answers"),
            ("rewards_margin", "margin (good minus bad)"), ("kl", "distance from the start (KL)")],
}
ACCURACY = {"dpo": ("rewards_accuracy", "pairs ranked right"), "kto": ("rewards_accuracy", "answers ranked right")}
METHOD_TITLES = {"sft": "Next words guessed right, and what the held-back answers show", "dpo": "Rewards: how much more the model likes the better answer",
                 "kto": "Rewards: good against bad answers"}


def method_figure(metrics: list[dict], method: str, waiting: bool = True) -> go.Figure:
    title = METHOD_TITLES.get(method, "Measures")
    fig = go.Figure()
    for i, (key, label) in enumerate(METHOD_SERIES.get(method, [])):
        steps, values = series(metrics, key)
        if steps:
            fig.add_scatter(x=steps, y=values, name=label, mode=line_mode(steps),
                            line=dict(color=COLORS[i % len(COLORS)]))
    if method in ACCURACY:
        steps, values = series(metrics, ACCURACY[method][0])
        if steps:
            fig.add_scatter(x=steps, y=values, name=ACCURACY[method][1] + " (right axis)", mode=line_mode(steps),
                            yaxis="y2",
                            line=dict(color="#6b7280", dash="dot"))
            fig.update_layout(yaxis2=dict(overlaying="y", side="right", range=[0, 1], tickformat=".0%",
                                          showgrid=False))
    if not fig.data:
        return empty(title, "Shown once training logs its first steps." if waiting else NOTHING_LOGGED)
    y = "share" if method == "sft" else "reward"
    if method == "sft":  # a share: 0 to 100% (autoscaled, one point drew an axis from 0% to 150%)
        fig.update_yaxes(tickformat=".1~%", range=[0, 1])
    return _layout(fig, title, "step", y)


def learning_rate_figure(metrics: list[dict], waiting: bool = True) -> go.Figure:
    steps, values = series(metrics, "learning_rate")
    if not steps:
        return empty("Learning rate", "Shown once training logs its first steps." if waiting else NOTHING_LOGGED)
    fig = go.Figure(go.Scatter(x=steps, y=values, mode=line_mode(steps), line=dict(color=COLORS[2]),
                               name="learning rate"))
    fig.update_yaxes(exponentformat="e", rangemode="nonnegative")  # never below 0 (a first point at 0 drew -0.5)
    return _layout(fig, "Learning rate (step size, by schedule)", "step", "learning rate")
