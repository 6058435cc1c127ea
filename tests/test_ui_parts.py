"""The web app's parts that need no browser: previews, charts, the generated settings form, words for people."""
import gradio as gr
import pytest

from backend.config import coerce, declarations
from backend.errors import DataError
from backend.presets import preset_values
from ui import charts
from ui.common import bind, plain_errors, probe_markdown
from ui.data_tab import format_in_words, stats_markdown
from ui.live_tab import pick_run, progress_html, status_html
from ui.preview import example_html
from ui.settings_form import advanced_declarations, create_settings_form, form_values
from ui.train_tab import memory_html, mismatch


def test_conversation_preview_escapes_html_and_names_the_roles():
    html = example_html("sft", {"messages": [{"role": "user", "content": "<script>alert(1)</script>"},
                                             {"role": "assistant", "content": "Hi & bye"}]}, 7)
    assert "<script>" not in html and "&lt;script&gt;" in html and "Hi &amp; bye" in html
    assert "Row 7" in html and "User" in html and "Assistant" in html


def test_preference_pair_preview_is_side_by_side():
    pair = {"prompt": [{"role": "user", "content": "Q"}], "chosen": [{"role": "assistant", "content": "good"}],
            "rejected": [{"role": "assistant", "content": "bad"}]}
    html = example_html("dpo", pair, 1)
    assert 'class="tl-pair"' in html and html.index(">good<") < html.index(">bad<")
    rated = example_html("kto", {"prompt": pair["prompt"], "completion": pair["rejected"], "label": False}, 2)
    assert "Marked bad" in rated


def test_loss_chart_has_raw_smoothed_and_eval_lines_and_log_scale():
    metrics = [{"step": i, "train_loss": 3.0 / i} for i in range(1, 9)] + [{"step": 8, "eval_loss": 0.5}]
    fig = charts.loss_figure(metrics, log=True)
    assert [trace.name for trace in fig.data] == ["training (raw)", "training (smoothed)", "held-back examples"]
    assert fig.layout.yaxis.type == "log" and fig.layout.uirevision == "keep"
    assert charts.smooth([2.0, 2.0, 2.0]) == pytest.approx([2.0, 2.0, 2.0])
    assert charts.loss_figure([]).layout.annotations[0].text.startswith("Waiting")


def test_the_first_step_shows_as_a_point_not_an_empty_chart():
    first = [{"step": 1, "train_loss": 2.5, "learning_rate": 0.0, "token_accuracy": 0.9}]
    assert charts.loss_figure(first).data[1].mode == "lines+markers"
    assert charts.learning_rate_figure(first).data[0].mode == "lines+markers"
    assert all(trace.mode == "lines+markers" for trace in charts.method_figure(first, "sft").data)
    two = first + [{"step": 2, "train_loss": 2.0, "learning_rate": 1e-4, "token_accuracy": 0.8}]
    assert charts.loss_figure(two).data[1].mode == "lines"
    # and on axes that fit what they show: a share from 0 to 100%, a learning rate never below 0 (seen in the
    # browser: one point autoscaled the share from 0% to 150% and the learning rate down to -0.5)
    assert tuple(charts.method_figure(first, "sft").layout.yaxis.range) == (0, 1)
    assert charts.learning_rate_figure(first).layout.yaxis.rangemode == "nonnegative"


def test_dpo_chart_shows_rewards_margin_and_accuracy():
    metrics = [{"step": i, "rewards_chosen": 0.1 * i, "rewards_rejected": -0.1 * i, "rewards_margin": 0.2 * i,
                "rewards_accuracy": 0.5 + 0.05 * i} for i in range(1, 5)]
    fig = charts.method_figure(metrics, "dpo")
    names = [trace.name for trace in fig.data]
    assert "better answer" in names and "worse answer" in names and any("ranked right" in n for n in names)
    assert fig.layout.yaxis2.overlaying == "y"


def test_histogram_marks_the_max_length():
    stats = {"tokens": {"histogram": {"edges": [0, 10, 20, 30], "counts": [1, 2, 3]}, "max_length": 15,
                        "counted_with": "tokenizer"}}
    fig = charts.length_histogram(stats)
    assert fig.layout.shapes[0].x0 == 15
    assert fig.layout.annotations[0].text == "dashed line: max length 15; red bars are cut"
    # A dataset saved before the bins carried their cut counts: a bar reaching past the limit is cut whole
    assert list(fig.data[0].y) == [1, 0, 0] and list(fig.data[1].y) == [0, 2, 3]
    # Far beyond the longest example (the walk: short DPO pairs against 1024), a line would squeeze the bars into a
    # corner: the limit is said in words instead, and the axis spans the data.
    far = charts.length_histogram({"tokens": dict(stats["tokens"], max_length=1024)})
    assert not far.layout.shapes and far.layout.annotations[0].text == "max length 1024: every example fits"


def test_advanced_form_has_one_typed_widget_per_advanced_setting():
    with gr.Blocks():
        widgets = create_settings_form("quick", "sft")
    names = [d[0] for d in advanced_declarations()]
    assert list(widgets) == names
    for name, kind, _, meta in advanced_declarations():
        widget = widgets[name]
        assert widget.label == meta["label"]  # the label lives in the declaration, nowhere else
        if meta["choices"]:
            assert isinstance(widget, gr.Dropdown)
        elif kind in (bool, "bool"):
            assert isinstance(widget, gr.Checkbox)
        else:
            # The range is in the words; checked with the settings, not by Gradio (whose message names no box).
            assert isinstance(widget, gr.Number) and widget.minimum is None and widget.maximum is None
            assert widget.info.startswith(meta["help"])
            if meta["min"] is not None:
                assert widget.info.endswith(f" to {meta['max']:,}." if isinstance(meta["max"], int)
                                            else f" to {meta['max']:g}.")
    assert widgets["learning_rate"].value == preset_values("quick", "sft")["learning_rate"]
    assert widgets["beta"].visible is False  # DPO/KTO only


def test_form_values_are_the_preset_over_the_defaults_and_typed():
    values = form_values("balanced", "dpo")
    assert values["learning_rate"] == preset_values("balanced", "dpo")["learning_rate"]
    assert set(values) == {d[0] for d in declarations()}
    assert coerce("batch_size", 8.0) == 8 and coerce("learning_rate", 1e-4) == 1e-4  # number boxes give floats


def test_mismatch_explains_which_data_the_method_needs():
    chat = {"name": "chats", "kind": "sft"}
    text = mismatch("dpo", chat)
    assert "conversations" in text and "preference pairs" in text and "Choose SFT" in text
    assert mismatch("sft", chat) == ""


def test_memory_box_says_the_verdict_and_the_parts():
    from backend.config import build_config
    from backend.models.memory import GB
    from backend.models.fit import check_start
    from backend.models.loading import Hardware
    check = check_start(build_config({}), hardware=Hardware("cpu", "float32", "none"), available=GB)
    html = memory_html(check)
    assert "Too big" in html and "Model weights" in html and "will not fit" in html


def test_live_view_picks_the_running_run_and_counts_the_queue():
    runs = [{"id": "c", "status": "queued", "created": "3"}, {"id": "b", "status": "queued", "created": "2"},
            {"id": "a", "status": "running", "created": "1"}, {"id": "z", "status": "done", "created": "0"}]
    assert pick_run(runs) == "a"
    assert pick_run(runs[:2]) == "b"
    assert pick_run([runs[3]]) == "z" and pick_run([]) is None


def test_progress_says_step_of_total_time_left_and_speed():
    run = {"status": "running", "started": "2026-11-25T10:00:00+00:00", "ended": None, "total_steps": 40}
    html = progress_html(run, [{"step": 10, "train_loss": 1.0, "eta": 95, "tokens_per_second": 123.4}])
    assert "Step 10 of 40" in html and "1 min 35 s left" in html and "123 tokens per second" in html
    assert 'width: 25.0%' in html


def test_progress_shows_the_checks_after_training_as_their_own_phase():
    run = {"status": "running", "started": "2026-11-25T10:00:00+00:00", "ended": None, "total_steps": 32}
    metrics = [{"step": 32, "train_loss": 1.0, "eta": 0}, {"step": 32, "checking": "the everyday questions",
                                                          "check": 1, "of_checks": 2}]
    html = progress_html(run, metrics)
    assert "Training done: step 32 of 32. Now checking what it kept and learned: the everyday questions (check 1 " \
           "of 2)" in html and "left" not in html
    assert "0 s left" in progress_html(run, metrics[:1])  # while it trains, the time left


def test_failed_run_shows_its_reason_in_words():
    run = {"id": "r", "name": "try <1>", "status": "failed", "reason": "The run ran out of memory."}
    html = status_html(run)
    assert "<b>try &lt;1&gt;</b> failed: The run ran out of memory." in html and "Traceback" not in html


def test_probe_table_only_when_the_base_model_knew_something():
    item = {"question": "2+2?", "base": "4", "tuned": "5", "base_right": True, "tuned_right": False}
    probe = {"summary": "everyday answers kept: 0 of 1 (some forgotten)", "base_right": 1, "items": [item]}
    text = probe_markdown(probe)
    assert text.count("\n|") == 3 and "| no |" in text and "Everyday answers kept" in text
    assert "|" not in probe_markdown(dict(probe, base_right=0))


def test_backend_errors_become_plain_messages():
    @plain_errors
    def broken():
        raise DataError("Row 3: the answer is empty.")

    @plain_errors
    def crashed():
        raise KeyError("x")

    with pytest.raises(gr.Error) as caught:
        broken()
    assert caught.value.message == "Row 3: the answer is empty."
    with pytest.raises(gr.Error) as caught:
        crashed()
    assert "Something went wrong (KeyError" in caught.value.message and "Traceback" not in caught.value.message


def test_stats_in_words():
    stats = {"tokens": {"counted_with": "tokenizer", "median": 40, "max": 900, "longest_row": 7, "max_length": 512,
                        "over_max_length": 2},
             "turns": {"min": 2, "max": 2}, "multi_turn": 0, "split": {"train": 90, "validation": 10}}
    text = stats_markdown(stats)
    assert "2 are longer" in text and "90 examples to learn from, 10 held back" in text
    assert format_in_words("alpaca") == "Alpaca columns (instruction, optional input, and output)"
    assert format_in_words("sharegpt_preference").endswith("each with a better and a worse answer")


def test_a_count_of_one_takes_the_singular():
    """Issue 26, item 15: "1 examples to learn from". One helper (backend/words.plural) for every count."""
    from backend.words import plural
    assert (plural(1, "example"), plural(0, "example"), plural(1200, "row")) == \
        ("1 example", "0 examples", "1,200 rows")
    stats = {"tokens": {"counted_with": "tokenizer", "median": 40, "max": 90, "longest_row": 1, "max_length": 512,
                        "over_max_length": 0},
             "turns": {"min": 2, "max": 2}, "multi_turn": 0, "split": {"train": 1, "validation": 0}, "duplicates": 1}
    text = stats_markdown(stats)
    assert "1 example to learn from" in text and "1 example appears more than once" in text
    assert status_html({"name": "next", "status": "queued"}, ahead=1).count("(1 run ahead)") == 1


def test_preset_cards_give_a_cap_when_early_stopping_may_end_the_run_sooner():
    from backend.models.run_time import Speed
    from ui.train_tab import preset_cards
    dataset = {"name": "faq", "train_rows": 40, "stats": {"tokens": {"mean": 60}}}
    html = preset_cards("quick", "sft", dataset, Speed(150.0, "measured"))
    assert "up to about" in html and "at most" in html and "stops sooner" in html
    assert "model's size" not in html
    assert "worked out from this model's size" in preset_cards("quick", "sft", dataset, Speed(15.0, "scaled"))
    unknown = preset_cards("quick", "sft", dataset, Speed(None, "unknown"))
    assert "unknown until the first steps" in unknown and " min " not in unknown


def test_the_preset_cards_count_the_rehearsal_in_the_examples_way():
    """Examples whose way of answering is rehearsed (backend/evaluation/rehearsal.in_their_way) wait for it before
    the first step: 27 to 42 s on the 2-core CPU, said in the time."""
    import re

    from backend.models.run_time import THEIR_WAY_TOKENS, Speed
    from ui.train_tab import preset_cards
    dataset = {"name": "json", "train_rows": 40, "stats": {"tokens": {"mean": 60}}}
    speed = Speed(THEIR_WAY_TOKENS / 120.0, "measured")  # the rehearsal in their way: two minutes at this speed
    minutes = [int(m) for m in re.findall(r"up to about (\d+) min", preset_cards("quick", "sft", dataset, speed))]
    html = preset_cards("quick", "sft", dict(dataset, rehearses_their_way=True), speed)
    more = [int(m) for m in re.findall(r"up to about (\d+) min", html)]
    assert len(minutes) == len(more) >= 2 and all(b == a + 2 for a, b in zip(minutes, more)), (minutes, more)
    assert "with about 120 s first to answer everyday questions in your examples' way" in html
    assert "examples' way" not in preset_cards("quick", "dpo", dict(dataset, rehearses_their_way=True), speed)


def test_the_sft_measures_draw_the_behaviour_at_each_check():
    rows = [{"step": s, "token_accuracy": 0.5 + s / 100} for s in range(1, 9)]
    rows += [{"step": 4, "heldout_behaviour": 0.25, "everyday_kept": 7}, {"step": 8, "heldout_behaviour": 0.75,
                                                                          "everyday_kept": 7}]
    fig = charts.method_figure(rows, "sft")
    (behaviour,) = [trace for trace in fig.data if trace.name.startswith("held-back answers")]
    assert list(behaviour.x) == [4, 8] and list(behaviour.y) == [0.25, 0.75]


def test_the_banner_names_the_run_that_trains_or_the_next_to_wait():
    from ui.banner import banner_text
    assert banner_text([]) == ("", None)
    assert banner_text([{"id": "a", "name": "old", "status": "done"}]) == ("", None)
    queued = [{"id": "q2", "name": "later", "status": "queued"}, {"id": "q1", "name": "first", "status": "queued"}]
    html, run_id = banner_text(queued)
    assert run_id == "q1" and "Waiting to train:</b> first." in html and "1 more run waits in line" in html
    running = {"id": "r", "name": "now & then", "status": "running", "started": None, "finished": None}
    html, run_id = banner_text([running, *queued])
    assert run_id == "r" and "Training now:</b> now &amp; then." in html and "2 more runs wait in line" in html


def test_an_unexpected_error_is_logged_and_named_in_one_line_without_server_paths(caplog):
    """The label queue's generation failure went to the page as the raw exception (server paths and all) and was
    never logged; it now says what plain_errors says."""
    from ui.common import plain_words
    words = plain_words(RuntimeError("cannot open /srv/tuneloop/models/x/model.safetensors\nmore"), "the label queue")
    assert words.startswith("Something went wrong (RuntimeError: cannot open …/model.safetensors).")
    assert "/srv" not in words
    assert "Unexpected error in the label queue" in caplog.text
    assert plain_words(DataError("Row 3: the answer is empty."), "anything") == "Row 3: the answer is empty."


def test_an_answer_cut_inside_an_emoji_shows_no_broken_character():
    """The Runs tab's held-back table showed "�" where an answer was cut off inside an emoji's bytes."""
    from backend.answers import decoded
    from tests.data_corpus import tokenizer
    tok = tokenizer()
    ids = tok("Party time 🎉🎉", add_special_tokens=False)["input_ids"]
    cuts = [ids[:n] for n in range(1, len(ids) + 1) if "\ufffd" in tok.decode(ids[:n])]
    assert cuts  # the emoji takes several tokens: some cuts end inside it
    assert all("\ufffd" not in decoded(tok, cut) and decoded(tok, cut).startswith("Party time") for cut in cuts)
    assert decoded(tok, ids) == "Party time 🎉🎉"


def test_a_handler_returns_its_outputs_by_name_and_one_it_leaves_out_stays_as_it_is():
    """bind with outputs by name: the components in their order, the handler's dict laid out in that order."""
    callback, inputs, components = bind(None, lambda ctx, v: {"status": "done"},
                                        outputs={"dataset": "dataset box", "status": "status line"})
    assert inputs is None and components == ["dataset box", "status line"]
    assert callback() == [gr.skip(), "done"]
    wrong, _, _ = bind(None, lambda ctx, v: {"stauts": "done"}, outputs={"status": "status line"})
    with pytest.raises(gr.Error, match="stauts"):
        wrong()
