"""The Advanced settings, generated from the backend's declarations: one typed widget per setting, with its
label, range and help. Nothing here is parsed by hand: numbers come from number boxes, choices from dropdowns,
and the values go back through the declarations' one coercion when the config is built."""
import math

import gradio as gr

from backend.config import declarations
from backend.presets import config_from_preset

GROUP_TITLES = {"Training": "Training", "Adapter": "Adapter (LoRA: the small add-on that learns)",
                "Safety": "Keeping what the model already knows",
                "Devices": "Devices (several GPUs: each takes a share of every step)"}
PER_ROW = 3


def label(name: str) -> str:
    return next(d.meta["label"] for d in declarations() if d.name == name)


def advanced_declarations():
    return [d for d in declarations() if d.meta["advanced"]]


def widget(d, value, visible: bool = True, **extra):
    """The widget for one declared setting (a run's or an answer's)."""
    meta = d.meta
    common = dict(label=meta["label"], visible=visible, **extra)
    if meta["choices"]:
        return gr.Dropdown(list(meta["choices"]), value=value, info=meta["help"], **common)
    if d.type == "bool":
        return gr.Checkbox(value=value, info=meta["help"], **common)
    if d.type == "str":
        return gr.Textbox(value=value, info=meta["help"], **common)
    bounds = f" From {_number(meta['min'])} to {_number(meta['max'])}." if meta["min"] is not None else ""
    # No minimum or maximum given to Gradio: its own check said "Value 5 is greater than maximum value 0.01." with no
    # word of which box, under an "Error" over the memory box. The range is checked with the rest of the settings
    # (backend/config.check), whose message names the setting, and shown in the box.
    if d.type == "int":
        return gr.Number(value, info=meta["help"] + bounds, precision=0, step=1, **common)
    step = 10 ** (math.floor(math.log10(abs(d.default))) - 1) if d.default else 0.01
    return gr.Number(value, info=meta["help"] + bounds, step=step, **common)


def slider(d, value=None, **extra):
    """A slider over a declared setting's whole range."""
    meta = d.meta
    step = 1 if d.type == "int" else 0.05
    extra.setdefault("label", meta["label"])
    return gr.Slider(meta["min"], meta["max"], value=d.default if value is None else value, step=step, **extra)


def _number(x) -> str:
    return f"{x:,}" if isinstance(x, int) else f"{x:g}"


def create_settings_form(preset: str, method: str) -> dict:
    """The widgets, by setting name, grouped as the declarations group them, showing the preset's values."""
    values = form_values(preset, method)
    widgets = {}
    groups: dict[str, list] = {}
    for d in advanced_declarations():
        groups.setdefault(d.meta["group"], []).append(d)
    for group, items in groups.items():
        gr.Markdown(f"**{GROUP_TITLES.get(group, group)}**")
        for start in range(0, len(items), PER_ROW):
            with gr.Row():
                for d in items[start:start + PER_ROW]:
                    widgets[d.name] = widget(d, values[d.name], method in d.meta["methods"])
    return widgets


def form_values(preset: str, method: str, about_itself: bool = False) -> dict:
    """What the form shows for a preset and method: the declared defaults, then the preset's values (for examples
    that teach who the assistant is, where `about_itself`)."""
    return config_from_preset(preset, method, about_itself=about_itself).to_dict()


def form_updates(preset: str, method: str, about_itself: bool = False) -> list:
    """One update per advanced widget, in declaration order: the preset's value, shown if the method uses it."""
    values = form_values(preset, method, about_itself)
    return [gr.update(value=values[d.name], visible=method in d.meta["methods"]) for d in advanced_declarations()]
