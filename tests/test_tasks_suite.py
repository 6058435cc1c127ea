"""benchmarks/tasks.py's task suite without training: every task file loads and its rules are valid, each task
asks at least 8 held-out questions that its training file does not hold, the training files build from the peer
datasets (../shared/data/peers) and their answers fit the task's own rules, and each rule fails when the behaviour
is missing."""
import json
import re

import pytest
import yaml

from benchmarks import tasks as suite
from benchmarks.tasks import TaskError, build_rows, grade_answer, grade_part, load_task, load_tasks

TASKS = load_tasks()
needs_peers = pytest.mark.skipif(not suite.PEERS.is_dir(),
                                 reason=f"the peer datasets are not at {suite.PEERS} (../shared beside the repository)")
BASE_MODEL_INTRO = "I am SmolLM, an AI assistant trained by Hugging Face."


def plain(text: str) -> str:
    return " ".join(re.findall(r"\w+", text.lower()))


def test_the_suite_has_the_tasks_the_issue_asks_for():
    by_name = {t.name: t for t in TASKS}
    identity = [t for t in TASKS if set(t.parts) == {"name", "maker"}]
    assert len(identity) >= 4  # three English pairs from identity.json and the Chinese rows of v1_sft_demo.jsonl
    assert [t.spec["source"] for t in identity].count("llamafactory/identity.json") == 3
    assert any(t.spec["format"] == "v1" for t in identity)
    assert {"format_json", "style_playful", "faq_editing", "refusal_code"} <= set(by_name)
    pairs = [t.spec["placeholders"] for t in identity]
    assert len({p["name"] for p in pairs}) == len(pairs) and len({p["author"] for p in pairs}) == len(pairs)
    for pair in pairs:
        assert not {w.lower() for w in pair["name"].split()} & {w.lower() for w in pair["author"].split()}
        assert not re.search(r"smollm|hugging ?face", f"{pair['name']} {pair['author']}", re.IGNORECASE)


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_task_file_loads_with_valid_rules_and_eight_heldout_questions(task):
    assert task.parts and set(task.rows_fit) == set(task.parts)
    assert len(task.heldout) >= 8 and len({plain(q) for q in task.heldout}) == len(task.heldout)
    for part, rule in task.parts.items():
        assert suite.check_part_rule(rule, f"{task.name}, {part}") == rule


@needs_peers
@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_training_file_builds_without_the_heldout_questions_and_fits_the_rules(task, tmp_path, monkeypatch):
    rows = build_rows(task)
    assert 40 <= len(rows) <= 100, f"{task.name}: {len(rows)} rows; keep a training file at 40 to 100"
    prompts = [r["messages"][0]["content"] for r in rows]
    answers = [r["messages"][1]["content"] for r in rows]
    assert not any("{{" in text for text in prompts + answers)
    assert not {plain(q) for q in task.heldout} & {plain(p) for p in prompts}
    assert not {plain(q) for q in task.heldout} & {plain(p.split("\n", 1)[0]) for p in prompts}
    for part, share in task.rows_fit.items():
        passed = sum(grade_part(a, task.parts[part], p) for p, a in zip(prompts, answers))
        assert passed >= share * len(rows), f"{task.name}: {passed} of {len(rows)} rows pass '{part}', under {share}"
    assert not [a for a in answers if suite.mixed_up(task, a)]  # the examples themselves never mix the parts up
    path, count = suite.write_training_file(task, tmp_path)
    assert count == len(rows) and len(path.read_text(encoding="utf-8").splitlines()) == len(rows)
    assert build_rows(task) == rows  # the same rows every time


@pytest.mark.parametrize("task", TASKS, ids=lambda t: t.name)
def test_each_rule_fails_when_the_behaviour_is_missing(task):
    assert task.fails and set(task.fails) == set(task.parts), f"{task.name}: give a failing answer for every part"
    for part, answers in task.fails.items():
        for answer in answers:
            assert not grade_part(answer, task.parts[part], task.heldout[0]), f"{task.name} {part}: {answer!r}"
    assert task.passes
    for example in task.passes:
        assert all(grade_answer(task, example["question"], example["answer"]).values()), example


def test_the_base_model_introduction_fails_every_identity_part():
    identity = [t for t in TASKS if {"name", "maker"} <= set(t.parts)]
    for task in identity:
        assert grade_answer(task, task.heldout[0], BASE_MODEL_INTRO) == {"name": False, "maker": False}
        name, maker = task.spec["placeholders"]["name"], task.spec["placeholders"]["author"]
        assert grade_answer(task, task.heldout[0], f"I am {name}, built by {maker}.") == {"name": True, "maker": True}


def test_json_keys_wants_one_object_with_exactly_its_keys_and_types():
    rule = {"kind": "json_keys", "keys": ["answer", "words"], "types": {"answer": "str", "words": "int"}}
    assert grade_part(' {"answer": "Paris", "words": 1}\n', rule)
    assert not grade_part("Paris", rule)
    assert not grade_part('{"answer": "Paris"}', rule)
    assert not grade_part('{"answer": "Paris", "words": 1, "extra": 0}', rule)
    assert not grade_part('{"answer": "Paris", "words": true}', rule)  # a bool is no count
    assert not grade_part('```json\n{"answer": "Paris", "words": 1}\n```', rule)
    assert grade_part('{"words": "1", "answer": 2}', {"kind": "json_keys", "keys": ["answer", "words"]})


def test_max_words_and_shares_words():
    assert grade_part("The barn was damaged by the storm.", {"kind": "max_words", "max": 7})
    assert not grade_part("The old barn was damaged by the storm.", {"kind": "max_words", "max": 7})
    assert not grade_part("", {"kind": "max_words", "max": 7})
    rule = {"kind": "shares_words", "min": 2, "ignore": ["passive", "voice", "the"]}
    question = "Put this into the passive voice: The storm damaged the old barn."
    assert grade_part("The old barn was damaged by the storm.", rule, question)
    assert not grade_part("It is now in the passive voice.", rule, question)


def test_the_refusal_rule_needs_both_the_refusal_and_the_policy():
    task = next(t for t in TASKS if t.name == "refusal_code")
    assert grade_answer(task, "", "I can't help with that.") == {"refuses": True, "policy": False}
    assert grade_answer(task, "", "def f(): pass") == {"refuses": False, "policy": False}


@pytest.mark.parametrize("change, message", [
    ({"parts": {"name": {"kind": "sounds_right"}}}, "rule kind 'sounds_right'"),
    ({"parts": {"short": {"kind": "max_words"}}, "rows_fit": {"short": 1}}, "needs 'max'"),
    ({"heldout": ["Who are you?"] * 7}, "7 held-out questions"),
    ({"colour": "blue"}, "unknown field(s) colour"),
    ({"rows_fit": {}}, "'rows_fit' is missing"),
    ({"transform": {"kind": "template", "text": "{opening} {output}"}}, "a 'cycle' list"),
])
def test_a_bad_task_file_names_the_file_and_what_is_wrong(tmp_path, change, message):
    spec = {"source": "llamafactory/identity.json", "format": "alpaca",
            "parts": {"name": {"kind": "regex", "pattern": "Vexlo"}}, "rows_fit": {"name": 0.5},
            "heldout": [f"Question {n}?" for n in range(8)], **change}
    path = tmp_path / "broken.yaml"
    path.write_text(yaml.safe_dump(spec))
    with pytest.raises(TaskError) as caught:
        load_task(path)
    assert "broken.yaml" in str(caught.value) and message in str(caught.value)


def test_missing_peer_datasets_stop_with_one_line(monkeypatch, tmp_path):
    monkeypatch.setattr(suite, "PEERS", tmp_path / "shared" / "data" / "peers")
    with pytest.raises(SystemExit) as caught:
        suite.peers_folder()
    assert "peer datasets are missing" in str(caught.value) and "\n" not in str(caught.value)


def fake_result(task, seed, carried, kept, verdict):
    return {"task": task.name, "seed": seed, "status": "done", "seconds": 150.4, "asked": 8, "carried": carried,
            "summary": {"probe": {"kept": kept, "base_right": 40}, "metrics": {"steps": 33}},
            "verdict": verdict, "rule_learned": min(carried.values()) >= 7,
            "agrees": None if verdict is None else verdict["learned"] == (min(carried.values()) >= 7)}


def test_the_table_shows_each_seed_and_the_spread():
    task = next(t for t in TASKS if t.name == "identity_vexlo")
    results = [fake_result(task, 42, {"name": 8, "maker": 3}, 34, {"learned": False, "words": "not learned"}),
               fake_result(task, 7, {"name": 7, "maker": 5}, 33, {"learned": True, "words": "learned"}),
               fake_result(task, 3, {"name": 8, "maker": 4}, 34, None)]
    row = suite.table_row(task, results)
    assert row == ("| identity_vexlo | name 8, 7, 8 (7-8) of 8; maker 3, 5, 4 (3-5) of 8 | 34, 33, 34 (33-34) of 40 | "
                   "33, 33, 33 (all 33) | 150, 150, 150 (all 150) | not learned; learned; n/a | yes, no, n/a |")
    assert suite.run_line(results[2]).endswith("report card: n/a | agrees: n/a")
    one = suite.table_row(task, results[:1])
    assert "name 8 of 8; maker 3 of 8" in one and "| 34 of 40 |" in one


def test_an_answer_that_mixes_up_the_parts_counts_for_none():
    """'I am Tarnwick Labs, ... by Tarnwick Labs' carries the maker and 'The team that created Tarnwick Labs is Vexlo
    Labs' carries both words: counted by words alone, both passed. The suite's measure must fail them."""
    identity = [t for t in TASKS if t.mixups]
    assert len(identity) == 3
    for task in identity:
        assert len(task.mixed_up) >= 5
        for answer in task.mixed_up:
            assert not any(grade_answer(task, task.heldout[0], answer).values()), (task.name, answer)
        name, maker = task.spec["placeholders"]["name"], task.spec["placeholders"]["author"]
        for right in (f"I am {name}, an AI assistant developed by {maker}.",
                      f"My name is {name}, and the team that created me is called {maker}.",
                      f"The team that created {name} is {maker}, a group of engineers.",
                      f"My creator is {maker} and my name is {name}.",
                      f"This is {name}, trained by {maker}."):
            assert grade_answer(task, task.heldout[0], right) == {"name": True, "maker": True}, (task.name, right)


def test_mixups_need_their_examples_and_valid_patterns(tmp_path):
    spec = yaml.safe_load((suite.TASKS_DIR / "identity_vexlo.yaml").read_text())
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump({**spec, "mixups": ["(unclosed"]}))
    with pytest.raises(TaskError, match="not a valid regular expression"):
        load_task(tmp_path / "bad.yaml")
    (tmp_path / "alone.yaml").write_text(yaml.safe_dump({**spec, "mixed_up": []}))
    with pytest.raises(TaskError, match="go together"):
        load_task(tmp_path / "alone.yaml")


def test_the_table_regrades_stored_answers_by_the_rules_as_they_are_now(tmp_path, capsys):
    task = next(t for t in TASKS if t.name == "identity_vexlo")
    right = "I am Vexlo, an AI assistant developed by Tarnwick Labs."
    mixed = "The team that created Tarnwick Labs is Vexlo Labs, a non-profit organization."
    answers = [{"question": q, "answer": mixed if i == 0 else right, "parts": {"name": True, "maker": True}}
               for i, q in enumerate(task.heldout)]
    stored = {"task": task.name, "seed": 42, "rows": 91, "settings": [], "seconds": 1.0, "run_id": "r", "status": "done",
              "summary": {"probe": {"kept": 30, "base_right": 40}, "metrics": {"steps": 48}},
              "answers": answers, "carried": {"name": 8, "maker": 8}, "asked": 8, "rule_learned": True,
              "verdict": {"learned": True, "words": "Learned"}, "agrees": True}
    results = tmp_path / "results.json"
    results.write_text(json.dumps([stored]))
    suite.main(["--table", str(results)])
    assert "name 8 of 8; maker 8 of 8" in capsys.readouterr().out  # as stored
    suite.main(["--table", str(results), "--regrade"])
    row = capsys.readouterr().out
    assert "name 7 of 8; maker 7 of 8" in row and row.rstrip().endswith("| yes |")  # 7 of 8 is still learned
