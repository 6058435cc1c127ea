"""Label tab: judge answers at speed. Prompts come from a stored dataset or a pasted list; answers are generated
ahead in the background, so the next one is ready the moment a judgement is given. Thumbs (good/bad) train KTO,
A/B choices (which of two is better) train DPO. Big buttons, keys, skip, undo, a running count; then one click
trains on the labels, on top of the run whose answers were judged."""
import json
from dataclasses import dataclass, field
from datetime import datetime

import gradio as gr

from backend.chat import ModelPool, Sampling
from backend.labels import (LabelQueue, LabelStore, Side, label_stats, new_session, train_on_labels, write_jsonl)
from backend.labels.export import rows_for
from backend.labels.prompts import prompts_from_dataset, prompts_from_text
from backend.presets import list_presets
from ui.chat_tab import BASE, default_pair, resolve, source_choices
from ui.common import Context, esc, plain_errors
from ui.export_tab import exports_dir

AHEAD = 8  # answers kept ready ahead of the person
BATCH = 16  # answers generated together: on a CPU a batch of 16 costs little more than a few one at a time
NEXT_TIMEOUT = 300  # seconds to wait for an answer still being generated
KEYS = {"g": "tl-key-good", "b": "tl-key-bad", "1": "tl-key-left", "2": "tl-key-right", "3": "tl-key-tie",
        "4": "tl-key-both-bad", "s": "tl-key-skip", "u": "tl-key-undo"}
KEYS_JS = """() => {
  if (window.tuneloopLabelKeys) return;
  window.tuneloopLabelKeys = true;
  const keys = %s;
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey || event.repeat) return;
    const target = event.target;
    if (target && (target.tagName === "INPUT" || target.tagName === "TEXTAREA" || target.isContentEditable)) return;
    const button = document.getElementById(keys[event.key.toLowerCase()] || "");
    if (!button || button.offsetParent === null || button.disabled) return;
    event.preventDefault();
    button.click();
  });
}""" % json.dumps(KEYS)
CSS = """
.tl-prompt { font-size: 1.05rem; padding: 0.6rem 0.8rem; border-left: 4px solid var(--color-accent); }
.tl-answer { white-space: pre-wrap; font-size: 1.05rem; line-height: 1.45; padding: 0.8rem; min-height: 6rem;
             border: 1px solid var(--border-color-primary); border-radius: 8px; }
.tl-answer-title { font-weight: 600; margin-bottom: 0.3rem; }
.tl-big button, button.tl-big { min-height: 3.2rem; font-size: 1.1rem; }
"""
VALUE_WORDS = {"up": "👍 good", "down": "👎 bad", "left": "left better", "right": "right better", "tie": "tie",
               "both_bad": "both bad"}
MODES = [("Thumbs: is this answer good or bad? (trains KTO)", "thumb"),
         ("A/B: which of two answers is better? (trains DPO)", "ab")]
PROMPT_SOURCES = [("A saved dataset", "dataset"), ("A list I paste", "pasted")]


@dataclass
class LabelSession:
    queue: LabelQueue
    session: str = field(default_factory=new_session)
    item: object = None  # the Item on screen
    given: list = field(default_factory=list)  # (label id, Item), for undo
    skipped: int = 0

    def close(self):
        self.queue.close()


def _close(session):
    if isinstance(session, LabelSession):
        session.close()


def create_label_tab(ctx: Context, demo: gr.Blocks, pool: ModelPool, tabs: gr.Tabs, watch: gr.State) -> dict:
    presets = list_presets()
    with gr.Tab("7. Label", id="label") as tab:
        with gr.Accordion("1. What to label", open=True) as setup:
            with gr.Row():
                prompt_from = gr.Radio(PROMPT_SOURCES, value="pasted", label="Prompts from")
                dataset = gr.Dropdown(label="Dataset", choices=[], visible=False)
            pasted = gr.Textbox(label="Prompts, one per line", lines=5, elem_id="tl-label-pasted",
                                placeholder="What is the capital of France?\nWrite a haiku about rain.")
            mode = gr.Radio(MODES, value="thumb", label="How to judge")
            with gr.Row():
                source_a = gr.Dropdown(label="Answers from", choices=[("Base model (no tuning)", BASE)], value=BASE)
                temperature_a = gr.Slider(0, 1.5, value=0.7, step=0.05, label="Temperature")
                source_b = gr.Dropdown(label="Second answers from", choices=[("Base model (no tuning)", BASE)],
                                       value=BASE, visible=False)
                temperature_b = gr.Slider(0, 1.5, value=1.0, step=0.05, label="Second temperature", visible=False)
            with gr.Row():
                system = gr.Textbox(label="System prompt (optional)", scale=3)
                max_tokens = gr.Slider(16, 512, value=128, step=16, label="Longest answer (tokens)", scale=2)
            start = gr.Button("Start labelling", variant="primary", elem_id="tl-label-start")
        with gr.Column(visible=False) as board:
            count = gr.Markdown(elem_id="tl-label-count")
            prompt_html = gr.HTML(elem_id="tl-label-prompt")
            with gr.Row(equal_height=True):
                answer_a = gr.HTML(elem_id="tl-label-answer-a")
                answer_b = gr.HTML(elem_id="tl-label-answer-b", visible=False)
            with gr.Row(visible=True) as thumb_row:
                good = gr.Button("👍 Good  [G]", elem_id="tl-key-good", variant="primary", elem_classes="tl-big")
                bad = gr.Button("👎 Bad  [B]", elem_id="tl-key-bad", variant="stop", elem_classes="tl-big")
            with gr.Row(visible=False) as ab_row:
                choices = {"left": gr.Button("⬅ Left better  [1]", elem_id="tl-key-left", elem_classes="tl-big"),
                           "right": gr.Button("Right better ➡  [2]", elem_id="tl-key-right", elem_classes="tl-big"),
                           "tie": gr.Button("Tie  [3]", elem_id="tl-key-tie", elem_classes="tl-big"),
                           "both_bad": gr.Button("Both bad  [4]", elem_id="tl-key-both-bad", elem_classes="tl-big")}
            with gr.Row():
                skip = gr.Button("Skip  [S]", elem_id="tl-key-skip")
                undo = gr.Button("Undo  [U]", elem_id="tl-key-undo")
            shown_id = gr.Textbox(visible=False)  # the item on screen when a key was pressed
        with gr.Accordion("2. Train on your labels", open=True):
            totals = gr.Markdown(elem_id="tl-label-totals")
            preset = gr.Radio([(p["title"], p["name"]) for p in presets], value=presets[0]["name"],
                              label="How much training (preset)")
            with gr.Row():
                train_kto = gr.Button("Train KTO on the thumbs", variant="primary", elem_id="tl-train-kto")
                train_dpo = gr.Button("Train DPO on the A/B choices", variant="primary", elem_id="tl-train-dpo")
                train_sft = gr.Button("Train SFT on the corrections", elem_id="tl-train-sft")
            trained = gr.Markdown(elem_id="tl-label-trained")
            with gr.Row():
                export_kto = gr.Button("Download thumbs as KTO JSONL", size="sm")
                export_dpo = gr.Button("Download choices as DPO JSONL", size="sm")
                export_sft = gr.Button("Download corrections as SFT JSONL", size="sm")
            download = gr.File(label="Download", visible=False, interactive=False)
        state = gr.State(None, delete_callback=_close)
        seen_newest = gr.State(None)  # the newest finished run at the last look

    def refresh(current_a, current_b, current_dataset, seen):
        """New runs and datasets join the choices; a run finished since the last look becomes the source."""
        runs = ctx.runs().list()
        choices = source_choices(runs)
        values = {v for _, v in choices}
        _, newest = default_pair(runs)
        datasets = [d["name"] for d in ctx.datasets().list()]

        def pick(current):  # no value sent when keeping it: a reply from an earlier look may still be on its way
            keep = newest == seen and current in values
            return gr.update(choices=choices) if keep else gr.update(choices=choices, value=newest)
        return (pick(current_a), pick(current_b),
                gr.update(choices=datasets, value=current_dataset if current_dataset in datasets else
                          (datasets[0] if datasets else None)),
                totals_text(), newest)

    def totals_text() -> str:
        s = label_stats(ctx.db())
        t = s["thumbs"]
        return (f"**All labels so far:** 👍 {t['up']} good, 👎 {t['down']} bad → {s['kto_examples']} KTO examples · "
                f"{s['dpo_pairs']} A/B choices → DPO pairs (and {s['not_trained']} ties or 'both bad', which make "
                f"no pair) · {s['edits']} corrections → SFT examples.")

    def show_mode(value):
        ab = value == "ab"
        return (gr.update(label="Left answers from" if ab else "Answers from"), gr.update(visible=ab),
                gr.update(visible=ab))

    @plain_errors
    def begin(old, source_kind, dataset_name, pasted_text, mode_value, a, temp_a, b, temp_b, system_text, tokens):
        _close(old)
        if source_kind == "dataset":
            if not dataset_name:
                raise gr.Error("Pick a dataset, or paste a list of prompts.")
            prompts = prompts_from_dataset(ctx.db(), dataset_name)
        else:
            prompts = prompts_from_text(pasted_text)
        system_text = (system_text or "").strip()
        sides = [Side(resolve(pool, ctx, a, b), Sampling(float(temp_a), int(tokens), None, system_text))]
        if mode_value == "ab":
            sides.append(Side(resolve(pool, ctx, b, a), Sampling(float(temp_b), int(tokens), None, system_text)))
        session = LabelSession(LabelQueue(pool, prompts, sides, ahead=AHEAD, batch_size=BATCH))
        return (*advance(session, f"Generating the first answers ({len(prompts)} prompts)..."),
                gr.Column(visible=True), gr.Accordion(open=False), gr.Row(visible=mode_value == "thumb"),
                gr.Row(visible=mode_value == "ab"), gr.update(visible=mode_value == "ab"))

    def advance(session: LabelSession, note: str = ""):
        try:
            session.item = session.queue.next(timeout=NEXT_TIMEOUT)
        except TimeoutError:
            session.item = None
            note = "The next answer is still being generated (the computer is busy): press Skip [S] in a moment."
        return render(session, note)

    def render(session: LabelSession, note: str = ""):
        item = session.item
        ab = session.queue.mode == "ab"
        if item is None:
            prompt = ("<b>All prompts are judged.</b> Train on your labels below, or start again with more prompts."
                      if session.queue.left() == 0 else "<b>Waiting for the next answer...</b>")
            a = b = ""
        else:
            prompt = f'<div class="tl-prompt">{_conversation_html(item.prompt)}</div>'
            a = _answer_html("Left" if ab else "Answer", item.answers[0].text)
            b = _answer_html("Right", item.answers[1].text) if ab else ""
        return session, count_text(session, note), prompt, a, b, item.id if item else "", totals_text()

    def count_text(session: LabelSession, note: str) -> str:
        s = label_stats(ctx.db(), session.session)
        if session.queue.mode == "thumb":
            t = s["thumbs"]
            done = f"**{t['up'] + t['down']} judged** · 👍 {t['up']} good · 👎 {t['down']} bad"
        else:
            c = s["choices"]
            done = (f"**{sum(c.values())} judged** · left {c['left']} · right {c['right']} · tie {c['tie']} · "
                    f"both bad {c['both_bad']}")
        left = session.queue.left()
        return (f"{done} · {session.skipped} skipped · {session.queue.ready()} ready · {left} to go"
                + (f"  \n{esc(note)}" if note else ""))

    def current(session) -> LabelSession:
        if not isinstance(session, LabelSession):
            raise gr.Error("Press 'Start labelling' first.")
        return session

    @plain_errors
    def judge(session, shown, value):
        session = current(session)
        item = session.item
        if item is None or item.id != shown:
            return NOTHING  # a key pressed twice for one answer, or after the end
        store = LabelStore(ctx.db())
        if session.queue.mode == "thumb":
            label_id = store.add_thumb(item.prompt, item.answers[0], value, session=session.session, origin="label")
        else:
            label_id = store.add_choice(item.prompt, item.answers[0], item.answers[1], value,
                                        session=session.session, origin="label")
        session.given.append((label_id, item))
        return advance(session)

    @plain_errors
    def skip_item(session, shown):
        session = current(session)
        if session.item is None:  # waiting for an answer that was late: look again
            return advance(session)
        if session.item.id != shown:
            return NOTHING
        session.skipped += 1
        return advance(session)

    @plain_errors
    def undo_last(session, shown):
        session = current(session)
        label = LabelStore(ctx.db()).undo(session.session)
        if label is None:
            return render(session, "Nothing to undo.")
        for i, (label_id, item) in enumerate(session.given):
            if label_id == label["id"]:
                session.given.pop(i)
                if session.item is not None:
                    session.queue.put_back(session.item)
                session.item = item
                break
        return render(session, f"Took back your last judgement ({VALUE_WORDS[label['value']]}): judge it again.")

    @plain_errors
    def train(kind, preset_name):
        run_id, dataset_name = train_on_labels(ctx.db(), ctx.runner, kind, preset=preset_name)
        run = ctx.runs().get(run_id)
        base_run = run["config"]["base_run"]
        built_on = f"on top of run '{esc(base_run)}'" if base_run else "from the base model"
        gr.Info(f"Started {kind.upper()} on your labels.")
        text = (f"Started **{esc(run['name'])}** ({kind.upper()} on dataset '{esc(dataset_name)}', {built_on}). "
                "When it has finished, compare it with the one before in the **6. Chat** tab.")
        return text, run_id, gr.Tabs(selected="live")

    @plain_errors
    def export(kind):
        rows = rows_for(ctx.db(), kind)
        path = write_jsonl(rows, exports_dir() / f"labels-{kind}-{datetime.now():%Y%m%d-%H%M%S}.jsonl")
        gr.Info(f"{len(rows)} {kind.upper()} rows written.")
        return gr.File(value=str(path), visible=True)

    board_outputs = [state, count, prompt_html, answer_a, answer_b, shown_id, totals]
    NOTHING = tuple(gr.skip() for _ in board_outputs)
    mode.change(show_mode, mode, [source_a, source_b, temperature_b])
    mode.change(lambda m: gr.update(visible=m == "ab"), mode, answer_b)
    prompt_from.change(lambda v: (gr.update(visible=v == "dataset"), gr.update(visible=v == "pasted")),
                       prompt_from, [dataset, pasted])
    start.click(begin, [state, prompt_from, dataset, pasted, mode, source_a, temperature_a, source_b, temperature_b,
                        system, max_tokens],
                board_outputs + [board, setup, thumb_row, ab_row, answer_b], concurrency_id="tl-generate")
    good.click(lambda s, shown: judge(s, shown, "up"), [state, shown_id], board_outputs)
    bad.click(lambda s, shown: judge(s, shown, "down"), [state, shown_id], board_outputs)
    for value, button in choices.items():
        button.click(lambda s, shown, value=value: judge(s, shown, value), [state, shown_id], board_outputs)
    skip.click(skip_item, [state, shown_id], board_outputs)
    undo.click(undo_last, [state, shown_id], board_outputs)
    train_kto.click(lambda p: train("kto", p), preset, [trained, watch, tabs])
    train_dpo.click(lambda p: train("dpo", p), preset, [trained, watch, tabs])
    train_sft.click(lambda p: train("sft", p), preset, [trained, watch, tabs])
    for kind, button in (("kto", export_kto), ("dpo", export_dpo), ("sft", export_sft)):
        button.click(lambda kind=kind: export(kind), None, download)
    refresh_inputs = [source_a, source_b, dataset, seen_newest]
    tab.select(refresh, refresh_inputs, [source_a, source_b, dataset, totals, seen_newest])
    demo.load(refresh, refresh_inputs, [source_a, source_b, dataset, totals, seen_newest])
    demo.load(None, None, None, js=KEYS_JS)
    return {"tab": tab}


def _conversation_html(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        who = {"user": "", "assistant": "Assistant: ", "system": "System: "}.get(m["role"], m["role"] + ": ")
        parts.append(f"<div>{esc(who)}{esc(m['content'])}</div>")
    return "".join(parts)


def _answer_html(title: str, text: str) -> str:
    return f'<div class="tl-answer-title">{esc(title)}</div><div class="tl-answer">{esc(text) or "(empty)"}</div>'
