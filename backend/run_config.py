"""Build a run's config from what a user gave: a preset, the data, and individual changes."""
from pathlib import Path

from backend.config import RunConfig, build_config
from backend.errors import ConfigError
from backend.presets import DEFAULT_PRESET, preset_values


def config_from_cli(*, data: str, method: str | None = None, preset: str | None = None, model: str | None = None,
                    base_run: str | None = None, name: str | None = None, overrides: list[str] = ()) -> RunConfig:
    dataset = str(Path(data).resolve()) if Path(data).exists() else data
    kind = detect_method(dataset)  # also refuses unreadable data before anything is queued
    method = method or kind
    values = preset_values(preset or DEFAULT_PRESET, method)
    values.update({"method": method, "dataset": dataset})
    for key, value in (("model", model), ("base_run", base_run), ("name", name)):
        if value:
            values[key] = value
    for item in overrides:
        if "=" not in item:
            raise ConfigError(item, "write changes as key=value, for example --set learning_rate=1e-4.")
        key, value = item.split("=", 1)
        values[key.strip()] = value.strip()
    return build_config(values)


def detect_method(dataset: str) -> str:
    """The method that fits the data: sft for conversations, dpo for pairs, kto for labelled answers.
    Raises DataError, in words, when the data cannot be used."""
    from backend.data import load_examples
    kind, _, _ = load_examples(dataset)
    return kind
