"""Reading files: formats, encodings, line ends, size limit, empty and binary files, huge rows."""
import gzip
import json

import pytest

from backend.data import inspect_file
from backend.errors import DataError
from data_corpus import csv_text, jsonl, qa, write_csv, write_json, write_jsonl, write_parquet, write_text, write_xlsx

ROWS = qa(12)


def _messages(report, i=0):
    return report.examples[i]["messages"]


@pytest.mark.parametrize("encoding,bom", [("utf-8", False), ("utf-8", True), ("utf-16", False), ("utf-16-le", False),
                                          ("utf-16-be", False), ("utf-32", False)])
def test_unicode_encodings_read_the_same(tmp_path, encoding, bom):
    rows = [{"prompt": "Grüße aus Köln — ça va? 你好", "completion": "Très bien, merci! 👍"}] + ROWS
    path = write_text(tmp_path / "d.jsonl", jsonl(rows), encoding=encoding, bom=bom)
    report = inspect_file(path)
    assert report.valid_rows == 13
    assert _messages(report)[0]["content"] == "Grüße aus Köln — ça va? 你好"
    assert _messages(report)[1]["content"] == "Très bien, merci! 👍"
    assert not any("UTF-8" in n for n in report.notices)


def test_utf8_bom_csv_header_is_recognised(tmp_path):
    path = write_text(tmp_path / "d.csv", csv_text(["question", "answer"], [["a?", "b"], ["c?", "d"]]), bom=True)
    report = inspect_file(path)
    assert report.mapping == {"prompt": "question", "completion": "answer"}
    assert report.valid_rows == 2


@pytest.mark.parametrize("suffix", ["jsonl", "csv"])
def test_latin1_fallback_says_so(tmp_path, suffix):
    if suffix == "jsonl":
        text = jsonl([{"prompt": "Où est la café?", "completion": "À côté — 5 €"}] + ROWS)
    else:
        text = csv_text(["prompt", "completion"], [["Où est la café?", "À côté — 5 €"]] + [[r["prompt"], r["completion"]] for r in ROWS])
    path = write_text(tmp_path / f"d.{suffix}", text, encoding="cp1252")
    report = inspect_file(path)
    assert report.encoding == "cp1252"
    assert _messages(report)[0]["content"] == "Où est la café?"
    assert _messages(report)[1]["content"] == "À côté — 5 €"
    line = 1 if suffix == "jsonl" else 2  # the CSV header is line 1
    assert any("not UTF-8" in n and f"line {line}" in n for n in report.notices)
    assert "not UTF-8" in report.summary()


def test_crlf_line_ends_in_jsonl_and_csv(tmp_path):
    a = inspect_file(write_jsonl(tmp_path / "a.jsonl", ROWS, newline="\r\n"))
    rows = [["line one\r\nline two", "ok"]] + [[r["prompt"], r["completion"]] for r in ROWS]
    b = inspect_file(write_csv(tmp_path / "b.csv", ["prompt", "completion"], rows, newline="\r\n"))
    assert a.valid_rows == 12 and a.invalid_rows == 0
    assert not _messages(a)[1]["content"].endswith("\r")
    assert b.valid_rows == 13
    assert _messages(b)[0]["content"] == "line one\r\nline two"  # a newline inside a quoted cell stays text
    assert _messages(b)[1]["content"] == "ok"


def test_json_list_and_object_holding_the_list(tmp_path):
    for key in ("data", "rows", "examples"):
        report = inspect_file(write_json(tmp_path / f"{key}.json", {"version": 2, key: ROWS}))
        assert report.valid_rows == 12
        assert any(f"'{key}'" in n for n in report.notices)
    assert inspect_file(write_json(tmp_path / "list.json", ROWS)).valid_rows == 12


def test_json_columns_object_and_jsonl_saved_as_json(tmp_path):
    columns = {"prompt": [r["prompt"] for r in ROWS], "completion": [r["completion"] for r in ROWS]}
    report = inspect_file(write_json(tmp_path / "cols.json", columns))
    assert report.valid_rows == 12 and _messages(report, 3)[0]["content"] == "q question 3?"
    report = inspect_file(write_jsonl(tmp_path / "lines.json", ROWS))
    assert report.valid_rows == 12 and report.file_format == "jsonl"
    assert any("JSON Lines" in n for n in report.notices)


def test_broken_json_document_is_refused_with_its_position(tmp_path):
    path = write_text(tmp_path / "bad.json", '[{"prompt": "a", "completion": "b"},\n {"prompt": "c" "completion": "d"}]')
    with pytest.raises(DataError, match=r"not valid JSON: .* line 2"):
        inspect_file(path)


def test_csv_tsv_semicolon_and_txt(tmp_path):
    body = [[r["prompt"], r["completion"]] for r in ROWS]
    assert inspect_file(write_csv(tmp_path / "a.csv", ["Question", "Answer"], body)).valid_rows == 12
    tsv = inspect_file(write_csv(tmp_path / "a.tsv", ["input", "output"], body, delimiter="\t"))
    assert tsv.valid_rows == 12 and tsv.file_format == "tsv"
    semi = inspect_file(write_csv(tmp_path / "b.csv", ["prompt", "completion"], body, delimiter=";"))
    assert semi.valid_rows == 12 and _messages(semi, 2)[1]["content"] == "answer number 2."
    assert inspect_file(write_jsonl(tmp_path / "c.txt", ROWS)).file_format == "jsonl"


def test_csv_row_numbers_and_wrong_value_counts(tmp_path):
    text = "prompt,completion\r\nq1,a1\r\nq2,a2,surprise\r\n\r\nq3,\r\nq4,a4\r\n"
    report = inspect_file(write_text(tmp_path / "d.csv", text))
    assert [e.row for e in report.errors] == [2, 4]
    assert "3 values but the header has 2 columns" in report.errors[0].message
    assert "'completion' is empty" in report.errors[1].message
    assert report.example_rows == [1, 5]


def test_xlsx_first_sheet_types_and_row_numbers(tmp_path):
    rows = [["What is 6 x 7?", 42, True], [None, None, None], ["Is the sky green?", "No.", "no"], ["Empty?", None, 1]]
    path = write_xlsx(tmp_path / "d.xlsx", ["Prompt", "Completion", "Label"], rows, extra_sheet=True)
    report = inspect_file(path)
    assert (report.kind, report.format) == ("kto", "prompt_completion_label")
    assert report.examples[0]["completion"][0]["content"] == "42"
    assert report.examples[1]["label"] is False
    assert report.example_rows == [1, 3]
    assert [(e.row, e.code) for e in report.errors] == [(4, "missing_field")]
    assert any("first sheet" in n for n in report.notices)


def test_parquet_with_nested_messages(tmp_path):
    rows = [{"messages": [{"role": "user", "content": f"hi {i}"}, {"role": "assistant", "content": f"hello {i}"}],
             "source": "x"} for i in range(11)]
    report = inspect_file(write_parquet(tmp_path / "d.parquet", rows))
    assert (report.kind, report.format, report.valid_rows) == ("sft", "messages", 11)
    assert report.examples[4] == {"messages": [{"role": "user", "content": "hi 4"}, {"role": "assistant", "content": "hello 4"}]}


def test_parquet_with_unified_struct_fields(tmp_path):
    # pyarrow gives every message every key seen anywhere: missing ones come back as None
    rows = [{"conversations": [{"from": "human", "value": [{"type": "text", "text": "hi"}]},
                               {"from": "gpt", "value": [{"type": "text", "value": "hello"}], "role": None}]},
            {"conversations": [{"from": "human", "value": [{"type": "text", "text": "yo"}], "name": "ann"},
                               {"from": "gpt", "value": [{"type": "text", "text": "hey"}]}]}]
    report = inspect_file(write_parquet(tmp_path / "d.parquet", rows))
    assert report.valid_rows == 2, report.errors
    assert report.examples[0]["messages"] == [{"role": "user", "content": "hi"}, {"role": "assistant", "content": "hello"}]


@pytest.mark.parametrize("name,content,match", [
    ("empty.jsonl", b"", "empty"),
    ("blank.jsonl", b"\n \r\n\t\n", "only blank lines"),
    ("empty.json", b"[]", "empty list"),
    ("header.csv", b"prompt,completion\r\n", "header .* but no data rows"),
    ("binary.jsonl", bytes(range(256)) * 40, "binary"),
    ("noise.csv", b"\x01\x02\x03\x04abc\x05\x06\x07\x08" * 100, "binary"),
    ("data.jsonl", gzip.compress(b'{"prompt": "a", "completion": "b"}\n'), "gzip"),
    ("fake.parquet", b"prompt,completion\na,b\n", "not a parquet"),
    ("fake.xlsx", b"just text", "not a xlsx"),
    ("old.xls", b"\xd0\xcf\x11\xe0" + b"\0" * 100, "old Excel"),
    ("scalar.json", b'"hello"', "text string, not a list"),
    ("object.json", b'{"name": "x", "version": 1}', "keys 'name', 'version' but no list"),
])
def test_unusable_files_are_refused_with_a_reason(tmp_path, name, content, match):
    path = tmp_path / name
    path.write_bytes(content)
    with pytest.raises(DataError, match=match):
        inspect_file(path)


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(DataError, match="No file at"):
        inspect_file(tmp_path / "nope.jsonl")
    with pytest.raises(DataError, match="is a folder"):
        inspect_file(tmp_path)


def test_size_limit_argument_and_environment(tmp_path, monkeypatch):
    path = write_jsonl(tmp_path / "d.jsonl", qa(400))
    size = path.stat().st_size
    with pytest.raises(DataError, match="over the .* limit.*TUNELOOP_MAX_UPLOAD_MB"):
        inspect_file(path, max_bytes=size - 1)
    assert inspect_file(path, max_bytes=size).valid_rows == 400
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "0.001")
    with pytest.raises(DataError, match="limit"):
        inspect_file(path)
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "1")
    assert inspect_file(path).valid_rows == 400


def test_bad_size_limit_setting_is_a_config_error(tmp_path, monkeypatch):
    from backend.errors import ConfigError
    monkeypatch.setenv("TUNELOOP_MAX_UPLOAD_MB", "lots")
    with pytest.raises(ConfigError, match="TUNELOOP_MAX_UPLOAD_MB"):
        inspect_file(write_jsonl(tmp_path / "d.jsonl", ROWS))


def test_one_huge_row_does_not_break_anything(tmp_path):
    huge = "word " * 1_000_000  # 5 MB in one JSON line and one CSV cell
    rows = ROWS + [{"prompt": "Summarise this:\n" + huge, "completion": "Words."}]
    report = inspect_file(write_jsonl(tmp_path / "d.jsonl", rows), max_length=512)
    assert report.valid_rows == 13
    assert report.stats["tokens"]["over_max_length"] == 1
    assert report.stats["tokens"]["longest_row"] == 13
    assert report.stats["tokens"]["max"] > 1_000_000 / 2
    body = [[r["prompt"], r["completion"]] for r in rows]
    report = inspect_file(write_csv(tmp_path / "d.csv", ["prompt", "completion"], body))
    assert report.valid_rows == 13 and len(report.summary()) < 5000


def test_deeply_nested_json_line_is_a_row_error(tmp_path):
    rows = [json.dumps(r) for r in ROWS] + ["[" * 100_000 + "]" * 100_000]
    report = inspect_file(write_text(tmp_path / "d.jsonl", "\n".join(rows)))
    assert report.valid_rows == 12
    assert report.errors[0].row == 13


def test_txt_of_plain_lines_is_refused_in_words_and_tab_separated_txt_is_read(tmp_path):
    """Plain lines are not CSV rows: read as one, a .txt file became a column named after its first line."""
    notes = write_text(tmp_path / "notes.txt", "The quick brown fox, the lazy dog.\nHello there, how are you?\n")
    with pytest.raises(DataError, match=r"notes.txt holds plain lines of text, not examples .* A .txt file is read "
                                        r"when it holds JSON Lines .* or tab-separated columns"):
        inspect_file(notes)
    body = [[r["prompt"], r["completion"]] for r in ROWS]
    tabbed = inspect_file(write_csv(tmp_path / "excel.txt", ["Question", "Answer"], body, delimiter="\t"))
    assert (tabbed.file_format, tabbed.valid_rows) == ("tsv", 12)
