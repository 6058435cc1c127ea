"""The Advanced settings, generated from the backend's declarations: one typed widget per setting, with its
range and help. Nothing here is parsed by hand: numbers come from number boxes, choices from dropdowns."""
import math

import gradio as gr

from backend.config import RunConfig, declarations
from backend.presets import preset_values

LABELS = {
    "learning_rate": "Learning rate (size of each step)",
    "epochs": "Passes over the data (epochs)",
    "max_steps": "Stop after this many steps (0: use passes)",
    "batch_size": "Examples per step (batch size)",
    "grad_accum": "Steps per update (gradient accumulation)",
    "max_length": "Longest example, in tokens (max length)",
    "warmup_steps": "Gentle start, in steps (warm-up)",
    "lr_scheduler": "How the learning rate changes (schedule)",
    "beta": "Stay close to the start (beta)",
    "seed": "Random seed",
    "validation_split": "Share held back to check learning",
    "lora_r": "Adapter size (LoRA rank)",
    "lora_alpha": "Adapter strength (LoRA alpha)",
    "lora_dropout": "Adapter dropout",
    "target_modules": "Layers that get an adapter",
    "quantization": "Compress the model to save memory (quantization)",
    "keep_everyday": "Everyday answers mixed in (keeps what it knew)",
    "probe": "Check everyday answers after training",
    "save_every": "Save a checkpoint every N steps (0: automatic)",
}
GROUP_TITLES = {"Training": "Training", "Adapter": "Adapter (LoRA: the small add-on that learns)",
                "Safety": "Keeping what the model already knows"}
PER_ROW = 3


def label(name: str) -> str:
    return LABELS.get(name, name.replace("_", " ").capitalize())


def advanced_declarations():
    return [d for d in declarations() if d[3]["advanced"]]


def _type_name(kind) -> str:
    return kind if isinstance(kind, str) else kind.__name__


def _widget(name, kind, default, meta, visible):
    info = meta["help"]
    if meta["choices"]:
        return gr.Dropdown(list(meta["choices"]), value=default, label=label(name), info=info, visible=visible)
    kind = _type_name(kind)
    if kind == "bool":
        return gr.Checkbox(value=default, label=label(name), info=info, visible=visible)
    bounds = f" From {_number(meta['min'])} to {_number(meta['max'])}." if meta["min"] is not None else ""
    if kind == "int":
        return gr.Number(default, label=label(name), info=info + bounds, precision=0, step=1,
                         minimum=meta["min"], maximum=meta["max"], visible=visible)
    step = 10 ** (math.floor(math.log10(abs(default))) - 1) if default else 0.01
    return gr.Number(default, label=label(name), info=info + bounds, step=step, minimum=meta["min"],
                     maximum=meta["max"], visible=visible)


def _number(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def create_settings_form(preset: str, method: str) -> dict:
    """The widgets, by setting name, grouped as the declarations group them, showing the preset's values."""
    values = form_values(preset, method)
    widgets = {}
    groups: dict[str, list] = {}
    for declaration in advanced_declarations():
        groups.setdefault(declaration[3]["group"], []).append(declaration)
    for group, items in groups.items():
        gr.Markdown(f"**{GROUP_TITLES.get(group, group)}**")
        for start in range(0, len(items), PER_ROW):
            with gr.Row():
                for name, kind, default, meta in items[start:start + PER_ROW]:
                    widgets[name] = _widget(name, kind, values[name], meta, method in meta["methods"])
    return widgets


def form_values(preset: str, method: str) -> dict:
    """What the form shows for a preset and method: the declared defaults, then the preset's values."""
    values = RunConfig().to_dict()
    values.update(preset_values(preset, method))
    return values


def form_updates(preset: str, method: str) -> list:
    """One update per advanced widget, in declaration order: the preset's value, shown if the method uses it."""
    values = form_values(preset, method)
    return [gr.update(value=values[name], visible=method in meta["methods"])
            for name, _, _, meta in advanced_declarations()]


def typed_values(values: dict) -> dict:
    """Number boxes give floats: whole-number settings get ints, so the backend's validation sees the right type."""
    out = {}
    kinds = {name: _type_name(kind) for name, kind, _, _ in declarations()}
    for name, value in values.items():
        if kinds.get(name) == "int" and isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out
