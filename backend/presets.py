"""Presets: named sets of settings in presets/*.yaml, with a plain-language description and
values per method. They only pick values; the settings themselves are declared in config.py."""
from pathlib import Path

import yaml

from backend.config import coerce
from backend.errors import ConfigError

PRESETS_DIR = Path(__file__).resolve().parent.parent / "presets"
DEFAULT_PRESET = "quick"


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
    return preset


def preset_values(name: str, method: str) -> dict:
    """The settings the preset gives for `method`: its common values, then the method's own."""
    preset = load_preset(name)
    values = dict(preset.get("common") or {})
    values.update(preset.get(method) or {})
    return {key: coerce(key, value) for key, value in values.items()}
