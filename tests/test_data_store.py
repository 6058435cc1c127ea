"""Datasets stored once in the database: add, list, get, rows, split, rename, delete, load_examples."""
import pytest

from backend import db as db_mod
from backend.data import DatasetStore, inspect_file, load_examples
from backend.errors import DataError
from data_corpus import peer, qa, write_jsonl


@pytest.fixture
def db(tmp_path):
    return db_mod.connect(tmp_path / "t.db")


@pytest.fixture
def report(tmp_path):
    return inspect_file(write_jsonl(tmp_path / "my_chats.jsonl", qa(120) + [{"prompt": "x", "completion": ""}]))


def test_round_trip(db, report, tmp_path):
    store = DatasetStore(db)
    assert store.list() == []
    name = store.add(report)
    assert name == "my_chats"
    [listed] = store.list()
    assert listed["name"] == "my_chats" and listed["kind"] == "sft" and listed["format"] == "prompt_completion"
    assert (listed["rows"], listed["valid_rows"], listed["invalid_rows"]) == (121, 120, 1)
    assert (listed["train_rows"], listed["validation_rows"]) == (108, 12)
    assert listed["source"] == str(tmp_path / "my_chats.jsonl")
    info = store.get("my_chats")
    assert info["mapping"] == {"prompt": "prompt", "completion": "completion"}
    assert info["stats"]["split"] == {"train": 108, "validation": 12, "seed": 0, "fraction": 0.1}
    assert info["stats"]["first_errors"][0]["row"] == 121
    assert store.rows("my_chats") == report.examples
    assert store.rows("my_chats", "train") == report.train_examples()
    assert store.rows("my_chats", "validation") == report.validation_examples()
    assert len(store.rows("my_chats", "validation")) == 12


def test_names(db, report):
    store = DatasetStore(db)
    assert store.add(report, name="  first ") == "first"
    with pytest.raises(DataError, match="A dataset called 'first' already exists. Pick another name .* data rm"):
        store.add(report, name="first")
    for bad in ("", "   ", "a/b", "x" * 101):
        with pytest.raises(DataError):
            store.add(report, name=bad)
    assert store.add(report, name="second") == "second"
    assert [d["name"] for d in store.list()] == ["first", "second"]


def test_rename_and_delete(db, report):
    store = DatasetStore(db)
    store.add(report, name="a")
    store.add(report, name="b")
    with pytest.raises(DataError, match="'b' already exists"):
        store.rename("a", "b")
    assert store.rename("a", "c") == "c"
    assert [d["name"] for d in store.list()] == ["c", "b"]
    assert len(store.rows("c")) == 120
    store.delete("c")
    assert [d["name"] for d in store.list()] == ["b"]
    assert db.execute("SELECT COUNT(*) FROM dataset_rows").fetchone()[0] == 120  # only b's rows remain
    for call in (lambda: store.get("c"), lambda: store.rows("c"), lambda: store.delete("c"), lambda: store.rename("c", "d")):
        with pytest.raises(DataError, match=r"No dataset called 'c'. See: python app.py data list"):
            call()
    with pytest.raises(DataError, match="Unknown split"):
        store.rows("b", "test")


def test_store_survives_reopening(tmp_path, report):
    DatasetStore(db_mod.connect(tmp_path / "t.db")).add(report, name="kept")
    again = DatasetStore(db_mod.connect(tmp_path / "t.db"))
    assert len(again.rows("kept")) == 120


def test_load_examples_from_name_or_file(db, tmp_path):
    report = inspect_file(peer("kto_en_demo.json"))
    DatasetStore(db).add(report, name="ratings")
    kind, train, validation = load_examples("ratings", db=db)
    assert (kind, len(train), len(validation)) == ("kto", 270, 30)
    assert train == report.train_examples() and validation == report.validation_examples()
    kind, train, validation = load_examples(peer("dpo_en_demo.json"))
    assert (kind, len(train) + len(validation), len(validation)) == ("dpo", 295, 30)
    with pytest.raises(DataError, match="holds kto examples, but sft examples are needed"):
        load_examples("ratings", db=db, kind="sft")
    with pytest.raises(DataError, match="No dataset called 'nothing'"):
        load_examples("nothing", db=db)


def test_load_examples_can_ask_for_another_split(db, report):
    DatasetStore(db).add(report, name="d")
    assert load_examples("d", db=db, seed=0, validation_fraction=0.1)[1:] == load_examples("d", db=db)[1:]
    kind, train, validation = load_examples("d", db=db, validation_fraction=0.0)
    assert (len(train), validation) == (120, [])
    _, train, validation = load_examples("d", db=db, seed=5, validation_fraction=0.25)
    assert (len(train), len(validation)) == (90, 30)
    assert sorted(map(str, train + validation)) == sorted(map(str, report.examples))
    assert load_examples("d", db=db, seed=5)[2] != load_examples("d", db=db)[2]


def test_load_examples_uses_the_default_database(tmp_path, monkeypatch, report):
    monkeypatch.setenv("TUNELOOP_HOME", str(tmp_path / "home"))
    DatasetStore(db_mod.connect()).add(report, name="home-data")
    kind, train, validation = load_examples("home-data")
    assert (kind, len(train), len(validation)) == ("sft", 108, 12)
