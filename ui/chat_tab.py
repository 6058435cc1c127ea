"""Chat tab: one message goes to two models side by side (the base model and a run, or two runs); both answers
stream in together. Under each answer 👍 / 👎 and an edit; under the pair which side was better. Every click
is saved at once, with the conversation, the answer, which model and run gave it, and the settings."""
from dataclasses import dataclass, field

import gradio as gr

from backend import workspace
from backend.chat import ModelPool, Sampling
from backend.errors import TuneloopError
from backend.labels import LabelStore, label_stats, new_session
from ui.common import FINISHED, Context, esc, plain_errors, run_label

BASE = "base"
CHOICES = {"left": "left answer better", "right": "right answer better", "tie": "a tie", "both_bad": "both bad"}


def finished_runs(runs: list[dict]) -> list[dict]:
    return [r for r in runs if r["status"] in FINISHED and (workspace.run_dir(r["id"]) / "adapter").exists()]


def source_choices(runs: list[dict]) -> list[tuple[str, str]]:
    return [("Base model (no tuning)", BASE)] + [(run_label(r), r["id"]) for r in finished_runs(runs)]


def default_pair(runs: list[dict]) -> tuple[str, str]:
    """The newest finished run on the right, what it was built on (a run, or the base model) on the left."""
    finished = finished_runs(runs)
    if not finished:
        return BASE, BASE
    newest = finished[0]
    ids = {r["id"] for r in finished}
    return (newest["base_run"] if newest.get("base_run") in ids else BASE), newest["id"]


def resolve(pool: ModelPool, ctx: Context, choice: str, other: str):
    """A dropdown value as a Source; 'base' is the base model of the other side's run (or the built-in one)."""
    if choice and choice != BASE:
        return pool.source(choice)
    model = ctx.runs().get(other)["config"]["model"] if other and other != BASE else None
    return pool.source(model=model)


@dataclass
class Conversation:
    session: str = field(default_factory=new_session)
    shown: list = field(default_factory=lambda: [[], []])  # each pane's messages, as the Chatbot shows them
    turn: int = 0
    prompts: list | None = None  # what each side answered in the last turn
    answers: list | None = None  # the last turn's two Answers, once both are complete
    corrected: set = field(default_factory=set)  # sides (0, 1) whose last answer the person replaced

    def target(self, side: str = "pair") -> str:
        return f"{self.session}:{self.turn}:{side}"


def create_chat_tab(ctx: Context, demo: gr.Blocks, pool: ModelPool) -> dict:
    with gr.Tab("6. Chat", id="chat") as tab:
        gr.Markdown("Ask both models the same thing and compare. Your judgements are saved as you click; "
                    "train on them in the **7. Label** tab.")
        with gr.Row():
            left_pick = gr.Dropdown(label="Left", choices=[(("Base model (no tuning)"), BASE)], value=BASE,
                                    elem_id="tl-chat-left-pick")
            right_pick = gr.Dropdown(label="Right", choices=[(("Base model (no tuning)"), BASE)], value=BASE,
                                     elem_id="tl-chat-right-pick")
        with gr.Accordion("Settings (shared by both sides)", open=False):
            system = gr.Textbox(label="System prompt (optional)", placeholder="e.g. Answer in one short sentence.")
            with gr.Row():
                temperature = gr.Slider(0, 1.5, value=0.3, step=0.05, label="Temperature",
                                        info="0 gives the same answer every time; higher varies more.")
                max_tokens = gr.Slider(16, 512, value=160, step=16, label="Longest answer (tokens)")
                seed = gr.Number(label="Seed (0: a new one for each message)", precision=0, value=0, minimum=0,
                                 info="The same seed, settings and message give the same answers.")
        with gr.Row():
            panes, thumbs, edits = [], [], []
            for side, title in (("left", "Left"), ("right", "Right")):
                with gr.Column():
                    panes.append(gr.Chatbot(label=title, height=360, elem_id=f"tl-chat-{side}",
                                            feedback_options=None, buttons=["copy"]))
                    with gr.Row():
                        thumbs.append((gr.Button("👍 Good", elem_id=f"tl-chat-{side}-up", size="sm"),
                                       gr.Button("👎 Bad", elem_id=f"tl-chat-{side}-down", size="sm")))
                        edits.append(gr.Button("✎ Correct it", elem_id=f"tl-chat-{side}-edit", size="sm"))
        with gr.Row():
            pair = {value: gr.Button(text, elem_id=f"tl-chat-{value}", size="sm") for value, text in
                    (("left", "⬅ Left is better"), ("right", "Right is better ➡"), ("tie", "Tie"),
                     ("both_bad", "Both bad"))}
        with gr.Group(visible=False) as edit_box:
            corrected = gr.Textbox(label="The answer it should have given (saved as a training example)", lines=4,
                                   elem_id="tl-chat-corrected")
            with gr.Row():
                save_edit = gr.Button("Save correction", variant="primary", elem_id="tl-chat-save-edit")
                cancel_edit = gr.Button("Cancel")
        with gr.Row(equal_height=True):
            message = gr.Textbox(show_label=False, placeholder="Write a message to both models, then Enter",
                                 scale=6, elem_id="tl-chat-message")
            send = gr.Button("Send", variant="primary", scale=1, elem_id="tl-chat-send")
            clear = gr.Button("New conversation", scale=1)
        saved = gr.Markdown(elem_id="tl-chat-saved")
        conversation = gr.State(None)
        editing = gr.State(None)  # which side is being corrected
        seen_pair = gr.State(None)  # the default pair last shown, to tell when a newer run has finished

    def refresh(left, right, seen):
        """New runs join the choices; a run finished since the last look is put beside the one it was built on."""
        runs = ctx.runs().list()
        choices = source_choices(runs)
        values = {v for _, v in choices}
        newest = default_pair(runs)
        if left in values and right in values and newest == seen:
            return gr.update(choices=choices), gr.update(choices=choices), seen
        return gr.update(choices=choices, value=newest[0]), gr.update(choices=choices, value=newest[1]), newest

    def respond(text, conv, left, right, system_text, temp, tokens, seed_value):
        """Streams both answers into the panes; errors become a message for people."""
        text = (text or "").strip()
        if not text:
            raise gr.Error("Write a message first.")
        try:
            sources = [resolve(pool, ctx, left, right), resolve(pool, ctx, right, left)]
            sampling = Sampling(float(temp), int(tokens), int(seed_value) if seed_value else None,
                                (system_text or "").strip()).with_seed()
        except TuneloopError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        conv = conv or Conversation()
        conv.turn += 1
        conv.answers = None
        conv.corrected = set()
        user = {"role": "user", "content": text}
        conv.prompts = [_history(conv.shown[0]) + [user], _history(conv.shown[1]) + [user]]
        shown = [conv.shown[0] + [user], conv.shown[1] + [user]]
        yield shown[0], shown[1], conv, "", ""
        answers = None
        try:
            for answers in pool.stream(list(zip(sources, conv.prompts)), sampling):
                yield (*[s + [{"role": "assistant", "content": a.text}] for s, a in zip(shown, answers)],
                       conv, "", "")
        except TuneloopError as exc:
            raise gr.Error(str(exc), print_exception=False) from None
        conv.shown = [s + [{"role": "assistant", "content": a.text or "(no answer)"}] for s, a in zip(shown, answers)]
        conv.answers = answers
        yield conv.shown[0], conv.shown[1], conv, "", "Both have answered: judge them with the buttons below."

    def last_turn(conv: Conversation | None) -> Conversation:
        if conv is None or conv.prompts is None:
            raise gr.Error("Send a message first; then judge the answers.")
        if not conv.answers:
            raise gr.Error("Both models are still answering: judge when they have finished.")
        return conv

    @plain_errors
    def thumb(conv, side: int, value: str):
        conv = last_turn(conv)
        name = ("left", "right")[side]
        if side in conv.corrected:
            raise gr.Error(f"The {name} answer shown is your correction, already saved as a training example; "
                           "there is no model answer there left to judge.", print_exception=False)
        LabelStore(ctx.db()).add_thumb(conv.prompts[side], conv.answers[side], value, session=conv.session,
                                       origin="chat", target=conv.target(name))
        return saved_text(conv, f"{'👍 good' if value == 'up' else '👎 bad'} for the {name} answer")

    @plain_errors
    def choose(conv, value: str):
        conv = last_turn(conv)
        if conv.corrected:
            raise gr.Error("You corrected an answer in this turn, so the two answers shown are no longer both the "
                           "models'. Send the next message to compare again.", print_exception=False)
        LabelStore(ctx.db()).add_choice(conv.prompts[0], conv.answers[0], conv.answers[1], value,
                                        right_prompt=conv.prompts[1], session=conv.session, origin="chat",
                                        target=conv.target())
        return saved_text(conv, CHOICES[value])

    def start_edit(conv, side: int):
        conv = last_turn(conv)
        return gr.Group(visible=True), conv.answers[side].text, side

    @plain_errors
    def save_correction(conv, side, text):
        conv = last_turn(conv)
        if side is None:
            raise gr.Error("Click 'Correct it' under an answer first.")
        LabelStore(ctx.db()).add_edit(conv.prompts[side], conv.answers[side], text, session=conv.session,
                                      origin="chat", target=conv.target(("left", "right")[side] + "-edit"))
        conv.shown[side][-1] = {"role": "assistant", "content": text.strip()}  # the conversation goes on from it
        conv.corrected.add(side)
        what = f"your correction of the {('left', 'right')[side]} answer"
        return gr.Group(visible=False), None, conv, conv.shown[0], conv.shown[1], saved_text(conv, what)

    def saved_text(conv: Conversation, what: str) -> str:
        stats = label_stats(ctx.db(), conv.session)
        total = stats["kto_examples"] + stats["dpo_pairs"] + stats["not_trained"] + stats["edits"]
        return f"Saved: {esc(what)}. Labels from this conversation: {total}."

    def new_conversation():
        return [], [], None, "", gr.Group(visible=False)

    inputs = [message, conversation, left_pick, right_pick, system, temperature, max_tokens, seed]
    outputs = [panes[0], panes[1], conversation, message, saved]
    gr.on([send.click, message.submit], respond, inputs, outputs, concurrency_id="tl-generate")
    for i, (up, down) in enumerate(thumbs):
        up.click(lambda conv, i=i: thumb(conv, i, "up"), conversation, saved)
        down.click(lambda conv, i=i: thumb(conv, i, "down"), conversation, saved)
        edits[i].click(lambda conv, i=i: start_edit(conv, i), conversation, [edit_box, corrected, editing])
    for value, button in pair.items():
        button.click(lambda conv, value=value: choose(conv, value), conversation, saved)
    save_edit.click(save_correction, [conversation, editing, corrected],
                    [edit_box, editing, conversation, panes[0], panes[1], saved])
    cancel_edit.click(lambda: (gr.Group(visible=False), None), None, [edit_box, editing])
    gr.on([clear.click, left_pick.change, right_pick.change, panes[0].clear, panes[1].clear], new_conversation,
          None, [panes[0], panes[1], conversation, saved, edit_box])
    tab.select(refresh, [left_pick, right_pick, seen_pair], [left_pick, right_pick, seen_pair])
    demo.load(refresh, [left_pick, right_pick, seen_pair], [left_pick, right_pick, seen_pair])
    return {"tab": tab, "left": left_pick, "right": right_pick, "panes": panes}


def _history(shown: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in shown]
