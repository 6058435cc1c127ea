"""Presets: named sets of settings in presets/*.yaml, with a plain-language description and the values that
differ from the declared defaults, in common and per method. They only pick values; the settings themselves are
declared in config.py.

Both directions live here: a preset plus changes gives a config (`config_from_preset`), and a config is written
back as the preset that leaves the fewest changes plus those changes (`config_as_command`), so that the command
shown for a run builds the same config again.
"""
import shlex
from pathlib import Path

import yaml

from backend.config import METHODS, RunConfig, build_config, coerce, declarations
from backend.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "quick"
OWN_OPTIONS = ("method", "dataset", "model", "base_run", "name")  # given as --method, --data, ... not --set
# A preset's section of values for examples that teach who the assistant is (per method, like the others).
ABOUT_ITSELF = "about_itself"


def list_presets() -> list[dict]:
    presets = [load_preset(p.stem) for p in sorted(PRESETS_DIR.glob("*.yaml"))]
    return sorted(presets, key=lambda p: p.get("order", 99))


def load_preset(name: str) -> dict:
    path = PRESETS_DIR / f"{name}.yaml"
    if not path.exists():
        known = ", ".join(sorted(p.stem for p in PRESETS_DIR.glob("*.yaml")))
        raise ConfigError("preset", f"there is no preset called '{name}'. Choose one of: {known}.")
    preset = yaml.safe_load(path.read_text())
    preset["name"] = name
    unknown = sorted(set(preset.get(ABOUT_ITSELF) or {}) - set(METHODS))
    if unknown:
        raise ConfigError("preset", f"presets/{name}.yaml: its {ABOUT_ITSELF} section names {', '.join(unknown)}, "
                                    f"which is not a method; write the values under {', '.join(METHODS)}.")
    return preset


def preset_values(name: str, method: str, about_itself: bool = False) -> dict:
    """The settings the preset changes for `method`: its common values, then the method's own, then (where the
    examples teach who the assistant is: backend/evaluation/reworded.rows_teach_about_itself, which the Train tab and
    `train` ask of the data) the method's values under ABOUT_ITSELF."""
    preset = load_preset(name)
    values = dict(preset.get("common") or {})
    values.update(preset.get(method) or {})
    if about_itself:
        values.update((preset.get(ABOUT_ITSELF) or {}).get(method) or {})
    return {key: coerce(key, value) for key, value in values.items()}


def about_itself_settings() -> list[str]:
    """The settings some preset gives examples about the assistant values of their own, in declaration order."""
    named = {key for preset in list_presets() for values in (preset.get(ABOUT_ITSELF) or {}).values()
             for key in (values or {})}
    return [d.name for d in declarations() if d.name in named]


def about_itself_note(preset: str | None, config: RunConfig, about_itself: bool) -> str:
    """A sentence where the preset gave examples about the assistant values of their own and the config took them:
    the Train tab's cards and `train` say the same."""
    own = (load_preset(preset or DEFAULT_PRESET).get(ABOUT_ITSELF) or {}).get(config.method) or {}
    taken = {key: value for key, value in own.items() if getattr(config, key) == coerce(key, value)}
    if not about_itself or not taken:
        return ""
    plain = preset_values(preset or DEFAULT_PRESET, config.method)
    defaults = {d.name: d.default for d in declarations()}
    said = ", ".join(f"{key.replace('_', ' ')} {_text(coerce(key, value))} instead of "
                     f"{_text(plain.get(key, defaults[key]))}" for key, value in taken.items())
    return f"These examples teach who the assistant is, so the preset trains them with {said}."


def config_from_preset(preset: str | None, method: str, changes: dict | None = None,
                       about_itself: bool = False) -> RunConfig:
    """The declared defaults, then the preset's values for `method` (and for examples about the assistant itself,
    where they are), then `changes` (text or typed)."""
    values = preset_values(preset or DEFAULT_PRESET, method, about_itself)
    values.update(changes or {})
    values["method"] = method
    return build_config(values)


def parse_changes(items: list[str]) -> dict:
    """`--set key=value` items as a dict; the values are coerced when the config is built."""
    changes = {}
    for item in items or ():
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ConfigError(item, "write changes as key=value, for example --set learning_rate=1e-4.")
        changes[key.strip()] = value.strip()
    return changes


def config_as_command(config: RunConfig, about_itself: bool | None = None) -> str:
    """The `python app.py train ...` command that builds this config again. `about_itself`: whether the run's examples
    teach who the assistant is, as `train` would judge them again (None: not known, the data being gone or a file)."""
    preset, changed = _closest_preset(config, about_itself)
    parts = ["python", "app.py", "train", "--data", config.dataset, "--method", config.method]
    if preset != DEFAULT_PRESET:
        parts += ["--preset", preset]
    defaults = {d.name: d.default for d in declarations()}
    for option, key in (("--model", "model"), ("--base-run", "base_run"), ("--name", "name")):
        value = getattr(config, key)
        if value and value != defaults[key]:
            parts += [option, value]
    for key in changed:
        parts += ["--set", f"{key}={_text(getattr(config, key))}"]
    return " ".join(shlex.quote(str(p)) for p in parts)


def _closest_preset(config: RunConfig, about_itself: bool | None) -> tuple[str, list[str]]:
    """The preset that leaves the fewest changes, and those changes. Where it is not known whether the examples teach
    who the assistant is, a setting the preset gives such examples a value of its own is a change unless both of its
    values are the config's: `train` judges the data again (a run at 5e-4 on such examples, shown without --set,
    trained at 1e-3)."""
    best = None
    for preset in [p["name"] for p in list_presets()]:
        starts = [config_from_preset(preset, config.method, {"dataset": config.dataset}, about_itself=about)
                  for about in ((False, True) if about_itself is None else (about_itself,))]
        changed = [d.name for d in declarations()
                   if d.name not in OWN_OPTIONS and any(getattr(s, d.name) != getattr(config, d.name) for s in starts)]
        if best is None or len(changed) < len(best[1]) or (len(changed) == len(best[1]) and preset == DEFAULT_PRESET):
            best = (preset, changed)
    return best


def _text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return repr(value) if isinstance(value, float) else str(value)
