"""The model catalogue: its numbers hold together, and every model in it can be judged before it is downloaded."""
import pytest
import trl.chat_template_utils as trl_templates
from transformers import CONFIG_MAPPING

from backend.models.catalogue import catalogue, find
from backend.models.memory import ModelShape, model_config

# Families whose chat template TRL 1.16 does not ship at all (see backend/models/chat_template.py for what happens).
NOT_IN_TRL = {"mistral", "phi4_mini"}


def params(entry) -> int:
    shape = ModelShape.from_config(entry.config)
    return shape.linear_params() + shape.other_params()


def test_about_fifteen_popular_models():
    ids = [entry.id for entry in catalogue()]
    assert 15 <= len(ids) <= 20 and len(set(ids)) == len(ids)
    for wanted in ("meta-llama/Llama-3.2-1B-Instruct", "Qwen/Qwen2.5-0.5B-Instruct", "Qwen/Qwen3-0.6B",
                   "google/gemma-2-2b-it", "mistralai/Mistral-7B-Instruct-v0.3", "microsoft/Phi-3.5-mini-instruct",
                   "HuggingFaceTB/SmolLM2-360M-Instruct"):
        assert wanted in ids


@pytest.mark.parametrize("entry", catalogue(), ids=lambda e: e.id)
def test_the_shape_gives_the_published_size(entry):
    """A typo in hidden_size, a layer count or the vocabulary moves the parameter count far from the model card's."""
    assert params(entry) == pytest.approx(entry.params_b * 1e9, rel=0.03)


@pytest.mark.parametrize("entry", catalogue(), ids=lambda e: e.id)
def test_the_download_size_is_the_weights_in_bf16(entry):
    tied_head_stored = 2 * entry.config["vocab_size"] * entry.config["hidden_size"]
    assert entry.download_bytes in (pytest.approx(2 * params(entry), rel=0.005),
                                    pytest.approx(2 * params(entry) + tied_head_stored, rel=0.005))


def test_the_size_method_gives_the_published_index_totals():
    assert 2 * params(find("meta-llama/Llama-3.1-8B-Instruct")) == 16_060_522_496
    assert 2 * params(find("meta-llama/Llama-3.2-3B-Instruct")) == 6_425_499_648


@pytest.mark.parametrize("entry", catalogue(), ids=lambda e: e.id)
def test_every_entry_is_a_standard_architecture_with_a_known_template_family(entry):
    assert entry.config["model_type"] in CONFIG_MAPPING  # loads without trust_remote_code
    assert entry.source and entry.licence
    if entry.template == "chatml" or entry.template in NOT_IN_TRL:
        assert not hasattr(trl_templates, f"{entry.template}_chat_template")
    else:
        assert hasattr(trl_templates, f"{entry.template}_chat_template"), entry.template


def test_gated_models_are_the_ones_behind_a_licence_click():
    gated = {entry.id.split("/")[0] for entry in catalogue() if entry.gated}
    assert gated == {"meta-llama", "google", "mistralai"}


def test_find_ignores_case_and_knows_what_is_not_there():
    assert find("qwen/QWEN3-0.6b").id == "Qwen/Qwen3-0.6B"
    assert find("org/unknown") is None and find(None) is None


def test_a_catalogue_model_has_a_config_before_it_is_downloaded():
    entry = find("Qwen/Qwen2.5-7B-Instruct")
    assert model_config(entry.id) == entry.config


def test_a_models_template_has_one_name_in_the_table_the_command_line_and_the_note_under_it():
    """The walk: the catalogue said template "llama3_1", the note under the picked model "llama3"."""
    from backend.models.chat_template import expected_note, family_name
    from ui.train_tab import catalogue_html, entry_label
    for entry in catalogue():
        note = expected_note(entry.template)
        if note.startswith("Chat template: "):
            assert note.startswith(f"Chat template: {family_name(entry.template)} ("), entry.id
        assert entry_label(entry).endswith(f"template {family_name(entry.template)}")
    assert family_name("llama3_1") == family_name("llama3_2") == "llama3"
