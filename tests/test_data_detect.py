"""Detection: every peer file and every supported format, mapped to the canonical rows; mappings and kinds."""
import json

import pytest

from backend.data import inspect_file
from backend.errors import DataError
from data_corpus import peer, peers_dir, chat, qa, tokenizer, write_csv, write_json, write_jsonl, write_xlsx

PEER_FILES = {
    # file: (kind, format, rows, valid rows: the demo files repeat a few examples, which are dropped as duplicates)
    "alpaca_en_demo.json": ("sft", "alpaca", 999, 985),
    "identity.json": ("sft", "alpaca", 91, 91),
    "glaive_toolcall_en_demo.json": ("sft", "sharegpt", 300, 265),
    "dpo_en_demo.json": ("dpo", "sharegpt_preference", 300, 295),
    "kto_en_demo.json": ("kto", "messages_label", 300, 300),
    "v1_sft_demo.jsonl": ("sft", "messages", 500, 499),
    "v1_dpo_demo.jsonl": ("dpo", "chosen_rejected_messages", 10, 10),
}


@pytest.fixture(scope="module")
def tok():
    return tokenizer()


def test_every_peer_file_is_listed():
    assert sorted(p.name for p in peers_dir().iterdir()) == sorted(PEER_FILES)


@pytest.mark.parametrize("name", sorted(PEER_FILES))
def test_peer_file_detected(name, tok):
    kind, fmt, rows, valid = PEER_FILES[name]
    report = inspect_file(peer(name), tokenizer=tok)
    assert (report.kind, report.format, report.rows, report.valid_rows) == (kind, fmt, rows, valid)
    assert report.confidence >= 0.9
    assert report.invalid_rows == rows - valid == report.stats["duplicates"]
    assert report.stats["tokens"]["counted_with"] == "tokenizer"
    assert len(report.lengths) == valid
    for example in report.examples:
        _assert_canonical(kind, example)


def _assert_canonical(kind, ex):
    def msgs(m, roles=("system", "user", "assistant", "tool")):
        assert isinstance(m, list) and m
        for x in m:
            assert set(x) == {"role", "content"} and x["role"] in roles
            assert isinstance(x["content"], str) and x["content"].strip()
    if kind == "sft":
        assert set(ex) == {"messages"}
        msgs(ex["messages"])
        assert ex["messages"][-1]["role"] == "assistant"
    elif kind == "dpo":
        assert set(ex) == {"prompt", "chosen", "rejected"}
        msgs(ex["prompt"])
        assert ex["prompt"][-1]["role"] in ("user", "tool")
        for key in ("chosen", "rejected"):
            msgs(ex[key], ("assistant",))
            assert len(ex[key]) == 1
    else:
        assert set(ex) == {"prompt", "completion", "label"}
        msgs(ex["prompt"])
        msgs(ex["completion"], ("assistant",))
        assert isinstance(ex["label"], bool)


def test_peer_details_survive(tok):
    identity = inspect_file(peer("identity.json"))
    assert identity.examples[0] == {"messages": [
        {"role": "user", "content": "hi"},
        {"role": "assistant", "content": "Hello! I am {{name}}, an AI assistant developed by {{author}}. How can I assist you today?"}]}
    assert any("{{name}}" in n for n in identity.notices)
    glaive = inspect_file(peer("glaive_toolcall_en_demo.json"))
    roles = [m["role"] for m in glaive.examples[0]["messages"]]
    assert roles == ["system", "user", "assistant", "user", "assistant", "tool", "assistant", "user", "assistant"]
    assert glaive.examples[0]["messages"][0]["content"].startswith("You can call these tools:")
    assert "search_recipes" in glaive.examples[0]["messages"][0]["content"]
    assert json.loads(glaive.examples[0]["messages"][4]["content"])["name"] == "search_recipes"
    v1 = inspect_file(peer("v1_dpo_demo.jsonl"))
    assert v1.examples[0]["prompt"][0]["content"].startswith("You are an AI assistant.")
    assert v1.examples[0]["chosen"][0]["content"].startswith("Abdulah Hasanagic is the proud owner")
    kto = inspect_file(peer("kto_en_demo.json"))
    assert kto.stats["labels"] == {"desirable": 150, "undesirable": 150, "desirable_share": 0.5}


def test_inspect_reads_the_largest_peer_file(tok):
    largest = max(peers_dir().iterdir(), key=lambda p: p.stat().st_size)
    report = inspect_file(largest, tokenizer=tok)
    assert report.valid_rows > 0


# ---------------------------------------------------------------- SFT formats

def _one(tmp_path, rows, name="d.jsonl", **kw):
    path = write_json(tmp_path / name, rows) if name.endswith(".json") else write_jsonl(tmp_path / name, rows)
    return inspect_file(path, **kw)


def test_messages_multi_turn_with_system(tmp_path):
    conv = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"},
            {"role": "user", "content": "Bye"}, {"role": "assistant", "content": "Bye!"}]
    report = _one(tmp_path, [{"messages": conv, "id": 7}])
    assert (report.kind, report.format, report.confidence) == ("sft", "messages", 1.0)
    assert report.examples == [{"messages": conv}]
    assert report.stats["multi_turn"] == 1
    assert any("'id'" in n for n in report.notices)


def test_sharegpt_roles_including_tools(tmp_path):
    conv = [{"from": "system", "value": "S"}, {"from": "human", "value": "weather?"},
            {"from": "function_call", "value": '{"name": "w"}'}, {"from": "observation", "value": "sunny"},
            {"from": "gpt", "value": "Sunny."}, {"from": "human", "value": "thanks"}, {"from": "tool", "value": "log"},
            {"from": "gpt", "value": "You're welcome."}]
    report = _one(tmp_path, [{"conversations": conv, "system": "Extra rule."}])
    assert (report.kind, report.format) == ("sft", "sharegpt")
    assert [m["role"] for m in report.examples[0]["messages"]] == [
        "system", "user", "assistant", "tool", "assistant", "user", "tool", "assistant"]
    assert report.examples[0]["messages"][0]["content"] == "S\n\nExtra rule."


def test_alpaca_with_system_and_history(tmp_path):
    row = {"instruction": "Translate", "input": "Hallo", "output": "Hello", "system": "You translate.",
           "history": [["Hi", "Hey"], ["Who are you?", "A translator."]]}
    report = _one(tmp_path, [row, {"instruction": "Say hi", "input": "", "output": "hi"}], name="d.json")
    assert (report.kind, report.format) == ("sft", "alpaca")
    assert report.examples[0]["messages"] == [
        {"role": "system", "content": "You translate."},
        {"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hey"},
        {"role": "user", "content": "Who are you?"}, {"role": "assistant", "content": "A translator."},
        {"role": "user", "content": "Translate\nHallo"}, {"role": "assistant", "content": "Hello"}]
    assert report.examples[1]["messages"] == chat("Say hi", "hi")


def test_prompt_completion_strings_and_messages(tmp_path):
    rows = [{"prompt": "2+2?", "completion": "4"},
            {"prompt": [{"role": "system", "content": "math"}, {"role": "user", "content": "3+3?"}],
             "completion": [{"role": "assistant", "content": "6"}]}]
    report = _one(tmp_path, rows)
    assert (report.kind, report.format) == ("sft", "prompt_completion")
    assert report.examples == [{"messages": chat("2+2?", "4")}, {"messages": chat("3+3?", "6", system="math")}]


@pytest.mark.parametrize("header", [("question", "answer"), ("input", "output"), ("Query", "Response"), ("prompt", "response"),
                                    ("USER", "ASSISTANT"), ("Instruction", "Response"), (" Question ", "Answer")])
def test_two_column_files_with_everyday_names(tmp_path, header):
    report = inspect_file(write_csv(tmp_path / "d.csv", list(header), [["Capital of France?", "Paris"], ["1+1?", "2"]]))
    assert report.kind == "sft" and report.valid_rows == 2
    assert report.examples[0] == {"messages": chat("Capital of France?", "Paris")}
    assert set(report.mapping.values()) == {h.strip() for h in header}
    assert report.confidence >= 0.75


def test_typed_content_lists(tmp_path):
    row = {"messages": [
        {"role": "user", "content": [{"type": "text", "text": "Look: "}, {"type": "text", "value": "two parts"}]},
        {"role": "assistant", "content": [{"type": "text", "value": "Seen."}]}]}
    report = _one(tmp_path, [row])
    assert report.examples[0]["messages"] == chat("Look: \ntwo parts", "Seen.")


def test_messages_stored_as_json_text_in_a_csv(tmp_path):
    conv = json.dumps(chat("hi", "hello"))
    report = inspect_file(write_csv(tmp_path / "d.csv", ["messages"], [[conv]]))
    assert (report.kind, report.format) == ("sft", "messages")
    assert report.examples[0]["messages"] == chat("hi", "hello")


# ---------------------------------------------------------------- DPO formats

def _pair(prompt="Name a colour.", chosen="Blue.", rejected="Dunno."):
    return {"prompt": [{"role": "user", "content": prompt}], "chosen": [{"role": "assistant", "content": chosen}],
            "rejected": [{"role": "assistant", "content": rejected}]}


def test_dpo_prompt_chosen_rejected_strings_and_messages(tmp_path):
    rows = [{"prompt": "Name a colour.", "chosen": "Blue.", "rejected": "Dunno."},
            {"prompt": [{"role": "user", "content": "Name a colour."}], "chosen": [{"role": "assistant", "content": "Red."}],
             "rejected": [{"role": "assistant", "content": "No."}]}]
    report = _one(tmp_path, rows)
    assert (report.kind, report.format) == ("dpo", "prompt_chosen_rejected")
    assert report.examples == [_pair(), _pair(chosen="Red.", rejected="No.")]


def test_dpo_whole_conversations_sharing_a_prompt(tmp_path):
    row = {"chosen": chat("Name a colour.", "Blue."), "rejected": chat("Name a colour.", "Dunno.")}
    report = _one(tmp_path, [row])
    assert (report.kind, report.format) == ("dpo", "chosen_rejected_conversations")
    assert report.examples == [_pair()]


def test_dpo_hh_text(tmp_path):
    row = {"chosen": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: Blue.",
           "rejected": "\n\nHuman: Hi\n\nAssistant: Hello!\n\nHuman: Name a colour.\n\nAssistant: Dunno."}
    report = _one(tmp_path, [row])
    assert (report.kind, report.format) == ("dpo", "chosen_rejected_text")
    assert report.examples[0]["prompt"] == [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
                                            {"role": "user", "content": "Name a colour."}]
    assert report.examples[0]["chosen"] == [{"role": "assistant", "content": "Blue."}]
    assert report.examples[0]["rejected"] == [{"role": "assistant", "content": "Dunno."}]


def test_dpo_sharegpt_and_chosen_messages(tmp_path):
    sharegpt = {"conversations": [{"from": "human", "value": "Name a colour."}],
                "chosen": {"from": "gpt", "value": "Blue."}, "rejected": {"from": "gpt", "value": "Dunno."}}
    report = _one(tmp_path, [sharegpt], name="a.jsonl")
    assert (report.kind, report.format, report.examples) == ("dpo", "sharegpt_preference", [_pair()])
    v1 = {"chosen_messages": chat("Name a colour.", "Blue."), "rejected_messages": chat("Name a colour.", "Dunno.")}
    report = _one(tmp_path, [v1], name="b.jsonl")
    assert (report.kind, report.format, report.examples) == ("dpo", "chosen_rejected_messages", [_pair()])


# ---------------------------------------------------------------- KTO formats

LABELS = [(True, True), (False, False), (1, True), (0, False), ("yes", True), ("No", False), ("true", True), ("FALSE", False),
          ("good", True), ("bad", False), ("desirable", True), ("undesirable", False), ("thumbs up", True),
          ("thumbs_down", False), ("👍", True), ("👎", False), ("👍🏽", True), ("1", True), ("0", False)]


def test_kto_labels_in_every_spelling(tmp_path):
    rows = [{"prompt": f"q{i}", "completion": f"a{i}", "label": label} for i, (label, _) in enumerate(LABELS)]
    report = _one(tmp_path, rows)
    assert (report.kind, report.format, report.valid_rows) == ("kto", "prompt_completion_label", len(LABELS))
    assert [ex["label"] for ex in report.examples] == [want for _, want in LABELS]
    assert report.examples[0] == {"prompt": [{"role": "user", "content": "q0"}],
                                  "completion": [{"role": "assistant", "content": "a0"}], "label": True}


def test_kto_labels_from_a_csv(tmp_path):
    rows = [[f"q{i}", f"a{i}", label] for i, label in enumerate(["TRUE", "False", "1", "0", "👍", "👎", "Good", "BAD"])]
    report = inspect_file(write_csv(tmp_path / "d.csv", ["prompt", "completion", "label"], rows))
    assert [ex["label"] for ex in report.examples] == [True, False] * 4


def test_kto_messages_and_sharegpt_kto_tag(tmp_path):
    report = _one(tmp_path, [{"messages": chat("q", "a", system="s"), "label": "thumbs up"}], name="a.jsonl")
    assert (report.kind, report.format) == ("kto", "messages_label")
    assert report.examples[0] == {"prompt": [{"role": "system", "content": "s"}, {"role": "user", "content": "q"}],
                                  "completion": [{"role": "assistant", "content": "a"}], "label": True}
    row = {"conversations": [{"from": "human", "value": "q"}, {"from": "gpt", "value": "a"}], "kto_tag": False}
    report = _one(tmp_path, [row], name="b.jsonl")
    assert (report.kind, report.format, report.examples[0]["label"]) == ("kto", "sharegpt_label", False)


# ---------------------------------------------------------------- mapping, kind, failures

def test_mapping_names_unusual_columns(tmp_path):
    path = write_csv(tmp_path / "d.csv", ["Frage", "Antwort", "Notiz"], [["Wie spät?", "Zwölf.", "x"], ["Wo?", "Hier.", "y"]])
    with pytest.raises(DataError, match="'Frage', 'Antwort' and 'Notiz'|none of them a known"):
        inspect_file(path)
    report = inspect_file(path, mapping={"prompt": "Frage", "answer": "antwort"})
    assert report.mapping == {"prompt": "Frage", "completion": "Antwort"}
    assert report.confidence == 1.0
    assert report.examples[0] == {"messages": chat("Wie spät?", "Zwölf.")}


def test_mapping_overrides_a_wrong_guess(tmp_path):
    rows = [{"question": "q1", "answer": "short", "long_answer": "the long one"}]
    assert _one(tmp_path, rows).examples[0]["messages"][1]["content"] == "short"
    report = _one(tmp_path, rows, mapping={"completion": "long_answer"})
    assert report.examples[0]["messages"][1]["content"] == "the long one"


def test_bad_mapping_is_explained(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", qa(3))
    with pytest.raises(DataError, match="Column 'nope' .* not in the file. Columns found: 'prompt', 'completion'"):
        inspect_file(path, mapping={"completion": "nope"})
    with pytest.raises(DataError, match="Unknown field 'colour'"):
        inspect_file(path, mapping={"colour": "prompt"})


def test_kind_restricts_and_explains(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"prompt": "p", "chosen": "a", "rejected": "b"}])
    assert inspect_file(path, kind="dpo").kind == "dpo"
    with pytest.raises(DataError, match="looks like dpo data .* not sft"):
        inspect_file(path, kind="sft")
    with pytest.raises(DataError, match="Unknown kind"):
        inspect_file(path, kind="rlhf")


@pytest.mark.parametrize("header,match", [
    (["question", "context"], "columns 'question' and 'context' but no answer column"),
    (["answer", "notes"], "answer column 'answer' but no question column"),
    (["prompt", "chosen"], "'chosen' column but no 'rejected' column"),
    (["label", "text"], "label column 'label' but no prompt/completion"),
    (["foo", "bar"], "columns 'foo', 'bar', none of them a known"),
])
def test_unrecognised_columns_say_what_was_found(tmp_path, header, match):
    path = write_csv(tmp_path / "d.csv", header, [["x", "y"]])
    with pytest.raises(DataError, match=match):
        inspect_file(path)


def test_low_confidence_when_shapes_do_not_fit(tmp_path):
    rows = [{"messages": "just some text", "n": i} for i in range(5)] + [{"messages": chat("q", "a")}]
    report = _one(tmp_path, rows)
    assert report.confidence < 0.6
    assert any("Not sure" in w for w in report.warnings)
    assert report.valid_rows == 1 and report.invalid_rows == 5


def test_xlsx_two_columns(tmp_path):
    report = inspect_file(write_xlsx(tmp_path / "d.xlsx", ["Question", "Answer"], [["a?", "b"], ["c?", "d"]]))
    assert (report.kind, report.valid_rows, report.file_format) == ("sft", 2, "xlsx")
