"""The command line: inspect FILE and data add|list|rm|rename, through register() on a parser of our own."""
import argparse
import json

import pytest

from backend.cli import data as commands
from backend.errors import DataError
from data_corpus import peer, qa, write_csv, write_jsonl


@pytest.fixture(autouse=True)
def cli_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "cli_home"))
    return tmp_path / "cli_home"


def parser():
    p = argparse.ArgumentParser(prog="app.py")
    commands.register(p.add_subparsers(dest="command"))
    return p


def run(*argv):
    args = parser().parse_args([str(a) for a in argv])
    return args.func(args)


def test_inspect_prints_detection_errors_and_stats(tmp_path, capsys):
    rows = qa(30) + [{"prompt": "p", "completion": ""}]
    assert run("inspect", write_jsonl(tmp_path / "d.jsonl", rows)) == 0
    out = capsys.readouterr().out
    assert "format 'prompt_completion'" in out
    assert "31 rows: 30 usable, 1 skipped." in out
    assert "row 31: 'completion' is empty" in out
    assert "counted with the model's tokenizer" in out
    assert "Split: 27 for training, 3 for validation" in out


def test_inspect_json_last_line_is_the_report(capsys):
    assert run("inspect", peer("dpo_en_demo.json"), "--json", "--max-length", "2048") == 0
    last = capsys.readouterr().out.strip().splitlines()[-1]
    report = json.loads(last)
    assert (report["kind"], report["format"], report["rows"], report["valid_rows"], report["invalid_rows"]) == (
        "dpo", "sharegpt_preference", 300, 295, 5)
    assert report["errors"][0]["row"] == 158
    assert report["stats"]["tokens"]["max_length"] == 2048
    assert report["stats"]["tokens"]["counted_with"] == "tokenizer"


def test_inspect_map_and_kind(tmp_path, capsys):
    path = write_csv(tmp_path / "d.csv", ["Frage", "Antwort"], [["Wie?", "So."], ["Wo?", "Da."]])
    with pytest.raises(DataError, match="none of them a known"):
        run("inspect", path)
    assert run("inspect", path, "--map", "prompt=Frage", "--map", "completion=Antwort", "--json") == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["mapping"] == {"prompt": "Frage", "completion": "Antwort"} and report["valid_rows"] == 2
    with pytest.raises(DataError, match="should look like FIELD=COLUMN"):
        run("inspect", path, "--map", "Frage")
    with pytest.raises(DataError, match="looks like sft data .* not kto"):
        run("inspect", path, "--map", "prompt=Frage", "--map", "completion=Antwort", "--kind", "kto")


def test_inspect_refuses_a_file_without_valid_rows(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "completion": "  "}])
    with pytest.raises(DataError, match="No usable example"):
        run("inspect", path)


def test_data_add_list_rename_rm(tmp_path, capsys, cli_home):
    path = write_jsonl(tmp_path / "chats.jsonl", qa(50))
    assert run("data", "add", path) == 0
    assert "Stored as dataset 'chats': 45 training and 5 validation examples." in capsys.readouterr().out
    assert run("data", "add", peer("kto_en_demo.json"), "--name", "ratings", "--kind", "kto") == 0
    with pytest.raises(DataError, match="already exists"):
        run("data", "add", path)
    capsys.readouterr()
    assert run("data", "list") == 0
    out = capsys.readouterr().out
    assert "chats" in out and "ratings" in out and "kto" in out
    assert run("data", "rename", "chats", "my chats") == 0
    assert run("data", "list", "--json") == 0
    listed = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert [(d["name"], d["kind"], d["valid_rows"], d["validation_rows"]) for d in listed] == [
        ("my chats", "sft", 50, 5), ("ratings", "kto", 300, 30)]
    assert run("data", "rm", "ratings") == 0
    with pytest.raises(DataError, match="No dataset called 'ratings'"):
        run("data", "rm", "ratings")
    assert run("data", "list", "--json") == 0
    assert [d["name"] for d in json.loads(capsys.readouterr().out.strip().splitlines()[-1])] == ["my chats"]
    assert (cli_home / "tuneloop.db").exists()


def test_empty_list_says_how_to_add(capsys):
    assert run("data", "list") == 0
    assert "No datasets yet" in capsys.readouterr().out


def test_every_argument_has_help():
    def check(p):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction):
                for choice in action._choices_actions:
                    assert choice.help, choice.dest
                for sub in action.choices.values():
                    check(sub)
            elif not isinstance(action, argparse._HelpAction):
                assert action.help, f"{p.prog}: {action.dest}"
    check(parser())
