"""Train tab: a dataset, a method, what to start from, a preset, the Advanced settings, a memory check, Start."""
import math
from pathlib import Path

import gradio as gr

from backend.config import build_config
from backend.errors import ConfigError, ModelError, TuneloopError
from backend.memory import estimate_memory, gb
from backend.presets import list_presets
from ui.common import FINISHED, Context, esc, plain_errors, run_choices, runs_ahead
from ui.settings_form import advanced_declarations, create_settings_form, form_updates, form_values, label, typed_values

METHODS = {
    "sft": ("SFT: learn from examples",
            "Teaches the model to answer the way your examples do. Needs conversations, or questions with answers."),
    "dpo": ("DPO: prefer the better answer",
            "Teaches the model to prefer a better answer over a worse one to the same question. Needs preference "
            "pairs: a question with a chosen (better) and a rejected (worse) answer."),
    "kto": ("KTO: learn from thumbs up and down",
            "Teaches the model from single answers marked good or bad. Needs answers each marked good or bad, "
            "with some of each."),
}
DATA_WORDS = {"sft": "conversations (SFT data)", "dpo": "preference pairs (DPO data)",
              "kto": "answers marked good or bad (KTO data)"}
SOURCES = [("The built-in model (SmolLM2, 135 million parameters: small and quick)", "builtin"),
           ("A model folder on this computer", "folder"), ("A finished run: keep building on it", "run")]
TOKENS_PER_SECOND = {"cpu": 120, "cuda": 3000}  # measured here on the CPU (NOTES.md); a cautious guess for GPUs
FIXED_SECONDS = 60  # loading the model, the everyday answers, and the check after training


def mismatch(method: str, dataset: dict | None) -> str:
    """Why this dataset cannot train with this method, in words; empty when it can."""
    if not dataset or dataset["kind"] == method:
        return ""
    needs = DATA_WORDS[method].split(" (")[0]
    return (f"'{dataset['name']}' holds {DATA_WORDS[dataset['kind']]}, but {method.upper()} needs {needs}. "
            f"Choose {dataset['kind'].upper()} for this dataset, or save a dataset of {needs} in the Data tab.")


def method_markdown(method: str, dataset: dict | None) -> str:
    title, text = METHODS[method]
    problem = mismatch(method, dataset)
    return f"**{title}.** {text}" + (f"\n\n**This will not work:** {esc(problem)}" if problem else "")


def estimate_seconds(values: dict, method: str, dataset: dict, tokens_per_second: float) -> tuple[int, float]:
    rows = dataset["train_rows"] + (values["keep_everyday"] if method in ("sft", "kto") else 0)
    per_step = values["batch_size"] * values["grad_accum"]
    steps = values["max_steps"] or max(1, round(values["epochs"] * rows / per_step))
    mean = dataset["stats"].get("tokens", {}).get("mean", 100) or 100
    tokens = steps * per_step * min(mean, values["max_length"])
    tokens *= 1 if method == "sft" else 2.5  # two answers per row, and the reference model's pass
    return steps, FIXED_SECONDS + tokens / tokens_per_second


def preset_cards(selected: str, method: str, dataset: dict | None, tokens_per_second: float | None) -> str:
    cards = []
    for preset in list_presets():
        when = esc(preset["time_hint"])
        if dataset and tokens_per_second:
            steps, seconds = estimate_seconds(form_values(preset["name"], method), method, dataset, tokens_per_second)
            when = f"about {max(1, math.ceil(seconds / 60))} min for '{esc(dataset['name'])}' here ({steps} steps)"
        chosen = " tl-card-chosen" if preset["name"] == selected else ""
        cards.append(f'<div class="tl-card{chosen}"><div class="tl-card-title">{esc(preset["title"])}</div>'
                     f'<div class="tl-card-text">{esc(preset["description"])}</div>'
                     f'<div class="tl-card-time">Time: {when}</div></div>')
    return '<div class="tl-cards">' + "".join(cards) + "</div>"


def memory_html(estimate) -> str:
    icon = {"fits": "Fits", "tight": "Tight", "too_big": "Too big"}[estimate.verdict]
    rows = "".join(f"<tr><td>{esc(name)}</td><td>{gb(size)}</td></tr>" for name, size in estimate.parts())
    return (f'<div class="tl-memory tl-{estimate.verdict}"><b>Memory: {icon}.</b> {esc(estimate.message)}'
            f'<details><summary>Where the memory goes</summary><table>{rows}'
            f'<tr><td><b>Total</b></td><td><b>{gb(estimate.total)}</b></td></tr>'
            f'<tr><td>Free on this {estimate.where}</td><td>{gb(estimate.available)}</td></tr></table></details></div>')


def create_train_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs, watch: gr.State) -> dict:
    presets = list_presets()
    with gr.Tab("2. Train", id="train") as tab:
        with gr.Row():
            with gr.Column():
                dataset = gr.Dropdown(label="Dataset", choices=[], info="Saved in the Data tab.")
                method = gr.Radio([(METHODS[m][0], m) for m in METHODS], value="sft", label="What to learn (method)")
                method_help = gr.Markdown(method_markdown("sft", None))
            with gr.Column():
                source = gr.Radio(SOURCES, value="builtin", label="Start from")
                folder = gr.Textbox(label="Model folder", visible=False, placeholder="/path/to/a/hugging-face-model",
                                    info="A folder with config.json and .safetensors weights.")
                base_run = gr.Dropdown(label="Finished run to build on", choices=[], visible=False,
                                       info="Its adapter is trained further, e.g. DPO after SFT.")
                run_name = gr.Textbox(label="Name for this run (optional)", placeholder="e.g. polite answers, try 1")
        preset = gr.Radio([(p["title"], p["name"]) for p in presets], value=presets[0]["name"],
                          label="How much training (preset)")
        cards = gr.HTML(preset_cards(presets[0]["name"], "sft", None, None))
        with gr.Accordion("Advanced settings", open=False):
            gr.Markdown("Filled in by the preset. Change them only if you know why; each says what it does.")
            widgets = create_settings_form(presets[0]["name"], "sft")
        memory = gr.HTML('<div class="tl-memory">Pick a dataset to see whether the run fits in memory.</div>')
        with gr.Row():
            check = gr.Button("Check memory", scale=1)
            start = gr.Button("Start training", variant="primary", scale=2)
            stop = gr.Button("Stop training", variant="stop", scale=1)
        status = gr.Markdown()

    fields = [name for name, *_ in advanced_declarations()]
    form = [widgets[name] for name in fields]
    everything = {dataset, method, source, folder, base_run, run_name, preset, *form}

    def dataset_info(name):
        return ctx.datasets().get(name) if name and ctx.datasets().exists(name) else None

    def build(values: dict):
        """The RunConfig the form describes, and the dataset's info; errors name the box to fix."""
        info = dataset_info(values[dataset])
        if info is None:
            raise gr.Error("Pick a dataset first (save one in the Data tab).")
        model, base = "smollm2", ""
        if values[source] == "folder":
            path = (values[folder] or "").strip()
            if not path or not Path(path).expanduser().is_dir():
                raise gr.Error(f"No model folder at '{path}'. Give the folder that holds config.json and the weights.")
            model = str(Path(path).expanduser().resolve())
        elif values[source] == "run":
            if not values[base_run]:
                raise gr.Error("Pick the finished run to build on.")
            base = values[base_run]
            model = ctx.runs().get(base)["config"]["model"]
        settings = typed_values({name: values[widgets[name]] for name in fields})
        name = (values[run_name] or "").strip() or f"{info['name']}, {values[preset]}"
        settings.update(method=values[method], dataset=info["name"], model=model, base_run=base, name=name)
        try:
            return build_config(settings), info
        except ConfigError as exc:
            raise gr.Error(f"{label(exc.field)}: {str(exc).split(': ', 1)[-1]}") from None

    def estimate(values: dict):
        config, info = build(values)
        longest = info["stats"].get("tokens", {}).get("max")
        return estimate_memory(config, seq_length=longest)

    def check_memory(values: dict):
        """Shown as the form changes: a problem is written in the box, not raised."""
        if not values[dataset]:
            return gr.skip()
        try:
            return memory_html(estimate(values))
        except (gr.Error, TuneloopError) as exc:
            message = exc.message if isinstance(exc, gr.Error) else str(exc)
        except Exception as exc:  # the estimate is advice: it never stops the form from working
            message = f"The memory use could not be estimated ({type(exc).__name__})."
        return f'<div class="tl-memory tl-too_big">{esc(message)}</div>'

    @plain_errors
    def start_run(values: dict):
        config, info = build(values)
        if mismatch(config.method, info):
            raise gr.Error(mismatch(config.method, info))
        try:
            result = estimate_memory(config, seq_length=info["stats"].get("tokens", {}).get("max"))
        except ModelError as exc:
            raise gr.Error(str(exc)) from None
        if result.verdict == "too_big":
            raise gr.Error(f"Not started: {result.message}")
        if result.verdict == "tight":
            gr.Warning(result.message)
        run_id = ctx.runner.submit(config)
        ahead = runs_ahead(ctx.runs().list(), run_id)
        name = config.name or run_id
        if ahead > 0:
            text = (f"Another run is training now. '{name}' waits in line ({ahead} ahead of it) and starts by "
                    "itself when the computer is free.")
        else:
            text = f"Training '{name}' started. Follow it in the Progress tab."
        gr.Info(text)
        return esc(text), run_id, gr.Tabs(selected="live"), memory_html(result)

    @plain_errors
    def stop_running():
        running = [r for r in ctx.runs().list() if r["status"] == "running"]
        if not running:
            raise gr.Error("No run is training right now.")
        for run in running:
            ctx.runner.stop(run["id"])
        return f"Stopping '{esc(running[0]['name'])}' after its current step; it saves what it learned so far."

    def speed(model="smollm2"):
        """Tokens per second of the last finished run of this model here, or a measured default for the device."""
        for run in ctx.runs().list():
            if run["status"] != "done" or run["config"]["model"] != model:
                continue
            rows = [m for m in ctx.runs().metrics(run["id"]) if m.get("tokens_per_second")]
            if rows:
                return rows[-1]["tokens_per_second"]
        from backend.models import detect_hardware
        return TOKENS_PER_SECOND[detect_hardware().device]

    @plain_errors
    def refresh_choices(current_dataset, current_run):
        datasets = ctx.datasets().list()
        names = [d["name"] for d in datasets]
        choices = [(f"{d['name']} ({d['kind'].upper()}, {d['valid_rows']:,} examples)", d["name"]) for d in datasets]
        finished = run_choices(ctx.runs().list(), FINISHED)
        value = current_dataset if current_dataset in names else (names[-1] if names else None)
        run_value = current_run if current_run in [c[1] for c in finished] else None
        return gr.update(choices=choices, value=value), gr.update(choices=finished, value=run_value)

    @plain_errors
    def on_dataset(name, chosen_preset, current_method):
        info = dataset_info(name)
        kind = info["kind"] if info else current_method
        return (gr.update(value=kind), method_markdown(kind, info),
                preset_cards(chosen_preset, kind, info, speed() if info else None))

    @plain_errors
    def on_method(name, chosen_preset, chosen_method):
        info = dataset_info(name)
        return (method_markdown(chosen_method, info), *form_updates(chosen_preset, chosen_method),
                preset_cards(chosen_preset, chosen_method, info, speed() if info else None))

    def on_source(choice):
        return gr.update(visible=choice == "folder"), gr.update(visible=choice == "run")

    tab.select(refresh_choices, [dataset, base_run], [dataset, base_run])
    demo.load(refresh_choices, [dataset, base_run], [dataset, base_run])
    dataset.change(on_dataset, [dataset, preset, method], [method, method_help, cards]).then(
        check_memory, everything, memory)
    gr.on([method.change, preset.change], on_method, [dataset, preset, method], [method_help, *form, cards]).then(
        check_memory, everything, memory)
    source.change(on_source, source, [folder, base_run]).then(check_memory, everything, memory)
    gr.on([folder.blur, base_run.change, check.click], check_memory, everything, memory)
    start.click(start_run, everything, [status, watch, tabs, memory])
    stop.click(stop_running, None, status)
    return {"tab": tab, "dataset": dataset, "start": start}


CSS = """
.tl-cards { display: grid; grid-template-columns: repeat(3, 1fr); gap: 12px; }
.tl-card { border: 1px solid var(--border-color-primary); border-radius: 8px; padding: 10px 12px; }
.tl-card-chosen { border: 2px solid var(--color-accent); background: var(--background-fill-secondary); }
.tl-card-title { font-weight: 700; font-size: 15px; margin-bottom: 4px; }
.tl-card-text { font-size: 14px; }
.tl-card-time { font-size: 13px; margin-top: 6px; font-style: italic; }
.tl-memory { border-radius: 8px; padding: 10px 12px; border: 1px solid var(--border-color-primary); font-size: 14px; }
.tl-memory table { margin-top: 6px; font-size: 13px; }
.tl-memory td { padding: 1px 12px 1px 0; }
.tl-fits { border-left: 5px solid #16a34a; }
.tl-tight { border-left: 5px solid #d97706; }
.tl-too_big { border-left: 5px solid #dc2626; }
"""
