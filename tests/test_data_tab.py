"""The Data tab's words for a file it cannot use, called as plain functions: the page speaks of its own boxes where
the command line speaks of --map, --kind and --name (issue 26, item 13)."""
import gradio as gr
import pytest

from data_corpus import qa, write_csv, write_jsonl, write_text
from tests.test_ui_handlers import Progress, ctx  # noqa: F401 (ctx: the fixture)
from ui import data_tab


def shown(ctx, path, kind="auto"):
    return data_tab.on_upload(ctx, {"upload": str(path), "kind": kind, "max_length": 512, "progress": Progress()})


def offered(updates) -> list[str]:
    return updates[3]["choices"]  # the first column box's choices: the file's columns


def test_wrong_columns_name_the_page_boxes(ctx, tmp_path):
    out = shown(ctx, write_csv(tmp_path / "people.csv", ["name", "city"], [["Anna", "Rome"], ["Ben", "Oslo"]]))
    assert out[1].startswith("### Could not use this file")
    assert ("say which is which in the *Question or request* and *Answer* boxes under *Which column holds what*."
            in out[1]), out[1]
    assert "--" not in out[1] and out[1].endswith("Then press *Check again*.")
    assert offered(out) == [data_tab.NOT_USED, "name", "city"]


@pytest.mark.parametrize("header,box", [(["question", "city"], "*Answer* box"), (["city", "answer"],
                                                                                 "*Question or request* box")])
def test_a_missing_column_names_its_box(ctx, tmp_path, header, box):
    out = shown(ctx, write_csv(tmp_path / "half.csv", header, [["a?", "b"], ["c?", "d"]]))
    assert f"say which it is in the {box} under *Which column holds what*" in out[1] and "--" not in out[1], out[1]


def test_the_wrong_kind_names_the_kind_buttons(ctx, tmp_path):
    out = shown(ctx, write_jsonl(tmp_path / "qa.jsonl", qa(6)), kind="dpo")
    assert "Set *Kind of examples* to *Detect it for me*" in out[1] and "--" not in out[1], out[1]


def test_a_txt_of_plain_lines_says_which_files_are_read_and_offers_no_columns(ctx, tmp_path):
    out = shown(ctx, write_text(tmp_path / "notes.txt", "The quick brown fox, the lazy dog.\nHello there.\n"))
    assert "notes.txt holds plain lines of text" in out[1] and "A .txt file is read when" in out[1], out[1]
    assert "Files read: JSONL, JSON, CSV, TSV, Parquet or Excel" in out[1] and "--" not in out[1]
    assert offered(out) == [data_tab.NOT_USED]  # no column named after the first line


def test_saving_under_a_taken_or_empty_name_names_the_save_box(ctx, tmp_path):
    checked = shown(ctx, write_jsonl(tmp_path / "qa.jsonl", qa(6)))[0]
    data_tab.save_dataset(ctx, {"checked": checked, "name": "qa"})
    with pytest.raises(gr.Error) as taken:
        data_tab.save_dataset(ctx, {"checked": checked, "name": "qa"})
    assert taken.value.message == ("A dataset called 'qa' already exists. Pick another name in the 'Save as' box, or "
                                   "remove the old one under 'Saved datasets'.")
    with pytest.raises(gr.Error) as empty:
        data_tab.save_dataset(ctx, {"checked": checked, "name": ""})
    assert empty.value.message == "A dataset name cannot be empty. Pick a name in the 'Save as' box."


def test_every_command_line_hint_has_page_words():
    hints = ["Rename the columns, or say which is which with --map prompt=COLUMN --map completion=COLUMN.",
             "Check the columns used, or say which is which with --map FIELD=COLUMN.",
             "Fix those rows, or, if the wrong columns were picked, say which is which with --map FIELD=COLUMN.",
             "Used 'q' as the instruction column; 'x' also fit. To use another, say so with --map instruction=COLUMN."]
    words = [data_tab.page_words(h) for h in hints]
    assert not any("--" in w for w in words), words
    assert words[3].endswith("say so in the *Question or request* box under *Which column holds what*.")


def test_remove_is_greyed_until_a_saved_dataset_is_picked(ctx, tmp_path):
    """The walk (issue 26 follow-up): Remove was enabled with nothing saved, and its click answered with an error."""
    table, listing, remove = data_tab.saved_datasets(ctx, {})
    assert listing["interactive"] is False and remove["interactive"] is False  # nothing saved: nothing to pick
    checked = shown(ctx, write_jsonl(tmp_path / "qa.jsonl", qa(6)))[0]
    saved = data_tab.save_dataset(ctx, {"checked": checked, "name": "qa"})
    assert saved[2]["choices"] == ["qa"] and saved[2]["interactive"] is True and saved[3]["interactive"] is False
    assert data_tab.picked_to_remove(ctx, {"to_remove": "qa"})["interactive"] is True
    assert data_tab.picked_to_remove(ctx, {"to_remove": None})["interactive"] is False
    after = data_tab.do_remove(ctx, {"to_remove": "qa"})
    assert after[2]["interactive"] is False and after[3]["interactive"] is False  # the last one went
