"""The Chat tab's words about where things are match where they are (issue 26, item 18: "judge them with the
buttons below" was printed below the buttons)."""
import gradio as gr

from backend.jobs.runner import JobRunner
from backend.labels.store import VALUES
from backend.models.pool import ModelPool
from tests.fake_runs import fake_run
from ui import chat_tab
from ui.common import Context


def page_order(demo: gr.Blocks) -> list[str]:
    """The elem_ids of the page's components, top to bottom as Gradio lays them out."""
    ids = {block_id: getattr(block, "elem_id", None) for block_id, block in demo.blocks.items()}
    order = []

    def walk(node):
        order.append(ids.get(node["id"]))
        for child in node.get("children", []):
            walk(child)
    walk(demo.config["layout"])
    return [i for i in order if i]


def test_the_line_after_both_answers_points_up_at_the_buttons_it_sits_under(home, tiny_model):
    runner = JobRunner()
    try:
        ctx = Context(runner, ModelPool())
        with gr.Blocks() as demo:
            chat_tab.create_chat_tab(ctx, demo)
        order = page_order(demo)
        buttons = [order.index(f"tl-chat-{value}") for value in VALUES["ab"]] + \
                  [order.index(f"tl-chat-{side}-up") for side in chat_tab.SIDES]
        assert order.index("tl-chat-saved") > max(buttons)  # the line is under the judging buttons

        left, right = fake_run(tiny_model, seed=1), fake_run(tiny_model, seed=2)
        values = {"message": "Say hello.", "conversation": None, "left": left, "right": right, "system": "",
                  "temperature": 0, "max_tokens": 4, "seed": 0}
        *_, note = list(chat_tab.respond(ctx, values))[-1]
        assert note.endswith("judge them with the buttons above."), note
    finally:
        runner.close(stop_current=True)
