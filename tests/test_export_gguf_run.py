"""A finished run exported as GGUF: merged, written, checked, and laid out with its Modelfile and model card."""
import pytest

from backend.errors import RunStateError, TuneloopError
from backend.export.merged import export_gguf_for_run
from tests.test_export import trained_run


def test_a_finished_run_becomes_a_checked_gguf_with_modelfile_and_card(tiny_model, chat_file, tmp_path):
    store, run_id = trained_run(tiny_model, chat_file)
    seen = []
    result = export_gguf_for_run(store, run_id, tmp_path / "gguf", "f16",
                                 progress=lambda fraction, message: seen.append((fraction, message)))
    out = tmp_path / "gguf"
    assert result.path.parent == out and result.path.exists() and result.path.suffix == ".gguf"
    assert sorted(p.name for p in out.iterdir()) == sorted([result.path.name, "Modelfile", "README.md"])
    assert not (tmp_path / "gguf.partial").exists()
    assert result.check.passed and result.quant == "f16"
    assert f"FROM ./{result.path.name}" in (out / "Modelfile").read_text()
    card = (out / "README.md").read_text()
    for words in ("Method: SFT", "## GGUF check", "| f16 |", result.path.name, f"ollama create {result.ollama_name} -f Modelfile"):
        assert words in card
    fractions = [f for f, _ in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert result.to_dict()["ollama_commands"] == [f"ollama create {result.ollama_name} -f Modelfile",
                                                   f"ollama run {result.ollama_name}"]

    with pytest.raises(TuneloopError, match="not empty"):
        export_gguf_for_run(store, run_id, out, "q8_0")
    store.set_status(run_id, "failed")
    with pytest.raises(RunStateError, match="no finished adapter"):
        export_gguf_for_run(store, run_id, tmp_path / "again", "q8_0")


@pytest.mark.slow
def test_a_run_of_the_builtin_model_in_q8_0_loads_back_and_gives_the_merged_models_answer(embedded_model, chat_file,
                                                                                           tmp_path):
    """The issue's done-when: a run trained on the built-in model (3 steps: minutes, not hours), exported as
    q8_0 GGUF, loaded back with transformers' GGUF loader, answers as the run's own model does."""
    from backend.jobs.runner import JobRunner
    from tests.conftest import greedy, tiny_config
    from tests.learned_runs import run_model

    runner = JobRunner()
    run_id = runner.submit(tiny_config("smollm2", chat_file, max_steps=3, learning_rate=1e-4))
    assert runner.wait(run_id, timeout=1200)["status"] == "done"
    runner.close()
    result = export_gguf_for_run(runner.store, run_id, tmp_path / "gguf", "q8_0")
    assert result.check.passed and result.path.read_bytes()[:4] == b"GGUF"

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer
    loaded = AutoModelForCausalLM.from_pretrained(result.path.parent, gguf_file=result.path.name,
                                                  dtype=torch.float32).eval()
    loaded_tokenizer = AutoTokenizer.from_pretrained(result.path.parent, gguf_file=result.path.name)
    tuned, tokenizer = run_model("smollm2", runner.store.finished_adapter(run_id))
    prompt = ["What is the capital of France?"]
    answer = greedy(loaded, loaded_tokenizer, prompt, max_new_tokens=20)
    assert answer == greedy(tuned, tokenizer, prompt, max_new_tokens=20)
    assert "Paris" in answer[0]
