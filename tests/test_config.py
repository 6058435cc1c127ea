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
    assert words in caught.value.message and str(caught.value) == f"Setting '{field}': {caught.value.message}"


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
        RunConfig(method=method, **preset_values(preset["name"], method, about_itself=True))


def test_the_quick_preset_takes_a_larger_step_for_examples_about_the_assistant_and_only_there():
    """Issue 24: a name and a maker on questions of a new shape were learned in 2 of 12 runs of the suite's identity
    tasks at 5e-4, 8 of 12 at 1e-3; the FAQ and format tasks lost answers at 1e-3, so the step depends on what the
    examples teach."""
    from backend.presets import config_from_preset
    plain, about = preset_values("quick", "sft"), preset_values("quick", "sft", about_itself=True)
    assert plain["learning_rate"] == 5e-4 and about["learning_rate"] == 1e-3
    assert {k: v for k, v in about.items() if k != "learning_rate"} == {k: v for k, v in plain.items()
                                                                         if k != "learning_rate"}
    assert preset_values("quick", "dpo", about_itself=True) == preset_values("quick", "dpo")
    assert preset_values("balanced", "sft", about_itself=True) == preset_values("balanced", "sft")
    # a change the person asked for still wins
    assert config_from_preset("quick", "sft", {"learning_rate": "2e-4"}, about_itself=True).learning_rate == 2e-4


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


def test_presets_list_only_what_differs_from_the_defaults():
    import yaml

    from backend.presets import PRESETS_DIR
    defaults = {d.name: d.default for d in declarations()}
    for path in PRESETS_DIR.glob("*.yaml"):
        preset = yaml.safe_load(path.read_text())
        for section in ("common", "sft", "dpo", "kto"):
            for key, value in (preset.get(section) or {}).items():
                assert value != defaults[key], f"{path.name} {section}.{key} repeats the default {value!r}"
            for key, value in ((preset.get("about_itself") or {}).get(section) or {}).items():
                assert value != preset_values(path.stem, section).get(key, defaults[key]), \
                    f"{path.name} about_itself.{section}.{key} repeats the preset's own {value!r}"


def test_every_setting_has_a_label_and_numbers_must_be_finite():
    for d in declarations():
        assert d.meta["label"] and d.meta["label"][0].isupper(), d.name
    for bad in ("nan", float("nan"), "inf", float("-inf")):
        with pytest.raises(ConfigError, match="finite"):
            build_config({"learning_rate": bad})


def test_one_coercion_for_form_cli_and_presets():
    from backend.config import coerce
    assert coerce("batch_size", 8.0) == 8 and coerce("batch_size", "8") == 8 and coerce("epochs", 2) == 2.0
    with pytest.raises(ConfigError, match="whole number"):
        build_config({"batch_size": 2.5})


def test_answers_share_one_declaration_of_their_bounds():
    from backend.answers import Sampling, sampling_declarations
    bounds = {d.name: (d.meta["min"], d.meta["max"]) for d in sampling_declarations()}
    low, high = bounds["temperature"]
    Sampling.of(temperature=str(high))
    with pytest.raises(ConfigError, match="temperature"):
        Sampling.of(temperature=high + 0.01)
    with pytest.raises(ConfigError, match="max_new_tokens"):
        Sampling.of(max_new_tokens=bounds["max_new_tokens"][1] + 1)


def test_steps_are_counted_as_the_trainer_counts_them():
    from backend.config import planned_steps, rows_per_epoch
    config = build_config({"batch_size": 8, "grad_accum": 2, "epochs": 3})
    assert planned_steps(config, 40) == 9  # 5 batches per pass, 3 updates per pass (the last one partial), 3 passes
    assert rows_per_epoch(config, 40) == 40 + config.rehearsal
    assert planned_steps(build_config({"max_steps": 7}), 1000) == 7


def test_a_setting_is_read_by_its_former_name_too():
    """keep_everyday became rehearsal: an old command's --set, an old preset or stored settings still say it."""
    from backend.config import coerce, current_names
    from backend.presets import config_from_preset, parse_changes
    assert build_config({"keep_everyday": 7}).rehearsal == 7
    assert coerce("keep_everyday", "5") == 5
    assert config_from_preset("quick", "sft", parse_changes(["keep_everyday=0"])).rehearsal == 0
    assert current_names({"rehearsal": 60, "keep_everyday": 0}) == {"rehearsal": 0}  # the later one wins
    assert "keep_everyday" not in RunConfig().to_dict() and RunConfig().rehearsal == 60
    with pytest.raises(ConfigError, match="above the largest allowed value"):
        build_config({"keep_everyday": 401})
