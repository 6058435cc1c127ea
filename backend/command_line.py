"""A run's config as the command that repeats it: `python app.py train --data ... --set key=value`.

The command names the preset that leaves the fewest settings to change, and `--set`s the rest, so that
`backend.run_config.config_from_cli` builds the same config from it.
"""
import shlex
from dataclasses import fields

from backend.config import RunConfig, build_config
from backend.presets import DEFAULT_PRESET, list_presets, preset_values

OWN_OPTIONS = ("method", "dataset", "model", "base_run", "name")  # given as --method, --data, ... not --set


def config_to_command(config: RunConfig) -> str:
    preset, changed = _closest_preset(config)
    parts = ["python", "app.py", "train", "--data", config.dataset, "--method", config.method]
    if preset != DEFAULT_PRESET:
        parts += ["--preset", preset]
    defaults = RunConfig()
    for option, value in (("--model", config.model), ("--base-run", config.base_run), ("--name", config.name)):
        if value and value != getattr(defaults, option[2:].replace("-", "_")):
            parts += [option, value]
    for key in changed:
        parts += ["--set", f"{key}={_text(getattr(config, key))}"]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _closest_preset(config: RunConfig) -> tuple[str, list[str]]:
    best = None
    for preset in [p["name"] for p in list_presets()]:
        values = preset_values(preset, config.method)
        values.update(method=config.method, dataset=config.dataset)
        start = build_config(values)
        changed = [f.name for f in fields(RunConfig)
                   if f.name not in OWN_OPTIONS and getattr(start, f.name) != getattr(config, f.name)]
        if best is None or len(changed) < len(best[1]) or (len(changed) == len(best[1]) and preset == DEFAULT_PRESET):
            best = (preset, changed)
    return best


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
