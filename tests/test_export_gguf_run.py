"""A finished run exported as GGUF: merged, written, checked, and laid out with its Modelfile and model card."""
import pytest

from backend.errors import RunStateError, TuneloopError
from backend.export import export_gguf_for_run
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
    with pytest.raises(RunStateError, match="no saved adapter"):
        export_gguf_for_run(store, run_id, tmp_path / "again", "q8_0")
