"""Settings are declared once; validation names the field and says how to fix it; presets all validate."""
import pytest

from backend.cli import build_parser
from backend.config import RunConfig, build_config, declarations
from backend.errors import ConfigError
from backend.presets import list_presets, preset_values


def test_values_from_text_are_typed():
    config = build_config({"learning_rate": "1e-3", "epochs": "2", "probe": "no", "lora_r": "8"})
    assert (config.learning_rate, config.epochs, config.probe, config.lora_r) == (1e-3, 2.0, False, 8)


@pytest.mark.parametrize("values,field,words", [
    ({"learning_rate": "abc"}, "learning_rate", "not a number"),
    ({"lora_r": "0"}, "lora_r", "below the smallest allowed value, 1"),
    ({"batch_size": 100000}, "batch_size", "above the largest"),
    ({"method": "ppo"}, "method", "sft, dpo, kto"),
    ({"bogus": "1"}, "bogus", "no such setting"),
    ({"method": "kto", "batch_size": 1}, "batch_size", "KTO needs at least 2"),
    ({"probe": "maybe"}, "probe", "true or false"),
])
def test_bad_values_name_the_field(values, field, words):
    with pytest.raises(ConfigError) as caught:
        build_config(values)
    assert caught.value.field == field
    assert words in str(caught.value)


def test_every_setting_has_help_and_bounds_that_admit_its_default():
    for name, _, default, meta in declarations():
        assert len(meta["help"]) > 20, name
        RunConfig(**{name: default})  # the default passes its own validation


@pytest.mark.parametrize("method", ["sft", "dpo", "kto"])
def test_every_preset_validates_for_every_method(method):
    presets = list_presets()
    assert {"quick", "balanced", "thorough"} <= {p["name"] for p in presets}
    for preset in presets:
        assert preset["description"] and preset["title"]
        RunConfig(method=method, **preset_values(preset["name"], method))


def test_unknown_preset_is_a_clear_error():
    with pytest.raises(ConfigError, match="Choose one of: balanced, quick, thorough"):
        preset_values("fastest", "sft")


def test_every_command_and_option_has_help():
    import argparse

    def check(parser, path):
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                helped = {a.dest for a in action._choices_actions if a.help}
                for name, sub in action.choices.items():
                    assert name in helped, f"command '{path} {name}' has no help text"
                    check(sub, f"{path} {name}")
            elif action.dest != "help":
                assert action.help, f"'{path}' option {action.dest} has no help text"

    check(build_parser(), "app.py")
