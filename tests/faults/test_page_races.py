"""Races in the page that a loaded machine showed: several events redraw one box, each with the form as it stood
when it fired, and the answers can come back in any order. (The browser side: tests/browser/
test_models_train_tab.py answers the memory box slowly and checks that it ends on the latest choice.)"""
import pytest


@pytest.fixture
def demo(home):
    from ui.app import build_app
    return build_app()


def listeners_drawing(demo, elem_id: str) -> list:
    box = next(block for block in demo.blocks.values() if getattr(block, "elem_id", None) == elem_id)
    return [fn for fn in demo.fns.values() if any(out is box for out in fn.outputs)]


def test_every_redraw_of_the_memory_box_waits_its_turn(demo):
    """The memory box is redrawn from seven events (the method, the preset, the model, the data, the settings, the
    check button, "Use these settings"). Before, each had its own queue: on a busy machine a slow redraw for the page's
    first state arrived after the one for DPO, and one for DPO after the one for SFT, so the box showed a method that
    was no longer picked. Now they share one queue, one at a time, and a change made while one waits is answered
    after it: the last answer is for the latest choice."""
    drawing = listeners_drawing(demo, "tl-memory")
    start = [fn for fn in drawing
             if any(getattr(demo.blocks.get(block), "value", None) == "Start training" for block, _ in fn.targets)]
    redraws = [fn for fn in drawing if fn not in start]
    assert len(redraws) >= 7 and len(start) == 1
    assert {fn.concurrency_id for fn in drawing} == {"tl-fit"}  # Start too: its verdict is not overwritten by an older one
    assert {fn.concurrency_limit for fn in drawing} == {1}
    assert {fn.trigger_mode for fn in redraws} == {"always_last"}
    assert start[0].trigger_mode == "once"  # a second click while it starts is not a second run


def test_export_is_clicked_only_once_the_run_list_is_filled(demo):
    """The run list fills when the Export tab opens; a click sent before that answer came carried an empty list and
    was refused with "Pick a finished run first" (CI on a loaded machine, tests/browser/test_browser_flow.py). The
    button starts disabled and is enabled by the same update that fills the list, so a click waits for it."""
    [button] = [block for block in demo.blocks.values()
                if getattr(block, "value", None) == "Export" and type(block).__name__ == "Button"]
    assert button.interactive is False
    filling = [fn for fn in demo.fns.values()
               if any(getattr(out, "label", None) == "Finished run" and out.elem_id == "tl-export-run"
                      for out in fn.outputs)]
    assert filling and all(button in fn.outputs for fn in filling)
