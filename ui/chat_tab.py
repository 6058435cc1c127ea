"""Chat tab: one message goes to two models side by side (the base model and a run, or two runs); both answers
stream in together. Under each answer 👍 / 👎 and an edit; under the pair which side was better. Every click
is saved at once, with the conversation, the answer, which model and run gave it, and the settings."""
import random
from dataclasses import dataclass, field
from functools import partial

import gradio as gr

from backend.accounts import LOCAL_OWNER
from backend.answers import Sampling, sampling_declarations
from backend.labels import LabelStore, label_stats, new_session
from backend.labels.sides import side_names
from backend.labels.store import PREFERS_ONE, value_words
from backend.limits import text_cap
from ui.common import BASE, BASE_LABEL, Context, default_pair, esc, on, resolve_source, source_choices
from ui.settings_form import slider
from ui.team import on_as

SIDES = ("left", "right")
BLIND_WORDS = {"left": "A better", "right": "B better"}  # blind, the sides are named A and B


@dataclass
class Conversation:
    session: str = field(default_factory=new_session)
    shown: list = field(default_factory=lambda: [[], []])  # each pane's messages, as the Chatbot shows them
    turn: int = 0
    prompts: list | None = None  # what each side answered in the last turn
    answers: list | None = None  # the last turn's two Answers, once both are complete
    corrected: set = field(default_factory=set)  # sides (0, 1) whose last answer the person replaced
    blind: bool = False  # blind A/B: the panes are "A" and "B", which model is where shows only after the vote
    swapped: bool = False  # blind: the second pick answers on the left
    revealed: bool = False  # blind: voted, names shown; the next message starts a new blind round

    def target(self, side: str = "pair") -> str:
        return f"{self.session}:{self.turn}:{side}"


def refresh(ctx: Context, v: dict):
    """New runs join the choices; a run finished since the last look is put beside the one it was built on."""
    choices = source_choices(ctx)
    values = {value for _, value in choices}
    newest = default_pair(ctx)
    if v["left"] in values and v["right"] in values and newest == v["seen"]:
        return gr.update(choices=choices), gr.update(choices=choices), v["seen"]
    return gr.update(choices=choices, value=newest[0]), gr.update(choices=choices, value=newest[1]), newest


def respond(ctx: Context, v: dict):
    """Streams both answers into the panes."""
    text = (v["message"] or "").strip()
    if not text:
        raise gr.Error("Write a message first.")
    sources = [resolve_source(ctx, v["left"], v["right"]), resolve_source(ctx, v["right"], v["left"])]
    sampling = Sampling.of(temperature=v["temperature"], max_new_tokens=v["max_tokens"], seed=v["seed"] or None,
                           system=(v["system"] or "").strip()).with_seed()
    conv = v["conversation"] or Conversation()
    if v.get("blind") and (not conv.blind or conv.revealed):
        conv = Conversation(blind=True, swapped=random.random() < 0.5)  # a new blind round, sides shuffled
    if conv.swapped:
        sources.reverse()
    conv.turn += 1
    conv.answers = None
    conv.corrected = set()
    user = {"role": "user", "content": text}
    conv.prompts = [_history(conv.shown[0]) + [user], _history(conv.shown[1]) + [user]]
    shown = [conv.shown[0] + [user], conv.shown[1] + [user]]
    yield shown[0], shown[1], conv, "", ""
    answers = None
    for answers in ctx.pool.stream(list(zip(sources, conv.prompts)), sampling):
        yield (*[s + [{"role": "assistant", "content": a.text}] for s, a in zip(shown, answers)], conv, "", "")
    conv.shown = [s + [{"role": "assistant", "content": a.text or "(no answer)"}] for s, a in zip(shown, answers)]
    conv.answers = answers
    yield conv.shown[0], conv.shown[1], conv, "", (f"Both have answered ({made_with(sampling)}): judge them with the "
                                                   "buttons above.")  # this line is under them


def made_with(sampling: Sampling) -> str:
    """The settings the answers were made with, the ones each label of them records."""
    return (f"temperature {sampling.temperature:g}, at most {sampling.max_new_tokens} tokens, seed {sampling.seed}"
            + (", with your system prompt" if sampling.system else ""))


def labeller(v: dict) -> str:
    """The name the signed-in account's labels carry (ui.team.on_as puts the account in)."""
    return v.get("account", LOCAL_OWNER).labeller


def last_turn(conv: Conversation | None) -> Conversation:
    if conv is None or conv.prompts is None:
        raise gr.Error("Send a message first; then judge the answers.")
    if not conv.answers:
        raise gr.Error("Both models are still answering: judge when they have finished.")
    return conv


def thumb(ctx: Context, v: dict, side: int, value: str) -> str:
    conv = last_turn(v["conversation"])
    name = SIDES[side]
    if side in conv.corrected:
        raise gr.Error(f"The {name} answer shown is your correction, already saved as a training example; "
                       "there is no model answer there left to judge.", print_exception=False)
    LabelStore(ctx.db()).add_thumb(conv.prompts[side], conv.answers[side], value, session=conv.session,
                                   origin="chat", target=conv.target(name), labeller=labeller(v))
    return saved_text(ctx, conv, f"{value_words(value)} for the {name} answer")


def choose(ctx: Context, v: dict, value: str) -> str:
    """A/B on the last turn: always the two models' own answers, as they gave them (a correction saved since is an
    example of its own). The text says when the choice makes no DPO pair: the two answers then follow different
    conversations (each side's history holds its own earlier answers, or the person's correction)."""
    conv = last_turn(v["conversation"])
    if conv.blind and conv.revealed:
        raise gr.Error("You have voted in this blind round: send a message to start the next one.",
                       print_exception=False)
    LabelStore(ctx.db()).add_choice(conv.prompts[0], conv.answers[0], conv.answers[1], value,
                                    right_prompt=conv.prompts[1], session=conv.session, origin="chat",
                                    target=conv.target(), labeller=labeller(v), blind=conv.blind)
    text = saved_text(ctx, conv, BLIND_WORDS.get(value, value_words(value)) if conv.blind
                      else value_words(value))
    if conv.corrected:
        text += " It judges the two models' own answers, as they gave them before your correction."
    if value in PREFERS_ONE and conv.prompts[0] != conv.prompts[1]:
        text += (f" It {'counts in the win-rates but ' if conv.blind else ''}makes no DPO pair: the two answers "
                 "follow different conversations (each side's earlier answers, or your correction, are in its "
                 "history). To make pairs, start a **New conversation** for each question.")
    if not conv.blind:
        text += (" You saw which model gave which answer, so it does not count in the win-rates (only blind votes "
                 "do: tick **Blind A/B**).")
    if conv.blind:
        conv.revealed = True
        names = side_names(ctx.db(), conv.answers)
        text += (f" **Revealed:** A (left) was {esc(names[0])}, B (right) was {esc(names[1])}. "
                 "Send a message to start the next blind round.")
    return text


def show_blind(ctx: Context, v: dict):
    """Blind A/B on: the picks become two models in no order, the panes A and B; off: left and right again."""
    blind = bool(v["blind"])
    return (gr.update(label="Model 1 (side shuffled)" if blind else "Left"),
            gr.update(label="Model 2 (side shuffled)" if blind else "Right"),
            gr.update(label="A" if blind else "Left"), gr.update(label="B" if blind else "Right"),
            gr.update(value="⬅ A is better" if blind else "⬅ Left is better"),
            gr.update(value="B is better ➡" if blind else "Right is better ➡"))


def start_edit(ctx: Context, v: dict, side: int):
    conv = last_turn(v["conversation"])
    return gr.Group(visible=True), conv.answers[side].text, side


def save_correction(ctx: Context, v: dict):
    conv, side = last_turn(v["conversation"]), v["editing"]
    if side is None:
        raise gr.Error("Click 'Correct it' under an answer first.")
    LabelStore(ctx.db()).add_edit(conv.prompts[side], conv.answers[side], v["corrected"], session=conv.session,
                                  origin="chat", target=conv.target(SIDES[side] + "-edit"), labeller=labeller(v))
    conv.shown[side][-1] = {"role": "assistant", "content": v["corrected"].strip()}  # the conversation goes on
    conv.corrected.add(side)
    what = f"your correction of the {SIDES[side]} answer, as an SFT example"
    return (gr.Group(visible=False), None, conv, conv.shown[0], conv.shown[1], saved_text(ctx, conv, what) +
            f" The {SIDES[side]} side now goes on from your correction. The A/B buttons still judge the two models' "
            "own answers to this message.")


def saved_text(ctx: Context, conv: Conversation, what: str) -> str:
    stats = label_stats(ctx.db(), conv.session)
    total = stats["kto_examples"] + stats["dpo_pairs"] + stats["not_trained"] + stats["edits"]
    return f"Saved: {esc(what)}. Labels from this conversation: {total}."


def new_conversation(ctx: Context, v: dict):
    return [], [], None, "", gr.Group(visible=False)


def create_chat_tab(ctx: Context, demo: gr.Blocks, labeller_view: bool = False):
    """The Chat tab; with `labeller_view`, a labeller's (their page's, beside Label)."""
    answer_settings = {d.name: d for d in sampling_declarations()}
    with gr.Tab("Chat" if labeller_view else "6. Chat", id="labeller-chat" if labeller_view else "chat") as tab:
        gr.Markdown("Ask both models the same thing and compare. Your judgements are saved as you click" +
                    ("." if labeller_view else "; train on them in the **7. Label** tab."))
        with gr.Row():
            left_pick = gr.Dropdown(label="Left", choices=[(BASE_LABEL, BASE)], value=BASE,
                                    elem_id="tl-chat-left-pick")
            right_pick = gr.Dropdown(label="Right", choices=[(BASE_LABEL, BASE)], value=BASE,
                                     elem_id="tl-chat-right-pick")
        blind = gr.Checkbox(label="Blind A/B: hide which model answers on which side until I vote", value=False,
                            elem_id="tl-chat-blind",
                            info="The sides are shuffled and shown as A and B; only blind votes count in the "
                                 "win-rates in the Runs tab.")
        with gr.Accordion("Settings (shared by both sides)", open=False):
            system = gr.Textbox(label=answer_settings["system"].meta["label"],
                                placeholder="e.g. Answer in one short sentence.", max_length=text_cap("system"))
            with gr.Row():
                temperature = slider(answer_settings["temperature"], info=answer_settings["temperature"].meta["help"])
                max_tokens = slider(answer_settings["max_new_tokens"])
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
                                   elem_id="tl-chat-corrected", max_length=text_cap("corrected"))
            with gr.Row():
                save_edit = gr.Button("Save correction", variant="primary", elem_id="tl-chat-save-edit")
                cancel_edit = gr.Button("Cancel")
        with gr.Row(equal_height=True):
            message = gr.Textbox(show_label=False, placeholder="Write a message to both models, then Enter",
                                 scale=6, elem_id="tl-chat-message", max_length=text_cap("message"))
            send = gr.Button("Send", variant="primary", scale=1, elem_id="tl-chat-send")
            clear = gr.Button("New conversation", scale=1)
        saved = gr.Markdown(elem_id="tl-chat-saved")
        conversation = gr.State(None)
        editing = gr.State(None)  # which side is being corrected
        seen_pair = gr.State(None)  # the default pair last shown, to tell when a newer run has finished

    talk = {"message": message, "conversation": conversation, "left": left_pick, "right": right_pick,
            "system": system, "temperature": temperature, "max_tokens": max_tokens, "seed": seed, "blind": blind}
    on([send.click, message.submit], ctx, respond, talk, [panes[0], panes[1], conversation, message, saved],
       concurrency_id="tl-generate")
    conv = {"conversation": conversation}
    for i, (up, down) in enumerate(thumbs):
        on_as(up.click, ctx, demo, partial(thumb, side=i, value="up"), conv, saved)
        on_as(down.click, ctx, demo, partial(thumb, side=i, value="down"), conv, saved)
        on(edits[i].click, ctx, partial(start_edit, side=i), conv, [edit_box, corrected, editing])
    for value, button in pair.items():
        on_as(button.click, ctx, demo, partial(choose, value=value), conv, saved)
    on_as(save_edit.click, ctx, demo, save_correction, {**conv, "editing": editing, "corrected": corrected},
          [edit_box, editing, conversation, panes[0], panes[1], saved])
    cancel_edit.click(lambda: (gr.Group(visible=False), None), None, [edit_box, editing])
    on([clear.click, left_pick.change, right_pick.change, panes[0].clear, panes[1].clear, blind.change], ctx,
       new_conversation, None, [panes[0], panes[1], conversation, saved, edit_box])
    on(blind.change, ctx, show_blind, {"blind": blind}, [left_pick, right_pick, panes[0], panes[1], pair["left"],
                                                         pair["right"]])
    on([tab.select, demo.load], ctx, refresh, {"left": left_pick, "right": right_pick, "seen": seen_pair},
       [left_pick, right_pick, seen_pair])


def _history(shown: list[dict]) -> list[dict]:
    return [{"role": m["role"], "content": m["content"]} for m in shown]
