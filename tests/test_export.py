"""Export: the merged folder loads with plain transformers and answers exactly like base + adapter."""
import torch
from transformers import AutoModelForCausalLM, AutoTokenizer

from backend.errors import RunStateError
from backend.export import export_run
from backend import workspace
from backend.runner import JobRunner
from tests.conftest import greedy, tiny_config

PROMPTS = ["Say hello number 3.", "What is the capital of France?"]


def trained_run(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=6))
    assert runner.wait(run_id, timeout=300)["status"] == "done"
    runner.close()
    return runner.store, run_id


def test_merged_export_matches_base_plus_adapter(tiny_model, chat_file, tmp_path):
    store, run_id = trained_run(tiny_model, chat_file)
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
    for words in ("Method: SFT", "learning_rate", "Final metrics", "Forgetting probe", tiny_model):
        assert words in card


def test_adapter_only_export_and_zip(tiny_model, chat_file, tmp_path):
    store, run_id = trained_run(tiny_model, chat_file)
    archive = export_run(store, run_id, tmp_path / "adapter", adapter_only=True, zip_it=True)
    assert archive.suffix == ".zip" and archive.stat().st_size > 0
    assert (tmp_path / "adapter" / "adapter_model.safetensors").exists()
    assert (tmp_path / "adapter" / "adapter_config.json").exists()


def test_export_refuses_unfinished_run_and_nonempty_folder(tiny_model, chat_file, tmp_path):
    store, run_id = trained_run(tiny_model, chat_file)
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "x").write_text("x")
    import pytest
    with pytest.raises(Exception, match="not empty"):
        export_run(store, run_id, busy)
    store.set_status(run_id, "failed")
    (workspace.run_dir(run_id) / "adapter" / "adapter_model.safetensors").unlink()
    with pytest.raises(RunStateError, match="no finished adapter"):
        export_run(store, run_id, tmp_path / "new")
