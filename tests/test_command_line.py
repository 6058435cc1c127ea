"""A run's config shown as a command line builds the same config again."""
import shlex

import pytest

from backend.cli.runs import config_from_args
from backend.config import build_config
from backend.data import DatasetStore, inspect_file
from backend.db import connect
from backend.presets import config_as_command, parse_changes, preset_values


def round_trip(config, about_itself=None):
    command = config_as_command(config, about_itself)
    words = shlex.split(command)
    assert words[:3] == ["python", "app.py", "train"]
    options = {"--data": "data", "--method": "method", "--preset": "preset", "--model": "model",
               "--base-run": "base_run", "--name": "name"}
    kwargs, overrides, i = {}, [], 3
    while i < len(words):
        if words[i] == "--set":
            overrides.append(words[i + 1])
        else:
            kwargs[options[words[i]]] = words[i + 1]
        i += 2
    return command, config_from_args(changed=parse_changes(overrides), **kwargs)


def saved(path, name: str) -> str:
    return DatasetStore(connect()).add(inspect_file(path), name=name)


def test_preset_config_needs_no_set(chat_file):
    saved(chat_file, "my data")
    values = preset_values("quick", "sft")
    config = build_config(dict(values, dataset="my data", method="sft"))
    command, again = round_trip(config, about_itself=False)  # as the Runs tab asks, the dataset being saved
    assert "--set" not in command and "--preset" not in command
    assert again == config
    assert "'my data'" in command
    # where the data is not known any more, the rate a preset gives some data and not other is said outright
    command, again = round_trip(config)
    assert command.endswith("--set learning_rate=0.0005") and again == config


def test_closest_preset_and_changed_values_round_trip(pairs_file):
    saved(pairs_file, "pairs")
    values = preset_values("balanced", "dpo")
    values.update(dataset="pairs", method="dpo", learning_rate=3e-6, probe=False, name="it's mine",
                  model="/models/my model", target_modules="attention", base_run="sft-1")
    config = build_config(values)
    command, again = round_trip(config)
    assert "--preset balanced" in command
    assert "learning_rate=3e-06" in command and "probe=false" in command
    assert again == config


@pytest.mark.parametrize("method,data", [("sft", "chat_file"), ("dpo", "pairs_file"), ("kto", "labels_file")])
def test_defaults_round_trip_for_each_method(method, data, request):
    config = build_config({"dataset": str(request.getfixturevalue(data)), "method": method})
    assert round_trip(config)[1] == config


def test_examples_about_the_assistant_get_the_presets_step_for_them_and_the_command_builds_it_again(chat_file):
    """Issue 24: the quick preset takes 1e-3 for examples that teach who the assistant is (5e-4 otherwise); `train`
    decides it from the data, as the Train tab does, and a --set still wins."""
    from pathlib import Path
    identity = str(Path(__file__).parent / "fixtures" / "identity_quill.jsonl")
    about = config_from_args(data=identity)
    assert about.learning_rate == 1e-3
    assert config_from_args(data=str(chat_file)).learning_rate == 5e-4
    assert config_from_args(data=identity, changed={"learning_rate": "5e-4"}).learning_rate == 5e-4
    saved(identity, "quill")
    assert config_from_args(data="quill").learning_rate == 1e-3  # a saved dataset too
    command, again = round_trip(about, about_itself=True)
    assert again == about and "--set" not in command, command
    # a run on such examples at 5e-4 (Try this halves 1e-3 to it) is shown with its rate, or train would take 1e-3
    slower = config_from_args(data=identity, changed={"learning_rate": "5e-4"})
    for known in (True, None):
        command, again = round_trip(slower, about_itself=known)
        assert again == slower and "learning_rate=0.0005" in command, command


def test_train_says_when_the_preset_took_its_step_for_examples_about_the_assistant(capsys):
    from pathlib import Path

    from backend.presets import about_itself_note
    identity = str(Path(__file__).parent / "fixtures" / "identity_quill.jsonl")
    about = config_from_args(data=identity)
    assert about_itself_note("quick", about, True) == ("These examples teach who the assistant is, so the preset "
                                                       "trains them with learning rate 0.001 instead of 0.0005.")
    assert about_itself_note("quick", config_from_args(data=identity, changed={"learning_rate": "2e-4"}), True) == ""
    assert about_itself_note("balanced", config_from_args(data=identity, preset="balanced"), True) == ""
