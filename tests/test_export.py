"""Export: the merged folder loads with plain transformers and answers exactly like base + adapter."""
import pytest
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from backend import workspace
from backend.db import connect
from backend.errors import RunStateError
from backend.export.merged import export_run
from backend.jobs.runner import JobRunner
from backend.runs import RunStore
from tests.conftest import CHAT_ROWS, greedy, tiny_config, use_home, write_jsonl
from tests.fake_runs import fake_run

PROMPTS = ["Say hello number 3.", "What is the capital of France?"]


def trained_run(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6))
    assert runner.wait(run_id, timeout=300)["status"] == "done"
    runner.close()
    return runner.store, run_id


@pytest.fixture(scope="module")
def trained(module_home, tiny_model, tmp_path_factory):
    """One trained run that every test here exports (read only): (its workspace, run id)."""
    chat_file = write_jsonl(tmp_path_factory.mktemp("data") / "chat.jsonl", CHAT_ROWS)
    _, run_id = trained_run(tiny_model, chat_file)
    return module_home, run_id


@pytest.fixture
def store_and_run(trained, monkeypatch):
    home, run_id = trained
    use_home(monkeypatch, home)
    return RunStore(connect()), run_id


def test_merged_export_matches_base_plus_adapter(store_and_run, tiny_model, tmp_path):
    store, run_id = store_and_run
    out = export_run(store, run_id, tmp_path / "merged")
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "config.json", "tokenizer.json", "generation_config.json", "README.md"} <= names
    assert not any(n.endswith(".bin") for n in names)

    merged = AutoModelForCausalLM.from_pretrained(out, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(out)
    assert tokenizer.chat_template
    from peft import PeftModel
    base = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    with_adapter = PeftModel.from_pretrained(base, str(workspace.run_dir(run_id) / "adapter"))
    tok = AutoTokenizer.from_pretrained(tiny_model)
    assert greedy(merged, tokenizer, PROMPTS, max_new_tokens=12) == greedy(with_adapter, tok, PROMPTS, max_new_tokens=12)
    ids = tokenizer(["Hello there"], return_tensors="pt")
    with torch.no_grad():
        assert torch.allclose(merged(**ids).logits, with_adapter(**ids).logits, atol=1e-4)

    card = (out / "README.md").read_text()
    for words in ("Method: SFT", "learning_rate", "How the training ended", "Forgetting probe", tiny_model):
        assert words in card


def test_adapter_only_export_and_zip(store_and_run, tmp_path):
    store, run_id = store_and_run
    archive = export_run(store, run_id, tmp_path / "adapter", adapter_only=True, zip_it=True)
    assert archive.suffix == ".zip" and archive.stat().st_size > 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert (tmp_path / "adapter" / "adapter_config.json").exists()


def test_export_refuses_a_nonempty_folder(store_and_run, tmp_path):
    store, run_id = store_and_run
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    with pytest.raises(Exception, match="not empty"):
        export_run(store, run_id, busy)
    assert list(busy.iterdir()) == [busy / "x"]


def test_export_refuses_a_run_without_a_finished_adapter(tiny_model, tmp_path):
    run_id = fake_run(tiny_model, status="failed")  # a run of its own: this one is changed
    (workspace.run_dir(run_id) / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(RunStateError, match="no finished adapter"):
        export_run(RunStore(connect()), run_id, tmp_path / "new")


def test_the_model_card_names_the_built_in_base_model_as_the_hub_does_and_a_stopped_run_as_unchecked(tiny_model):
    """Issue 26, item 21: the card said "Base model: smollm2"; item 19: a stopped run's card said it held none back."""
    from backend.export.merged import model_card
    store = RunStore(connect())
    run_id = fake_run(tiny_model, status="stopped", model="smollm2", validation_split=0.1)
    card = model_card(store, store.get(run_id), adapter_only=True)
    assert "- Base model: HuggingFaceTB/SmolLM2-135M-Instruct\n" in card and "smollm2" not in card
    assert "Not checked: the run did not run to its end." in card and "held none back" not in card


def test_the_model_card_says_its_settings_in_plain_words_and_which_choices_the_win_rates_left_out(tiny_model):
    """The walk (issue 26 follow-up): the card headed its settings "Hyperparameters", and said nothing of the A/B
    choices left out of its win-rates (made with the models' names shown), which the Runs tab and labels stats say."""
    from backend.answers import Answer, Sampling, Source
    from backend.export.merged import model_card
    from backend.labels.store import LabelStore
    from backend.labels.winrate import win_rates
    store = RunStore(connect())
    run_id = fake_run(tiny_model)
    other = fake_run(tiny_model, seed=1)
    tuned, base = Answer("tuned", Source("smollm2", run_id), Sampling()), Answer("base", Source("smollm2", None),
                                                                                 Sampling())
    labels = LabelStore(connect())
    labels.add_choice([{"role": "user", "content": "Blind?"}], tuned, base, "left", blind=True)
    labels.add_choice([{"role": "user", "content": "Seen?"}], tuned, base, "left", blind=False)
    labels.add_choice([{"role": "user", "content": "Other?"}], Answer("x", Source("smollm2", other), Sampling()), base,
                      "left", blind=False)  # another run's: not this card's business
    card = model_card(store, store.get(run_id), adapter_only=True)
    assert "Hyperparameters" not in card and "## The settings it was trained with" in card
    assert '"learning_rate": ' in card  # the values stay
    said = "Left out of the win-rates, which count only blind votes: 1 A/B choice made with the models' names shown."
    assert win_rates(connect(), run_id=run_id)["left_out"] == said  # labels stats' words, for this run's choices
    assert "2 A/B choices" in win_rates(connect())["left_out"]  # every run's: what labels stats prints
    preferred = card[card.index("## Do people prefer it?"):card.index("## Diagnosis")]
    assert said in preferred and "| base:smollm2 | 1 | 1 |" in preferred, preferred
    others = model_card(store, store.get(other), adapter_only=True)
    preferred = others[others.index("## Do people prefer it?"):others.index("## Diagnosis")]
    assert "No blind A/B votes yet." in preferred and said in preferred, preferred


def test_the_model_card_says_how_the_training_ended_in_the_runs_tabs_words(tiny_model):
    """The walk (issue 26 follow-up): under 'Final metrics' the card listed 'eval_loss: 0.4361', 'train_loss: ...',
    keys a newcomer cannot read; the Runs tab says the same values in words."""
    from backend.export.merged import model_card
    store = RunStore(connect())
    run = store.get(fake_run(tiny_model))
    run["final_metrics"] = {"eval_loss": 0.43612, "train_loss": 0.2237, "steps": 24, "eval_rewards/chosen": 1.5}
    card = model_card(store, run, adapter_only=True)
    assert "Final metrics" not in card and "eval_loss" not in card and "train_loss" not in card
    ended = card[card.index("## How the training ended"):card.index("## Did it learn?")]
    assert "Training loss 0.2237, loss on held-back examples 0.4361, steps 24." in ended, ended
    assert "eval_rewards/chosen 1.5" in ended  # a measure with no words of its own keeps its name and value
    run["final_metrics"] = {}
    assert "Nothing was recorded." in model_card(store, run, adapter_only=True)


def test_the_left_out_sentence_is_said_under_the_votes_in_the_report_card_itself():
    from backend.evaluation.report_card import card_markdown
    card = {"verdict": None, "learned": None, "kept": None, "preferred": [], "diagnosis": [],
            "data": {"dataset": "d"}, "early_stopping": None, "settings": {}, "preferred_left_out": "Left out."}
    lines = card_markdown(card, settings=False)
    votes, diagnosis = lines.index("## Do people prefer it? Blind A/B votes"), lines.index("## Diagnosis")
    assert "Left out." in lines[votes:diagnosis]  # under the votes it speaks of, in the card `runs --json` gives too
    assert "Left out." not in card_markdown({**card, "preferred_left_out": ""}, settings=False)
