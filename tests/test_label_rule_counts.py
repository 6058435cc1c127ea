"""Issue 26 follow-up, item 2: the counts beside the Label tab's "Which labels" were drawn only on opening the tab, a
page load and a leave-out change: after 6 A/B judgements they still said "Every label: 2 KTO examples, 1 DPO pair"
under totals saying "7 DPO pairs". They are drawn again after every judgement and undo, in one queue that ends on
the latest labels. (The browser side: tests/browser/test_loop_label.py judges six answers and undoes one.)"""
import pytest

JUDGING = {"tl-key-good", "tl-key-bad", "tl-key-left", "tl-key-right", "tl-key-tie", "tl-key-both-bad", "tl-key-undo"}


@pytest.fixture
def demo(home):
    from ui.app import build_app
    return build_app()


def test_the_which_labels_counts_are_drawn_after_every_judgement_and_undo_one_at_a_time(demo):
    rule = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == "tl-label-rule")
    drawing = [fn for fn in demo.fns.values() if any(out is rule for out in fn.outputs)]
    after = [demo.fns[fn.trigger_after] for fn in drawing if fn.trigger_after is not None]
    pressed = {getattr(demo.blocks.get(block), "elem_id", None) for fn in after for block, _ in fn.targets}
    assert pressed == JUDGING  # skip changes no label
    # one at a time, and a redraw asked while another waits is answered after it: the last one counts the latest labels
    assert {fn.concurrency_id for fn in drawing} == {"tl-label-rules"}
    assert {fn.concurrency_limit for fn in drawing} == {1}
    assert {fn.trigger_mode for fn in drawing} == {"always_last"}
