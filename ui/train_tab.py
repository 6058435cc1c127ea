"""Train tab: a dataset, a method, what to start from, a preset, the Advanced settings, a memory check, Start."""
import math
from pathlib import Path

import gradio as gr

from backend.config import build_config, planned_steps, rows_per_epoch
from backend.errors import ConfigError, TuneloopError
from backend.memory import estimate_memory, gb
from backend.presets import list_presets
from ui.common import ACTIVE, FINISHED, Context, bind, esc, on, run_choices, waiting_text
from ui.settings_form import advanced_declarations, create_settings_form, form_updates, form_values, label

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
# Before a model has trained here: about 124 tokens/s measured for the built-in model with LoRA on a 2-core CPU
# (docs/facts.md); a cautious guess for GPUs.
TOKENS_PER_SECOND = {"cpu": 120, "cuda": 3000}
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
    config = build_config(dict(values, method=method))
    steps = planned_steps(config, rows_per_epoch(config, dataset["train_rows"]))
    mean = dataset["stats"].get("tokens", {}).get("mean", 100) or 100
    tokens = steps * config.batch_size * config.grad_accum * min(mean, config.max_length)
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


def dataset_info(ctx: Context, name: str | None) -> dict | None:
    return ctx.datasets().get(name) if name and ctx.datasets().exists(name) else None


def build_run(ctx: Context, v: dict):
    """The RunConfig the form describes, and the dataset's info; errors name the box to fix."""
    info = dataset_info(ctx, v["dataset"])
    if info is None:
        raise gr.Error("Pick a dataset first (save one in the Data tab).")
    model, base = "smollm2", ""
    if v["source"] == "folder":
        path = (v["folder"] or "").strip()
        if not path or not Path(path).expanduser().is_dir():
            raise gr.Error(f"No model folder at '{path}'. Give the folder that holds config.json and the weights.")
        model = str(Path(path).expanduser().resolve())
    elif v["source"] == "run":
        if not v["base_run"]:
            raise gr.Error("Pick the finished run to build on.")
        base = v["base_run"]
        model = ctx.runs().get(base)["config"]["model"]
    settings = {d.name: v[d.name] for d in advanced_declarations()}
    name = (v["run_name"] or "").strip() or f"{info['name']}, {v['preset']}"
    settings.update(method=v["method"], dataset=info["name"], model=model, base_run=base, name=name)
    try:
        return build_config(settings), info
    except ConfigError as exc:
        raise gr.Error(f"{label(exc.field)}: {str(exc).split(': ', 1)[-1]}") from None


def check_memory(ctx: Context, v: dict):
    """Shown as the form changes: a problem is written in the box, not raised."""
    if not v["dataset"]:
        return gr.skip()
    try:
        config, info = build_run(ctx, v)
        return memory_html(estimate_memory(config, seq_length=info["stats"].get("tokens", {}).get("max")))
    except (gr.Error, TuneloopError) as exc:
        message = exc.message if isinstance(exc, gr.Error) else str(exc)
    except Exception as exc:  # the estimate is advice: it never stops the form from working
        message = f"The memory use could not be estimated ({type(exc).__name__})."
    return f'<div class="tl-memory tl-too_big">{esc(message)}</div>'


def start_run(ctx: Context, v: dict):
    """Start: refuse what cannot work (wrong data, too big), queue the run, follow it in Progress."""
    config, info = build_run(ctx, v)
    if mismatch(config.method, info):
        raise gr.Error(mismatch(config.method, info))
    result = estimate_memory(config, seq_length=info["stats"].get("tokens", {}).get("max"))
    if result.verdict == "too_big":
        raise gr.Error(f"Not started: {result.message}")
    if result.verdict == "tight":
        gr.Warning(result.message)
    run_id = ctx.runner.submit(config)
    text = waiting_text(config.name or run_id, ctx.runs().ahead(run_id))
    gr.Info(text)
    return esc(text), run_id, gr.Tabs(selected="live"), memory_html(result)


def stop_run(ctx: Context, v: dict) -> str:
    """Stop acts on the run this page started or follows, never on someone else's."""
    run_id = v["watch"]
    if not run_id:
        raise gr.Error("No run was started from this page. Stop a run from the Progress tab, where you can see it.")
    run = ctx.runs().get(run_id)
    if run["status"] not in ACTIVE:
        raise gr.Error(f"'{run['name']}' is not training or waiting, so there is nothing to stop.")
    ctx.runner.stop(run_id)
    return f"Stopping '{esc(run['name'])}' after its current step; it saves what it learned so far."


def speed(ctx: Context, model: str = "smollm2") -> float:
    """Tokens per second of the last finished run of this model here, or a measured default for the device."""
    for run in ctx.runs().list():
        if run["status"] != "done" or run["config"]["model"] != model:
            continue
        rows = [m for m in ctx.runs().metrics(run["id"]) if m.get("tokens_per_second")]
        if rows:
            return rows[-1]["tokens_per_second"]
    from backend.models import detect_hardware
    return TOKENS_PER_SECOND[detect_hardware().device]


def refresh_choices(ctx: Context, v: dict):
    datasets = ctx.datasets().list()
    names = [d["name"] for d in datasets]
    choices = [(f"{d['name']} ({d['kind'].upper()}, {d['valid_rows']:,} examples)", d["name"]) for d in datasets]
    finished = run_choices(ctx.runs().list(), FINISHED)
    value = v["dataset"] if v["dataset"] in names else (names[-1] if names else None)
    run_value = v["base_run"] if v["base_run"] in [c[1] for c in finished] else None
    return gr.update(choices=choices, value=value), gr.update(choices=finished, value=run_value)


def on_dataset(ctx: Context, v: dict):
    info = dataset_info(ctx, v["dataset"])
    kind = info["kind"] if info else v["method"]
    return (gr.update(value=kind), method_markdown(kind, info),
            preset_cards(v["preset"], kind, info, speed(ctx) if info else None))


def on_method(ctx: Context, v: dict):
    info = dataset_info(ctx, v["dataset"])
    return (method_markdown(v["method"], info), *form_updates(v["preset"], v["method"]),
            preset_cards(v["preset"], v["method"], info, speed(ctx) if info else None))


def on_source(ctx: Context, v: dict):
    return gr.update(visible=v["source"] == "folder"), gr.update(visible=v["source"] == "run")


def create_train_tab(ctx: Context, demo: gr.Blocks, tabs: gr.Tabs, watch: gr.State, suggestion: gr.State | None = None):
    presets = list_presets()
    with gr.Tab("2. Train", id="train") as tab:
        with gr.Row():
            with gr.Column():
                dataset = gr.Dropdown(label="Dataset", choices=[], info="Saved in the Data tab.")
                method = gr.Radio([(METHODS[m][0], m) for m in METHODS], value="sft", label=label("method"))
                method_help = gr.Markdown(method_markdown("sft", None))
            with gr.Column():
                source = gr.Radio(SOURCES, value="builtin", label="Start from")
                folder = gr.Textbox(label="Model folder", visible=False, placeholder="/path/to/a/hugging-face-model",
                                    info="A folder with config.json and .safetensors weights.")
                base_run = gr.Dropdown(label=label("base_run"), choices=[], visible=False,
                                       info="Its adapter is trained further, e.g. DPO after SFT.")
                run_name = gr.Textbox(label=label("name") + " (optional)", placeholder="e.g. polite answers, try 1")
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

    form = [widgets[d.name] for d in advanced_declarations()]
    everything = {"dataset": dataset, "method": method, "source": source, "folder": folder, "base_run": base_run,
                  "run_name": run_name, "preset": preset, **widgets}
    choices = {"dataset": dataset, "base_run": base_run}
    picks = {"dataset": dataset, "preset": preset, "method": method}
    on([tab.select, demo.load], ctx, refresh_choices, choices, [dataset, base_run])
    on(dataset.change, ctx, on_dataset, picks, [method, method_help, cards]).then(
        *bind(ctx, check_memory, everything), memory)
    on([method.change, preset.change], ctx, on_method, picks, [method_help, *form, cards]).then(
        *bind(ctx, check_memory, everything), memory)
    on(source.change, ctx, on_source, {"source": source}, [folder, base_run]).then(
        *bind(ctx, check_memory, everything), memory)
    on([folder.blur, base_run.change, check.click], ctx, check_memory, everything, memory)
    on(start.click, ctx, start_run, everything, [status, watch, tabs, memory])
    on(stop.click, ctx, stop_run, {"watch": watch}, status)
    if suggestion is not None:  # "Try this" in the Runs tab
        from ui import verdict
        on(suggestion.change, ctx, verdict.fill_train_form, {"suggestion": suggestion},
           [dataset, method, source, folder, base_run, run_name, *form, status]).then(
            *bind(ctx, verdict.refill_settings, {"suggestion": suggestion}), form).then(
            *bind(ctx, check_memory, everything), memory)


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
