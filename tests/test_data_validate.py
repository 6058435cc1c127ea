"""Validation row by row (row numbers, reasons, what is kept) and the stats (tokens, turns, labels, split)."""
import json

import pytest


from backend.data import inspect_file
from backend.data.stats import make_split
from backend.errors import DataError
from data_corpus import chat, qa, tokenizer, write_csv, write_json, write_jsonl, write_text


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def _errors(report):
    return {e.row: (e.code, e.message) for e in report.errors}


def test_sft_bad_rows_are_listed_with_line_numbers_and_good_rows_kept(tmp_path):
    lines = [
        json.dumps({"messages": chat("q1", "a1")}),                                           # 1 ok
        '{"messages": [{"role": "user", "content": "q2"}',                                     # 2 invalid JSON
        "",                                                                                    # 3 blank: skipped
        json.dumps({"text": "no messages here", "messages": None}),                           # 4 missing field
        json.dumps({"messages": chat("q5", "   ")}),                                           # 5 empty content
        json.dumps({"messages": [{"role": "narrator", "content": "x"}, {"role": "assistant", "content": "y"}]}),  # 6
        json.dumps({"messages": [{"role": "assistant", "content": "a"}, {"role": "user", "content": "q"}]}),     # 7
        json.dumps({"messages": chat("q1", "a1")}),                                           # 8 duplicate of 1
        json.dumps({"messages": chat("  q1 ", "a1\n")}),                                      # 9 duplicate (spaces)
        json.dumps(["not", "an", "object"]),                                                   # 10 not an object
        json.dumps({"messages": [{"content": "who?"}, {"role": "assistant", "content": "a"}]}),  # 11 no role
        json.dumps({"messages": chat("q12", "a12")}),                                         # 12 ok
    ]
    report = inspect_file(write_text(tmp_path / "d.jsonl", "\n".join(lines)))
    assert (report.rows, report.valid_rows, report.invalid_rows) == (11, 2, 9)
    assert report.example_rows == [1, 12]
    errors = _errors(report)
    assert sorted(errors) == [2, 4, 5, 6, 7, 8, 9, 10, 11]
    assert errors[2][0] == "invalid_json" and "not valid JSON" in errors[2][1]
    assert errors[4] == ("missing_field", "'messages' is missing")
    assert errors[5][0] == "empty_content" and "message 2 (assistant)" in errors[5][1]
    assert errors[6][0] == "unknown_role" and "'narrator'" in errors[6][1]
    assert errors[7][0] == "no_final_assistant" and "last message is from the user" in errors[7][1]
    assert errors[8] == ("duplicate", "duplicate of row 1 (same text, ignoring spaces)")
    assert errors[9][0] == "duplicate"
    assert errors[10][0] == "not_object"
    assert errors[11][0] == "missing_field" and "no role" in errors[11][1]
    assert report.stats["duplicates"] == 2
    assert report.stats["problems"]["duplicate"] == 2
    text = report.summary()
    assert "11 rows: 2 usable, 9 skipped." in text and "row 6: message 1" in text
    out = report.to_json()
    assert out["errors"][0] == {"row": 2, "message": errors[2][1], "code": "invalid_json"}
    assert (out["kind"], out["format"], out["rows"], out["valid_rows"], out["invalid_rows"]) == ("sft", "messages", 11, 2, 9)
    json.dumps(out)  # plain JSON all the way down


def test_json_rows_are_element_numbers(tmp_path):
    rows = [{"instruction": "a", "output": "b"}, {"instruction": "c", "output": ""}, "oops", {"instruction": "", "output": "x"}]
    report = inspect_file(write_json(tmp_path / "d.json", rows))
    assert _errors(report) == {2: ("empty_content", "'output' is empty"), 3: (report.errors[1].code, report.errors[1].message),
                               4: ("empty_content", "'instruction' is empty")}
    assert report.errors[1].code == "not_object"


def test_dpo_bad_rows(tmp_path):
    rows = [{"prompt": "p1", "chosen": "good", "rejected": "bad"},
            {"prompt": "p2", "chosen": "Same  answer", "rejected": "same answer"[:0] + "Same answer "},
            {"prompt": "p3", "chosen": "x"},
            {"prompt": "p4", "chosen": "", "rejected": "y"},
            {"prompt": [{"role": "user", "content": "p5"}, {"role": "assistant", "content": "ok"}], "chosen": "a", "rejected": "b"}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    errors = _errors(report)
    assert report.valid_rows == 1 and sorted(errors) == [2, 3, 4, 5]
    assert errors[2] == ("same_answers", "the chosen and the rejected answers are the same")
    assert errors[3] == ("missing_field", "'rejected' is missing")
    assert errors[4] == ("empty_content", "'chosen' is empty")
    assert errors[5][0] == "bad_prompt" and "ends with an assistant message" in errors[5][1]


def test_dpo_conversations_with_different_prompts(tmp_path):
    rows = [{"chosen": chat("q", "a"), "rejected": chat("another q", "b")}, {"chosen": chat("q", "a"), "rejected": chat("q", "b")}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.valid_rows == 1 and report.errors[0].code == "prompt_mismatch"


def test_kto_unrecognised_label(tmp_path):
    rows = [{"prompt": "p", "completion": "c", "label": "maybe"}, {"prompt": "p2", "completion": "c2", "label": None},
            {"prompt": "p3", "completion": "c3", "label": 2}, {"prompt": "p4", "completion": "c4", "label": "👍"}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    errors = _errors(report)
    assert errors[1][0] == "bad_label" and "label 'maybe' is not understood" in errors[1][1]
    assert errors[2] == ("missing_field", "'label' is missing")
    assert errors[3][0] == "bad_label"
    assert report.valid_rows == 1
    assert report.stats["labels"] == {"desirable": 1, "undesirable": 0, "desirable_share": 1.0}
    assert any("Every example is labelled good" in w for w in report.warnings)


def test_kto_unbalanced_labels_warn(tmp_path):
    rows = [{"prompt": f"p{i}", "completion": f"c{i}", "label": i % 10 == 0} for i in range(50)]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.stats["labels"]["desirable"] == 5 and report.stats["labels"]["undesirable"] == 45
    assert any("unbalanced" in w for w in report.warnings)


def test_no_valid_row_refuses_the_file_saying_why(tmp_path):
    rows = [{"prompt": f"p{i}", "completion": ""} for i in range(5)]
    with pytest.raises(DataError, match=r"No usable example in d.jsonl .*all 5 rows have problems \(empty text: 5\); row 1: 'completion' is empty"):
        inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    with pytest.raises(DataError, match="none of its 2 rows could be read .*row 1: not valid JSON"):
        inspect_file(write_text(tmp_path / "e.jsonl", "{oops\n{still: oops}\n"))


def test_long_examples_are_kept_and_counted(tmp_path, tok):
    rows = qa(20) + [{"prompt": "tell me " * 300, "completion": "ok"}, {"prompt": "hi", "completion": "word " * 200}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows), tokenizer=tok, max_length=128)
    assert report.valid_rows == 22
    tokens = report.stats["tokens"]
    assert tokens["over_max_length"] == 2
    assert [r["row"] for r in tokens["over_rows"]] == [21, 22]
    assert tokens["tokens_cut"] == sum(report.lengths[i] - 128 for i in (20, 21)) == sum(r["cut"] for r in tokens["over_rows"])
    assert tokens["longest_row"] == 21
    assert any("2 examples are longer than the max length of 128 tokens" in w for w in report.warnings)


def test_token_lengths_match_the_chat_template(tmp_path, tok):
    rows = [{"messages": chat("What is the capital of France?", "Paris.", system="Be short.")},
            {"prompt": "ignored"}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows[:1]), tokenizer=tok)
    text = tok.apply_chat_template(rows[0]["messages"], tokenize=False)
    assert report.lengths == [len(tok(text, add_special_tokens=False)["input_ids"])]
    assert report.stats["tokens"]["counted_with"] == "tokenizer"
    estimate = inspect_file(write_jsonl(tmp_path / "e.jsonl", rows[:1]))
    assert estimate.stats["tokens"]["counted_with"] == "estimate"
    assert abs(estimate.lengths[0] - report.lengths[0]) < 30


def test_dpo_and_kto_lengths_cover_prompt_and_answer(tmp_path, tok):
    dpo = inspect_file(write_jsonl(tmp_path / "d.jsonl", [{"prompt": "q", "chosen": "short", "rejected": "much longer " * 40}]), tokenizer=tok)
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "much longer " * 40}]
    assert dpo.lengths == [len(tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False)["input_ids"])]
    kto = inspect_file(write_jsonl(tmp_path / "k.jsonl", [{"prompt": "q", "completion": "a b c", "label": 1}]), tokenizer=tok)
    conv = [{"role": "user", "content": "q"}, {"role": "assistant", "content": "a b c"}]
    assert kto.lengths == [len(tok(tok.apply_chat_template(conv, tokenize=False), add_special_tokens=False)["input_ids"])]


def test_stats_turns_and_histogram(tmp_path):
    rows = [{"messages": chat(f"q{i}", f"a{i}")} for i in range(8)]
    rows.append({"messages": chat("q", "a") + [{"role": "user", "content": "more"}, {"role": "assistant", "content": "sure"}]})
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.stats["turns"]["histogram"] == {"2": 8, "4": 1}
    assert report.stats["turns"]["max"] == 4 and report.stats["multi_turn"] == 1
    hist = report.stats["tokens"]["histogram"]
    assert sum(hist["counts"]) == 9 and len(hist["edges"]) == len(hist["counts"]) + 1
    assert hist["edges"][0] <= report.stats["tokens"]["min"] and hist["edges"][-1] > report.stats["tokens"]["max"]
    assert sum(hist["cut"]) == report.stats["tokens"]["over_max_length"] == 0


def test_split_sizes_and_seed(tmp_path):
    assert make_split(9) == {"train": list(range(9)), "validation": []}
    for n, want in [(10, 1), (100, 10), (1000, 100), (5000, 200), (50, 5)]:
        split = make_split(n)
        assert len(split["validation"]) == want
        assert sorted(split["train"] + split["validation"]) == list(range(n))
    assert make_split(100, seed=1) == make_split(100, seed=1) != make_split(100, seed=2)
    assert len(make_split(100, fraction=0.25)["validation"]) == 25
    assert make_split(100, fraction=0)["validation"] == []
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", qa(300)), seed=3, validation_fraction=0.2)
    assert report.stats["split"] == {"train": 240, "validation": 60, "seed": 3, "fraction": 0.2}
    assert len(report.train_examples()) == 240 and len(report.validation_examples()) == 60
    assert report.to_json()["split"] == {"train": 240, "validation": 60}


def test_few_rows_get_no_validation_split_and_a_warning(tmp_path):
    report = inspect_file(write_csv(tmp_path / "d.csv", ["question", "answer"], [["a", "b"], ["c", "d"]]))
    assert report.split["validation"] == [] and len(report.split["train"]) == 2
    assert any("no validation split" in w for w in report.warnings)


def test_bad_arguments_are_data_errors(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", qa(3))
    with pytest.raises(DataError, match="max length"):
        inspect_file(path, max_length=0)
    with pytest.raises(DataError, match="validation fraction"):
        inspect_file(path, validation_fraction=1.5)


def test_many_bad_rows_keep_memory_bounded(tmp_path):
    rows = [{"prompt": f"p{i}", "completion": ""} for i in range(3000)] + qa(5)
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows))
    assert report.invalid_rows == 3000 and len(report.errors) == 1000
    assert report.valid_rows == 5
    assert "first 10 of 3,000" in report.summary()
