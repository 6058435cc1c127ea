"""Label tab: judge answers at speed. Prompts come from a stored dataset or a pasted list; answers are generated
ahead in the background, so the next one is ready the moment a judgement is given. Thumbs (good/bad) train KTO,
A/B choices (which of two is better) train DPO. Big buttons, keys, skip, undo, a running count; then one click
trains on the labels, on top of the run whose answers were judged.

A key judges the answer that was on screen when it was pressed, or nothing: each key carries the id of the item
shown, and no handler waits for an answer still being generated. When none is ready the page says so, a timer looks
again each second, and keys pressed meanwhile judge nothing."""
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from functools import partial

import gradio as gr

from backend import workspace
from backend.accounts import LOCAL_OWNER
from backend.answers import Sampling, sampling_declarations
from backend.labels import (LabelQueue, LabelStore, Side, label_stats, new_session, readiness, train_on_labels,
                            write_jsonl)
from backend.labels.export import export_rows, stats_lines
from backend.labels.shared import Seat, SharedQueues
from backend.labels.sides import side_names
from backend.labels.store import MARKS, VALUE_WORDS, value_words
from backend.labels.team_rules import RULES, rule_counts
from backend.labels.training import labels_used, trainable_rows
from backend.words import plural
from backend.labels.prompts import prompts_from_dataset, prompts_from_text
from backend.limits import text_cap
from backend.presets import list_presets
from ui.common import (BASE, BASE_LABEL, Context, bind, default_pair, esc, on, plain_words, resolve_source,
                       source_choices)
from ui.settings_form import slider
from ui.exposure import LABELLER_PAGE
from ui.team import on_as

AHEAD = 8  # answers kept ready ahead of the person
BATCH = 16  # answers generated together: on a CPU a batch of 16 costs little more than a few one at a time
FIRST_TIMEOUT = 300  # seconds Start waits for the first answer (later ones are looked for by the timer)
POLL_SECONDS = 1.0  # while no answer is ready, how often the page looks again
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
# A labeller's page goes back to the sign-in form the moment they are signed out (removed, or given a new password):
# the server ends the page's open streams then (ui/exposure.py), so a stream of its own ending is the signal, and
# the page asks whether it is still signed in (a dropped network ends the stream too, and is not a sign-out).
SIGNED_OUT_JS = """() => {
  if (window.tuneloopSignedOutWatch) return;
  window.tuneloopSignedOutWatch = true;
  const base = location.pathname.replace(/\\/%(page)s\\/?$/, "/");
  const watch = new EventSource(base + "gradio_api/heartbeat/tuneloop-" + Math.random().toString(36).slice(2));
  watch.onerror = async () => {
    try {
      const asked = await fetch(base + "config?page=%(page)s", {credentials: "same-origin"});
      if (asked.status === 401) { watch.close(); location.reload(); }
    } catch (error) { /* the network is down: the stream tries again, and so will this */ }
  };
}""" % {"page": LABELLER_PAGE}
CSS = """
.tl-prompt { font-size: 1.05rem; padding: 0.6rem 0.8rem; border-left: 4px solid var(--color-accent); }
.tl-answer { white-space: pre-wrap; overflow-wrap: anywhere; font-size: 1.05rem; line-height: 1.45; padding: 0.8rem;
             min-height: 6rem; border: 1px solid var(--border-color-primary); border-radius: 8px; }
.tl-answer-title { font-weight: 600; margin-bottom: 0.3rem; }
.tl-big button, button.tl-big { min-height: 3.2rem; font-size: 1.1rem; }
"""
MODES = [("Thumbs: is this answer good or bad? (trains KTO)", "thumb"),
         ("A/B: which of two answers is better? (trains DPO)", "ab")]
PROMPT_SOURCES = [("A saved dataset", "dataset"), ("A list I paste", "pasted")]
TRAIN_BUTTONS = {"kto": "Train KTO on the thumbs", "dpo": "Train DPO on the A/B choices",
                 "sft": "Train SFT on the corrections"}
RULE_CHOICES = {"every": "Every label", "majority": "The majority per answer (more than half; ties dropped)",
                "all_agree": "Only answers everyone agreed on"}
SECOND_TEMPERATURE = 1.0  # the second side of an A/B session varies more by default, so the two answers differ


@dataclass
class LabelSession:
    queue: Seat  # this person's place at the queue they share with everyone who labels the same
    session: str = field(default_factory=new_session)
    item: object = None  # the Item on screen
    given: list = field(default_factory=list)  # (label id, Item), for undo
    skipped: int = 0
    blind: bool = True  # A/B: which model gave which answer is shown only after the vote (sides are shuffled)
    failed: str = ""  # why generating stopped, if it did
    note: str = ""  # the count's last note ("Revealed: ..."), kept when the timer shows the next answer
    labeller: str | None = None  # a labeller's page: the totals and the progress count only their labels
    # Handlers of one page run at once (a key, the timer, undo): each reads and changes `item` under this lock
    lock: threading.Lock = field(default_factory=threading.Lock)

    def close(self):
        self.queue.close()


def _close(session):
    if isinstance(session, LabelSession):
        session.close()


def refresh(ctx: Context, v: dict):
    """New runs and datasets join the choices; a run finished since the last look becomes the source."""
    choices = source_choices(ctx)
    values = {value for _, value in choices}
    _, newest = default_pair(ctx)
    datasets = [d["name"] for d in ctx.datasets().list()]

    def pick(current):  # no value sent when keeping it: a reply from an earlier look may still be on its way
        keep = newest == v["seen"] and current in values
        return gr.update(choices=choices) if keep else gr.update(choices=choices, value=newest)
    return (pick(v["source_a"]), pick(v["source_b"]),
            gr.update(choices=datasets, value=v["dataset"] if v["dataset"] in datasets else
                      (datasets[0] if datasets else None)),
            totals_text(ctx, v.get("preset"), mine(v)), newest)


def mine(v: dict) -> str | None:
    """On a labeller's page, the name their labels carry: what their totals count."""
    account = v.get("account", LOCAL_OWNER)
    return None if account.is_owner else account.labeller


def totals_text(ctx: Context, preset: str | None = None, labeller: str | None = None) -> str:
    """All labels so far, in the words and numbers `python app.py labels stats` prints (one function counts), and
    with a preset chosen, how many rows each kind makes against the number that preset learns from. A labeller's
    page counts only their own."""
    stats = label_stats(ctx.db(), labeller=labeller)
    lines = [f"**Your labels so far, {esc(labeller)}:**" if labeller else "**All labels so far:**"] + \
        stats_lines(stats)
    if preset:
        lines += [f"**What the '{esc(preset)}' preset needs:**"] + [
            readiness(ctx.db(), kind, preset, stats=stats).words() for kind in ("dpo", "kto", "sft")]
    return "  \n".join(lines)


def show_mode(ctx: Context, v: dict):
    ab = v["mode"] == "ab"
    return (gr.update(label="First model" if ab else "Answers from"), gr.update(visible=ab),
            gr.update(visible=ab), gr.update(visible=ab), gr.update(visible=ab))


def show_prompt_source(ctx: Context, v: dict):
    return gr.update(visible=v["prompt_from"] == "dataset"), gr.update(visible=v["prompt_from"] == "pasted")


def begin(ctx: Context, v: dict):
    _close(v["state"])
    if v["prompt_from"] == "dataset":
        if not v["dataset"]:
            raise gr.Error("Pick a dataset, or paste a list of prompts.")
        prompts = prompts_from_dataset(ctx.db(), v["dataset"])
    else:
        prompts = prompts_from_text(v["pasted"])
    system = (v["system"] or "").strip()
    sides = [Side(resolve_source(ctx, v["source_a"], v["source_b"]),
                  Sampling.of(temperature=v["temperature_a"], max_new_tokens=v["max_tokens"], system=system))]
    if v["mode"] == "ab":
        sides.append(Side(resolve_source(ctx, v["source_b"], v["source_a"]),
                          Sampling.of(temperature=v["temperature_b"], max_new_tokens=v["max_tokens"], system=system)))
    seat = SharedQueues.of(ctx).join(prompts, sides, v.get("account", LOCAL_OWNER).labeller,
                                     lambda: LabelQueue(ctx.pool, prompts, sides, ahead=AHEAD, batch_size=BATCH),
                                     db=ctx.db)
    session = LabelSession(seat, blind=v.get("blind", True), labeller=mine(v))
    ab = v["mode"] == "ab"
    with session.lock:  # waits for the first answer: nothing is on screen to judge meanwhile
        shown = advance(ctx, session, v.get("preset"), wait=FIRST_TIMEOUT)
    return (*shown,
            gr.Column(visible=True), gr.Accordion(open=False), gr.Row(visible=not ab), gr.Row(visible=ab),
            gr.update(visible=ab))


def advance(ctx: Context, session: LabelSession, preset: str | None, note: str = "", wait: float = 0):
    """The next ready item on screen (session.lock held). None ready: the page says so, and the timer looks again;
    no handler waits for generation, so none holds the page while keys are pressed."""
    try:
        session.item = session.queue.next(timeout=wait)
    except TimeoutError:
        session.item = None
    except Exception as exc:  # generating failed: said once on the page (the traceback logged), the timer stops
        session.item, session.failed = None, f"Generating the answers stopped. {plain_words(exc, 'the label queue')}"
    return render(ctx, session, note, preset)


def render(ctx: Context, session: LabelSession, note: str = "", preset: str | None = None):
    item = session.item
    ab = session.queue.mode == "ab"
    waiting = item is None and session.queue.left() > 0 and not session.failed
    note = session.note = session.failed or note
    if item is None:
        progress = session.queue.progress()
        prompt = ("<b>Waiting for the next answer: it is being generated.</b> It shows here when it is ready; "
                  "keys pressed until then judge nothing." if waiting else
                  ("<b>All prompts are judged.</b> " if progress["complete"] >= progress["items"] else
                   f"<b>Nothing more for you here:</b> you judged or skipped every item open to you; those not yet "
                   f"complete are with other labellers (each item goes to {progress['overlap']}). ") +
                  ("Start again with more prompts." if session.labeller else
                   "Train on your labels below, or start again with more prompts."))
        a = b = ""
    else:
        prompt = f'<div class="tl-prompt">{_conversation_html(item.prompt)}</div>'
        titles = (["A (left)", "B (right)"] if session.blind else
                  [f"{side}: {name}" for side, name in zip(("Left", "Right"), side_names(ctx.db(), item.answers))]
                  ) if ab else ["Answer"]
        a = _answer_html(titles[0], item.answers[0].text)
        b = _answer_html(titles[1], item.answers[1].text) if ab else ""
    # Nothing on screen and nothing coming (all judged, or generating stopped): no buttons that judge nothing (the
    # walk: the A/B buttons stood under "All prompts are judged"). Undo stays: it brings the last one back.
    judging = item is not None or waiting
    return (session, count_text(ctx, session, note), prompt, a, b, item.id if item else "",
            totals_text(ctx, preset, session.labeller), gr.Timer(active=waiting), gr.Column(visible=judging),
            gr.Button(visible=judging))


def count_text(ctx: Context, session: LabelSession, note: str) -> str:
    s = label_stats(ctx.db(), session.session)
    if session.queue.mode == "thumb":
        t = s["thumbs"]
        done = f"**{sum(t.values())} judged** · " + " · ".join(f"{MARKS[v]} {t[v]} {words}"
                                                              for v, words in VALUE_WORDS["thumb"].items())
    else:
        c = s["choices"]
        done = (f"**{sum(c.values())} judged** · left {c['left']} · right {c['right']} · tie {c['tie']} · "
                f"both bad {c['both_bad']}")
    return (f"{done} · {session.skipped} skipped · {session.queue.ready()} ready · {session.queue.left()} to go"
            + (f"  \n{progress}" if (progress := progress_text(session)) else "") + (f"  \n{esc(note)}" if note else ""))


def progress_text(session: LabelSession) -> str:
    """How far the shared queue is: a labeller's own share, the owner's everyone's. Said once labels are shared (each
    item to two or more, or someone else labels the same queue); alone, the count above says it all."""
    everyone = session.queue.progress(everyone=True)
    if everyone["overlap"] == 1 and set(everyone["judged"]) <= {session.queue.labeller}:
        return ""
    shared = (f"Each item goes to {plural(everyone['overlap'], 'labeller')}: {everyone['complete']} of "
              f"{plural(everyone['items'], 'item')} complete")
    if session.labeller:
        mine_judged = everyone["judged"].get(session.queue.labeller, 0)
        return f"{shared} · you judged {mine_judged}"
    people = ", ".join(f"{esc(name)} {n}" for name, n in sorted(everyone["judged"].items())) or "nobody yet"
    return f"{shared} · judged by {people}"


def current(session) -> LabelSession:
    if not isinstance(session, LabelSession):
        raise gr.Error("Press 'Start labelling' first.")
    return session


def judge(ctx: Context, v: dict, value: str):
    session = current(v["state"])
    with session.lock:
        item = session.item
        if item is None or item.id != v["shown"]:
            return NOTHING  # a key for an answer no longer (or not yet) on screen: it judges nothing
        store = LabelStore(ctx.db())
        who = {"session": session.session, "origin": "label", "labeller": v.get("account", LOCAL_OWNER).labeller}
        if session.queue.mode == "thumb":
            label_id = store.add_thumb(item.prompt, item.answers[0], value, **who)
        else:
            label_id = store.add_choice(item.prompt, item.answers[0], item.answers[1], value, blind=session.blind,
                                        **who)
        session.given.append((label_id, item))
        session.queue.judged(item)
        session.item = None
        note = ""
        if session.queue.mode == "ab" and session.blind:
            left, right = side_names(ctx.db(), item.answers)  # one run at two temperatures: the temperatures
            note = f"Revealed: A (left) was {left}, B (right) was {right}."
        return advance(ctx, session, v.get("preset"), note)


def skip_item(ctx: Context, v: dict):
    session = current(v["state"])
    with session.lock:
        if session.item is None or session.item.id != v["shown"]:
            return NOTHING  # waiting (the timer looks), or a key for an answer no longer on screen
        session.skipped += 1
        session.queue.skipped(session.item)
        session.item = None
        return advance(ctx, session, v.get("preset"))


def look_again(ctx: Context, v: dict):
    """The timer, while no answer is on screen: shows the next one once it is ready."""
    session = v["state"]
    stop_looking = (*NOTHING[:TIMER], gr.Timer(active=False), *NOTHING[TIMER + 1:])
    if not isinstance(session, LabelSession):
        return stop_looking
    with session.lock:
        if session.item is not None:  # an undo brought one back meanwhile
            return stop_looking
        shown = advance(ctx, session, v.get("preset"), session.note)
        still_waiting = session.item is None and session.queue.left() > 0 and not session.failed
        return NOTHING if still_waiting else shown


def undo_last(ctx: Context, v: dict):
    """Takes back the session's last judgement and shows its answer again, at once (it waits for no generation)."""
    session = current(v["state"])
    with session.lock:
        label = LabelStore(ctx.db()).undo(session.session)
        if label is None:
            return render(ctx, session, "Nothing to undo.", v.get("preset"))
        for i, (label_id, item) in enumerate(session.given):
            if label_id == label["id"]:
                session.given.pop(i)
                if session.item is not None:
                    session.queue.put_back(session.item)
                session.queue.taken_back(item)
                session.item = item
                break
        return render(ctx, session, f"Took back your last judgement ({value_words(label['value'])}): judge it again.",
                      v.get("preset"))


def train(ctx: Context, v: dict, kind: str):
    """Starts a run on the labels of `kind`; with fewer than the preset learns from, the first click says how many
    there are and how many are useful, and the button asks again ("Train DPO anyway on 8 pairs")."""
    rule, leave_out = v.get("rule") or "every", v.get("leave_out") or None
    trainable_rows(ctx.db(), kind, rule, leave_out)  # none, or KTO with one kind of thumb: refused in words first
    ready = readiness(ctx.db(), kind, v["preset"], rule=rule, leave_out=leave_out)
    asked = (kind, ready.rows, v["preset"], rule, leave_out)
    if not ready.enough and v.get("asked") != asked:
        anyway = f"Train {kind.upper()} anyway on {ready.count()}"
        return (f"**Not started.** {ready.words()} Label more answers, or click **{anyway}** to train on "
                "these.", gr.skip(), gr.skip(), gr.Button(anyway), asked)
    run_id, dataset_name = train_on_labels(ctx.db(), ctx.runner, kind, preset=v["preset"], rule=rule,
                                           leave_out=leave_out)
    run = ctx.runs().get(run_id)
    base_run = run["config"]["base_run"]
    built_on = f"on top of run '{esc(base_run)}'" if base_run else "from the base model"
    gr.Info(f"Started {kind.upper()} on your labels.")
    text = (f"Started **{esc(run['name'])}** ({kind.upper()} on dataset '{esc(dataset_name)}': "
            f"{esc(labels_used(kind, rule, leave_out))}, {built_on}). "
            "When it has finished, compare it with the one before in the **6. Chat** tab.")
    return text, run_id, gr.Tabs(selected="live"), gr.Button(TRAIN_BUTTONS[kind]), None


def team_choices(ctx: Context, v: dict):
    """Which labels to train on, each with the rows it makes (kto and dpo), and the labellers one may leave out."""
    names = sorted(label_stats(ctx.db())["labellers"])
    leave_out = v.get("leave_out") if v.get("leave_out") in names else None
    counts = {kind: rule_counts(ctx.db(), kind, leave_out) for kind in ("kto", "dpo")}
    choices = [(f"{RULE_CHOICES[rule]}: {plural(counts['kto'][rule], 'KTO example')}, "
                f"{plural(counts['dpo'][rule], 'DPO pair')}", rule) for rule in RULES]
    return (gr.update(choices=choices), gr.update(choices=[("Nobody", "")] + [(n, n) for n in names],
                                                  value=leave_out or ""))


def rule_choices(ctx: Context, v: dict):
    """Another labeller left out: the rows of each choice again."""
    return team_choices(ctx, v)[0]


def new_preset(ctx: Context, v: dict):
    """Another preset needs another number of labels: the totals say it, and a 'Train anyway' asks again."""
    return (totals_text(ctx, v["preset"]), None, *(gr.Button(TRAIN_BUTTONS[kind]) for kind in TRAIN_BUTTONS))


def export(ctx: Context, v: dict, kind: str):
    rows = export_rows(ctx.db(), kind)  # each with its labeller
    path = write_jsonl(rows, workspace.exports_dir() / f"labels-{kind}-{datetime.now():%Y%m%d-%H%M%S}.jsonl")
    gr.Info(f"{len(rows)} {kind.upper()} rows written.")
    return gr.File(value=str(path), visible=True)


BOARD_OUTPUTS = 10  # state, count, prompt, answer a, answer b, shown id, totals, timer, judging buttons, skip
NOTHING = tuple(gr.skip() for _ in range(BOARD_OUTPUTS))
TIMER = 7  # the timer's place among them


def create_label_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs | None, watch: gr.State | None,
                     labeller_view: bool = False):
    """The owner's Label tab; with `labeller_view`, a labeller's (their page's): judging only, their own totals, no
    training or downloads."""
    presets = list_presets()
    answer_settings = {d.name: d for d in sampling_declarations()}
    with gr.Tab("Label" if labeller_view else "7. Label", id="labeller-label" if labeller_view else "label") as tab:
        with gr.Accordion("1. What to label", open=True) as setup:
            with gr.Row():
                prompt_from = gr.Radio(PROMPT_SOURCES, value="pasted", label="Prompts from")
                dataset = gr.Dropdown(label="Dataset", choices=[], visible=False)
            pasted = gr.Textbox(label="Prompts, one per line", lines=5, elem_id="tl-label-pasted",
                                max_length=text_cap("pasted"),
                                placeholder="What is the capital of France?\nWrite a haiku about rain.")
            mode = gr.Radio(MODES, value="thumb", label="How to judge")
            with gr.Row():
                source_a = gr.Dropdown(label="Answers from", choices=[(BASE_LABEL, BASE)], value=BASE)
                temperature_a = slider(answer_settings["temperature"])
                source_b = gr.Dropdown(label="Second model (the sides are shuffled for each prompt)",
                                       choices=[(BASE_LABEL, BASE)], value=BASE, visible=False)
                temperature_b = slider(answer_settings["temperature"], SECOND_TEMPERATURE,
                                       label="Second temperature", visible=False)
            with gr.Row():
                system = gr.Textbox(label=answer_settings["system"].meta["label"], scale=3,
                                    max_length=text_cap("system"))
                max_tokens = slider(answer_settings["max_new_tokens"], scale=2)
            blind = gr.Checkbox(label="Blind: show which model gave which answer only after I vote", value=True,
                                visible=False, elem_id="tl-label-blind",
                                info="Only blind votes count in the win-rates in the Runs tab.")
            start = gr.Button("Start labelling", variant="primary", elem_id="tl-label-start")
        with gr.Column(visible=False) as board:
            count = gr.Markdown(elem_id="tl-label-count")
            prompt_html = gr.HTML(elem_id="tl-label-prompt")
            with gr.Row(equal_height=True):
                answer_a = gr.HTML(elem_id="tl-label-answer-a")
                answer_b = gr.HTML(elem_id="tl-label-answer-b", visible=False)
            with gr.Column() as judging:  # hidden once nothing is left to judge
                with gr.Row(visible=True) as thumb_row:
                    good = gr.Button("👍 Good  [G]", elem_id="tl-key-good", variant="primary", elem_classes="tl-big")
                    bad = gr.Button("👎 Bad  [B]", elem_id="tl-key-bad", variant="stop", elem_classes="tl-big")
                with gr.Row(visible=False) as ab_row:
                    choices = {"left": gr.Button("⬅ Left better  [1]", elem_id="tl-key-left", elem_classes="tl-big"),
                               "right": gr.Button("Right better ➡  [2]", elem_id="tl-key-right", elem_classes="tl-big"),
                               "tie": gr.Button("Tie  [3]", elem_id="tl-key-tie", elem_classes="tl-big"),
                               "both_bad": gr.Button("Both bad  [4]", elem_id="tl-key-both-bad",
                                                     elem_classes="tl-big")}
            with gr.Row():
                skip = gr.Button("Skip  [S]", elem_id="tl-key-skip")
                undo = gr.Button("Undo  [U]", elem_id="tl-key-undo")
            shown_id = gr.Textbox(visible=False)  # the item on screen when a key was pressed
        if labeller_view:  # a labeller neither trains nor downloads: their own totals only
            totals = gr.Markdown(elem_id="tl-label-totals")
            preset = gr.State(None)
        else:
            with gr.Accordion("2. Train on your labels", open=True):
                preset = gr.Radio([(p["title"], p["name"]) for p in presets], value=presets[0]["name"],
                                  label="How much training (preset)")
                totals = gr.Markdown(elem_id="tl-label-totals")
                with gr.Row():
                    rule = gr.Radio([(RULE_CHOICES[r], r) for r in RULES], value="every", scale=3,
                                    label="Which labels (when several people judged the same answer)",
                                    elem_id="tl-label-rule")
                    leave_out = gr.Dropdown([("Nobody", "")], value="", label="Leave out a labeller", scale=1,
                                            elem_id="tl-label-leave-out")
                with gr.Row():
                    train_buttons = {kind: gr.Button(text, variant="secondary" if kind == "sft" else "primary",
                                                     elem_id=f"tl-train-{kind}")
                                     for kind, text in TRAIN_BUTTONS.items()}
                trained = gr.Markdown(elem_id="tl-label-trained")
                with gr.Row():
                    export_buttons = {"kto": gr.Button("Download thumbs as KTO JSONL", size="sm"),
                                      "dpo": gr.Button("Download choices as DPO JSONL", size="sm"),
                                      "sft": gr.Button("Download corrections as SFT JSONL", size="sm")}
                download = gr.File(label="Download", visible=False, interactive=False)
        state = gr.State(None, delete_callback=_close)
        seen_newest = gr.State(None)  # the newest finished run at the last look
        asked = gr.State(None)  # (kind, rows, preset) of the last "Train anyway": a second click trains
        look = gr.Timer(POLL_SECONDS, active=False)  # runs while no answer is ready

    board_outputs = [state, count, prompt_html, answer_a, answer_b, shown_id, totals, look, judging, skip]
    assert len(board_outputs) == BOARD_OUTPUTS
    setup_fields = {"state": state, "prompt_from": prompt_from, "dataset": dataset, "pasted": pasted, "mode": mode,
                    "source_a": source_a, "temperature_a": temperature_a, "source_b": source_b,
                    "temperature_b": temperature_b, "system": system, "max_tokens": max_tokens, "blind": blind,
                    "preset": preset}
    on(mode.change, ctx, show_mode, {"mode": mode}, [source_a, source_b, temperature_b, answer_b, blind])
    on(prompt_from.change, ctx, show_prompt_source, {"prompt_from": prompt_from}, [dataset, pasted])
    on_as(start.click, ctx, demo, begin, setup_fields, board_outputs + [board, setup, thumb_row, ab_row, answer_b],
          concurrency_id="tl-generate")
    on_screen = {"state": state, "shown": shown_id, "preset": preset}
    buttons = {"up": good, "down": bad, **choices}
    labels_changed = [on_as(button.click, ctx, demo, partial(judge, value=value), on_screen, board_outputs)
                      for value, button in buttons.items()]  # each judgement, and undo: the labels changed
    on(skip.click, ctx, skip_item, on_screen, board_outputs)
    labels_changed.append(on(undo.click, ctx, undo_last, on_screen, board_outputs))
    on(look.tick, ctx, look_again, {"state": state, "preset": preset}, board_outputs, show_progress="hidden")
    on_as([tab.select, demo.load], ctx, demo, refresh,
          {"source_a": source_a, "source_b": source_b, "dataset": dataset, "seen": seen_newest, "preset": preset},
          [source_a, source_b, dataset, totals, seen_newest])
    if labeller_view:
        demo.load(None, None, None, js=KEYS_JS)
        demo.load(None, None, None, js=SIGNED_OUT_JS)
        return
    for kind, button in train_buttons.items():
        on(button.click, ctx, partial(train, kind=kind),
           {"preset": preset, "asked": asked, "rule": rule, "leave_out": leave_out},
           [trained, watch, tabs, button, asked])
    # The counts beside "Which labels" are drawn again whenever the labels change (each judgement, each undo), one
    # at a time in the order asked, and one asked while another waits is answered after it: so they end on the
    # latest labels whichever answer arrives last. (They were drawn only on opening the tab: after 6 A/B judgements
    # they still said "1 DPO pair" under totals saying 7.)
    in_order = dict(concurrency_id="tl-label-rules", concurrency_limit=1, trigger_mode="always_last")
    on([tab.select, demo.load], ctx, team_choices, {"leave_out": leave_out}, [rule, leave_out], **in_order)
    on(leave_out.change, ctx, rule_choices, {"leave_out": leave_out}, rule, **in_order)
    for event in labels_changed:
        event.then(*bind(ctx, rule_choices, {"leave_out": leave_out}), rule, show_progress="hidden", **in_order)
    on([preset.change, rule.change, leave_out.change], ctx, new_preset, {"preset": preset},
       [totals, asked, *train_buttons.values()])
    for kind, button in export_buttons.items():
        on(button.click, ctx, partial(export, kind=kind), None, download)
    demo.load(None, None, None, js=KEYS_JS)


def _conversation_html(messages: list[dict]) -> str:
    parts = []
    for m in messages:
        who = {"user": "", "assistant": "Assistant: ", "system": "System: "}.get(m["role"], m["role"] + ": ")
        parts.append(f"<div>{esc(who)}{esc(m['content'])}</div>")
    return "".join(parts)


def _answer_html(title: str, text: str) -> str:
    return f'<div class="tl-answer-title">{esc(title)}</div><div class="tl-answer">{esc(text) or "(empty)"}</div>'
