"""Data tab: drop a file, see what it holds in words, confirm the columns, read examples and problems, save it."""
import re
from pathlib import Path

import gradio as gr

from backend import limits
from backend.config import default
from backend.data import sandbox
from backend.data.detect import LOW_CONFIDENCE
from backend.data.report import KIND_NAMES
from backend.data.store import name_for
from backend.words import plural
from ui import charts
from ui.common import Context, esc, on, when
from ui.preview import examples_html
from ui.uploads import data_file

FILE_TYPES = [".jsonl", ".json", ".csv", ".tsv", ".xlsx", ".parquet", ".ndjson", ".txt"]
NOT_USED = "(not used)"
# The fields a user may point at a column, with what they mean.
FIELDS = [
    ("prompt", "Question or request"), ("completion", "Answer"), ("input", "Extra input to the question"),
    ("system", "Instructions for the model (system)"), ("messages", "Whole conversation (list of messages)"),
    ("chosen", "Better answer (chosen)"), ("rejected", "Worse answer (rejected)"), ("label", "Good or bad mark"),
]
SHOWN_AS = {"instruction": "prompt"}  # detected fields shown in another field's box
BOXES = "Which column holds what"  # the accordion that holds the column boxes
KINDS = [("Detect it for me", "auto"), ("Conversations (SFT)", "sft"), ("Preference pairs (DPO)", "dpo"),
         ("Answers marked good or bad (KTO)", "kto")]
FORMAT_WORDS = {
    "messages": "conversations as lists of messages with a role and content",
    "sharegpt": "ShareGPT conversations (from/value turns)",
    "alpaca": "Alpaca columns (instruction, optional input, and output)",
    "prompt_completion": "a prompt column and a completion column",
    "two_column": "two columns: a question and its answer",
    "prompt_chosen_rejected": "a prompt column with a chosen (better) and a rejected (worse) answer",
    "chosen_rejected_text": "two whole conversations as text, a chosen (better) and a rejected (worse) one",
    "chosen_rejected_conversations": "two conversations, a chosen (better) and a rejected (worse) one",
    "chosen_rejected_messages": "two conversations, a chosen (better) and a rejected (worse) one",
}


SUFFIX_WORDS = {"preference": "each with a better and a worse answer", "label": "each answer marked good or bad"}


def format_in_words(fmt: str) -> str:
    if fmt in FORMAT_WORDS:
        return FORMAT_WORDS[fmt]
    for style in ("messages", "sharegpt", "alpaca", "prompt_completion"):
        if fmt.startswith(style + "_"):
            rest = fmt[len(style) + 1:]
            return f"{FORMAT_WORDS[style]}, {SUFFIX_WORDS.get(rest, rest.replace('_', ' '))}"
    return fmt.replace("_", " ")


def detected_markdown(report) -> str:
    kind = KIND_NAMES.get(report.kind, report.kind)
    sure = f"sure at {report.confidence:.0%}"
    lines = [f"### Found: {kind}",
             f"Written as {format_in_words(report.format)}, in a {report.file_format.upper()} file ({sure}).",
             f"**{plural(report.rows, 'row')}: {report.valid_rows:,} usable, {report.invalid_rows:,} skipped.**"]
    if report.confidence < LOW_CONFIDENCE:
        lines.append("**Not sure about this.** Check which column holds what, below, and press *Check again*.")
    return "\n\n".join(lines)


def stats_markdown(stats: dict) -> str:
    """The numbers that matter before training, in words."""
    t, turns, split = stats["tokens"], stats["turns"], stats["split"]
    # The built-in model's tokenizer counts here; another model's (chosen in the Train tab) splits words a little
    # differently, so its counts differ by a few percent.
    counted = " (in the built-in model's tokens; another model counts a little differently)" \
        if t["counted_with"] == "tokenizer" else " (estimated)"
    over = (f"**{t['over_max_length']:,} are longer** and will be cut" if t["over_max_length"] else "none is longer")
    lines = [f"**Length{counted}:** half the examples are under {t['median']:,} tokens (word pieces), the longest has "
             f"{t['max']:,} (row {t['longest_row']}). The limit is {t['max_length']:,}: {over}."]
    if turns["max"] > 2:
        lines.append(f"**Turns:** {turns['min']} to {turns['max']} messages per example; "
                     f"{stats['multi_turn']:,} are conversations of several questions.")
    if "labels" in stats:
        lines.append(f"**Marks:** {stats['labels']['desirable']:,} good, {stats['labels']['undesirable']:,} bad.")
    if stats.get("duplicates"):
        repeated = stats["duplicates"]
        lines.append(f"**Repeated:** {plural(repeated, 'example')} {'appears' if repeated == 1 else 'appear'} more "
                     "than once.")
    lines.append(f"**Split:** {plural(split['train'], 'example')} to learn from, {split['validation']:,} held back to "
                 "check that the learning carries over to examples it has not seen.")
    return "\n\n".join(lines)


def _mapping_updates(columns: list[str], mapping: dict) -> list:
    shown = {SHOWN_AS.get(f, f): column for f, column in mapping.items()}
    choices = [NOT_USED] + list(columns)
    return [gr.update(choices=choices, value=shown.get(f, NOT_USED), interactive=bool(columns)) for f, _ in FIELDS]


def _errors_table(report) -> gr.update:
    rows = [[e.row, e.message] for e in report.errors[:500]]
    return gr.update(value=rows or None, visible=bool(rows),
                     label=f"Skipped rows ({report.invalid_rows:,}; the first {len(rows)} listed)")


def _notes_markdown(report) -> str:
    lines = [f"- {page_words(esc(w))}" for w in report.warnings] + [f"- {page_words(esc(n))}" for n in report.notices]
    return ("**Worth knowing**\n\n" + "\n".join(lines)) if lines else ""


def _boxes(match: re.Match) -> str:
    labels = dict(FIELDS)
    named = [labels[SHOWN_AS.get(f, f)] for f in re.findall(r"--map (\w+)=COLUMN", match.group(0))
             if SHOWN_AS.get(f, f) in labels]
    if not named:
        return f"in the boxes under *{BOXES}*"
    words = " and ".join(f"*{label}*" for label in named)
    return f"in the {words} box{'es' if len(named) > 1 else ''} under *{BOXES}*"


# The command line's advice (backend/data words it for `inspect` and `data add`), said with this page's controls.
PAGE_WORDS = [
    (re.compile(r"with (?:--map \w+=COLUMN ?)+"), _boxes),
    (re.compile(r"Drop --kind"), "Set *Kind of examples* to *Detect it for me*"),
    (re.compile(r" \(--name [^)]*\)"), " in the *Save as* box"),
    (re.compile(r"remove the old one: python app\.py data rm .*"), "remove the old one under *Saved datasets*."),
]


def page_words(message: str) -> str:
    for pattern, replacement in PAGE_WORDS:
        message = pattern.sub(replacement, message)
    return message


WAITING = ("A big file: waiting for other big files to be read first (small files are read at once), "
           "then reading it and checking every row")


def check(ctx: Context, v: dict, mapping: dict | None):
    """Inspect the uploaded file with the chosen kind, max length and columns; everything the tab shows.
    The file is read in a child process under the caps of backend/limits.py (backend/data/sandbox.py): a crafted
    file ends in a sentence, and this process never holds the file."""
    path, progress = v["upload"], v["progress"]
    if not path:
        return clear(ctx, v)
    progress(0.3, desc="Reading the file and checking every row (the first file waits for the model's word list)")
    checked = sandbox.inspect(path, mapping=mapping or None, kind=None if v["kind"] == "auto" else v["kind"],
                              max_length=int(v["max_length"] or default("max_length")),
                              on_wait=lambda: progress(0.3, desc=WAITING))
    if checked.error:
        return failed(checked.error, checked.columns, mapping or {})
    report = checked.report
    figure = charts.length_histogram(report.stats)
    return (checked, detected_markdown(report), gr.Accordion(open=report.confidence < LOW_CONFIDENCE),
            *_mapping_updates(report.columns, report.mapping), stats_markdown(report.stats),
            gr.update(value=figure, visible=True), _notes_markdown(report),
            examples_html(report.kind, report.examples, report.example_rows, total=report.valid_rows),
            _errors_table(report), name_for(Path(path).stem), gr.update(interactive=True))


def on_upload(ctx: Context, v: dict):
    return check(ctx, v, None)


def on_recheck(ctx: Context, v: dict):
    chosen = {f: v[f] for f, _ in FIELDS if v[f] not in (None, NOT_USED)}
    return check(ctx, v, chosen)


def failed(message: str, columns: list[str], user_mapping: dict):
    message = page_words(esc(message))
    hint = ""
    if columns:
        hint = ("\n\nThen press *Check again*." if BOXES in message else
                f"\n\nPick the columns under *{BOXES}* and press *Check again*.")
    return (None, f"### Could not use this file\n\n{message}{hint}",
            gr.Accordion(open=bool(columns)), *_mapping_updates(columns, user_mapping), "",
            gr.update(visible=False), "", "", gr.update(value=None, visible=False), "",
            gr.update(interactive=False))


def clear(ctx: Context, v: dict):
    return (None, "No file yet.", gr.Accordion(open=False), *_mapping_updates([], {}), "", gr.update(visible=False),
            "", "", gr.update(value=None, visible=False), "", gr.update(interactive=False))


def saved_datasets(ctx: Context, v: dict):
    """The table, the list to remove from (greyed when nothing is saved) and Remove, greyed until one is picked
    (the walk: Remove was enabled with nothing saved, and answered its click with an error)."""
    datasets = ctx.datasets().list()
    rows = [[d["name"], d["kind"].upper(), d["valid_rows"], d["train_rows"], d["validation_rows"],
             when(d["created"])] for d in datasets]
    return (gr.update(value=rows or None),
            gr.update(choices=[d["name"] for d in datasets], value=None, interactive=bool(datasets)),
            gr.update(interactive=False))


def picked_to_remove(ctx: Context, v: dict):
    return gr.update(interactive=bool(v["to_remove"]))


def save_dataset(ctx: Context, v: dict):
    """The checked file is read again and stored in a child process, with the options it was checked with; the app's
    copy of the upload is kept with the dataset and removed with it."""
    checked = v["checked"]
    if checked is None or checked.report is None:
        raise gr.Error("Drop a data file first.")
    path = checked.path
    saved = sandbox.add(path, name=v["name"], source=Path(path).name, upload=path, **checked.options)
    if saved.error:  # a toast: plain text, so the page's words are quoted instead of in italics
        raise gr.Error(re.sub(r"\*([^*]+)\*", r"'\1'", page_words(saved.error)))
    stored, report = saved.stored, saved.report
    gr.Info(f"Saved '{stored}'. Next: the Train tab.")
    return (f"Saved as **{esc(stored)}**: {plural(report.stats['split']['train'], 'example')} to learn from and "
            f"{report.stats['split']['validation']:,} held back to check the learning. Next: open **2. Train**.",
            *saved_datasets(ctx, v))


def ask_remove(ctx: Context, v: dict):
    if not v["to_remove"]:
        raise gr.Error("Pick the dataset to remove first.")
    return gr.Row(visible=True), f"Remove **{esc(v['to_remove'])}**? Runs that used it keep their results."


def do_remove(ctx: Context, v: dict):
    ctx.datasets().delete(v["to_remove"])
    gr.Info(f"Removed '{v['to_remove']}'.")
    return gr.Row(visible=False), *saved_datasets(ctx, v)


def create_data_tab(ctx: Context, demo: gr.Blocks):
    with gr.Tab("1. Data", id="data") as tab:
        gr.Markdown("Give the model examples of what it should do. Drop a file of questions and answers, "
                    "conversations, or preference pairs: JSONL, JSON, CSV, TSV, Excel (.xlsx) or Parquet, or a .txt "
                    "file that holds JSON Lines or tab-separated columns (plain lines of text are not examples).")
        report_state = gr.State(None)  # the sandbox's Inspection of the file shown
        with gr.Row():
            with gr.Column(scale=2):
                upload = data_file(label="Data file (drag and drop, or click to choose)", file_types=FILE_TYPES,
                                   height=150, elem_id="tl-upload")
            with gr.Column(scale=3):
                detected = gr.Markdown("No file yet.", elem_id="tl-detected")
        with gr.Accordion("Which column holds what", open=False) as mapping_box:
            gr.Markdown("Tuneloop guessed this from the column names and the rows. Change a box if it picked the "
                        "wrong column, then press *Check again*.")
            with gr.Row():
                kind = gr.Radio(KINDS, value="auto", label="Kind of examples")
                max_length = gr.Number(default("max_length"), label="Longest example to allow, in tokens",
                                       info="Tokens are word pieces. Longer examples get cut during training.",
                                       precision=0, minimum=32, maximum=32768)
            with gr.Row():
                mapping = {f: gr.Dropdown([NOT_USED], value=NOT_USED, label=label, interactive=False, min_width=200)
                           for f, label in FIELDS}
            recheck = gr.Button("Check again", size="md")
        with gr.Row():
            with gr.Column(scale=3):
                stats = gr.Markdown()
                histogram = gr.Plot(label="Lengths", visible=False, show_label=False)
                notes = gr.Markdown()
            with gr.Column(scale=4):
                preview = gr.HTML(label="Examples")
        errors = gr.Dataframe(headers=["Row", "Problem"], datatype=["number", "str"], visible=False,
                              interactive=False, wrap=True, column_widths=["80px", "auto"], max_height=300,
                              elem_id="tl-errors")
        with gr.Row(equal_height=True):
            name = gr.Textbox(label="Save as", placeholder="a name for this dataset", scale=3,
                              max_length=limits.text_cap("name"))
            save = gr.Button("Save dataset", variant="primary", interactive=False, scale=1)
        saved_status = gr.Markdown()
        gr.Markdown("### Saved datasets")
        table = gr.Dataframe(headers=["Name", "Kind", "Examples", "To learn from", "Held back to check", "Added"],
                             interactive=False, wrap=True, max_height=260)
        with gr.Row(equal_height=True):
            to_remove = gr.Dropdown(label="Dataset to remove", choices=[], scale=3, interactive=False)
            remove = gr.Button("Remove...", scale=1, interactive=False)
        with gr.Row(visible=False) as confirm_row:
            confirm_text = gr.Markdown()
            confirm = gr.Button("Yes, remove it", variant="stop")
            cancel = gr.Button("Keep it")

    results = [report_state, detected, mapping_box, *mapping.values(), stats, histogram, notes, preview, errors, name,
               save]
    file_fields = {"upload": upload, "kind": kind, "max_length": max_length}
    # Inspections run in child processes (backend/data/sandbox.py): big ones a few at a time, small ones beside them
    # (sandbox.concurrency), so one person's slow or crafted file never keeps another's upload waiting.
    reading = dict(concurrency_id="tl-inspect", concurrency_limit=sandbox.concurrency())
    # One progress bar, where the file's verdict will be, beside the file box's own (every output had one: 7 in all).
    on(upload.upload, ctx, on_upload, file_fields, results, progress=True, show_progress_on=detected, **reading)
    on(upload.clear, ctx, clear, None, results)
    on(recheck.click, ctx, on_recheck, {**file_fields, **mapping}, results, progress=True, show_progress_on=detected,
       **reading)
    # "Saved as ..." is about the file saved: gone once another file comes or this one is cleared.
    gr.on([upload.upload, upload.clear], lambda: "", None, saved_status, queue=False, show_progress="hidden")
    on(save.click, ctx, save_dataset, {"checked": report_state, "name": name},
       [saved_status, table, to_remove, remove], **reading)
    on(to_remove.change, ctx, picked_to_remove, {"to_remove": to_remove}, remove, show_progress="hidden")
    on(remove.click, ctx, ask_remove, {"to_remove": to_remove}, [confirm_row, confirm_text])
    on(confirm.click, ctx, do_remove, {"to_remove": to_remove}, [confirm_row, table, to_remove, remove])
    cancel.click(lambda: gr.Row(visible=False), None, confirm_row)
    on([tab.select, demo.load], ctx, saved_datasets, None, [table, to_remove, remove])
