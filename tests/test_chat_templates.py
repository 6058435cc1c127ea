"""Assistant-only loss for every catalogue family: the labels TRL's SFTTrainer builds cover exactly the assistant's
words and the end of its turn. Nothing is downloaded: the built-in tokenizer, given each family's original template
(as TRL ships it) and special tokens, stands in for the family's tokenizer, and a tiny random model built from the
family's catalogue config stands in for the weights."""
import types

import pytest
import trl.chat_template_utils as trl_templates
from transformers import AddedToken, AutoConfig, AutoModelForCausalLM, AutoTokenizer

from backend.models.catalogue import catalogue
from backend.models.chat_template import (CHATML_TEMPLATE, NO_TEMPLATE_NOTE, ensure_chat_template, training_template,
                                   with_generation_markers)
from backend.train.sft import build_sft_trainer

CHAT = [{"role": "user", "content": "What is your name?"}, {"role": "assistant", "content": "I am Quill."}]
TWO_TURNS = [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello!"},
             {"role": "user", "content": "Name?"}, {"role": "assistant", "content": "Quill."}]
WITH_SYSTEM = [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
               {"role": "assistant", "content": "Hello there!"}]

LLAMA3 = dict(tokens=["<|begin_of_text|>", "<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"],
              bos="<|begin_of_text|>", eos="<|eot_id|>", learned=("", "<|eot_id|>", ""))
GEMMA = dict(tokens=["<bos>", "<start_of_turn>", "<end_of_turn>"], bos="<bos>", eos="<end_of_turn>",
             learned=("", "<end_of_turn>\n", ""), system=False)  # Gemma's template refuses system turns
# Per family: the special tokens its tokenizer has, and what is learned around each answer: (before, after, at the
# end). Before: Qwen2.5's training template puts the newline after the role inside the marked part, and Qwen3's
# renders its (empty) thinking block there. At the end: Phi-3.5 learns its end-of-text token after the last turn.
FAMILIES = {
    "chatml": dict(tokens=[], learned=("", "<|im_end|>", "")),
    "llama3_1": LLAMA3,
    "llama3_2": LLAMA3,
    "qwen2_5": dict(tokens=["<|im_start|>", "<|im_end|>"], eos="<|im_end|>", learned=("\n", "<|im_end|>\n", "")),
    "qwen3": dict(tokens=["<|im_start|>", "<|im_end|>", "<think>", "</think>"], eos="<|im_end|>",
                  learned=("<think>\n\n</think>\n\n", "<|im_end|>\n", "")),
    "gemma": GEMMA,
    "gemma3": GEMMA,
    "phi3_5": dict(tokens=["<|system|>", "<|user|>", "<|assistant|>", "<|end|>"], eos="<|endoftext|>",
                   learned=("", "<|end|>\n", "<|endoftext|>")),
}
# TRL 1.16 ships neither the original nor a training version of these: SFT falls back to prompt/completion.
FALLBACK_FAMILIES = {"mistral", "phi4_mini"}


def family_tokenizer(embedded_model, family: str):
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)  # a fresh copy: the cached one stays untouched
    spec = FAMILIES[family]
    new = [AddedToken(t, special=True, normalized=False) for t in spec["tokens"] if t not in tokenizer.get_vocab()]
    tokenizer.add_tokens(new, special_tokens=True)
    if spec.get("bos"):
        tokenizer.bos_token = spec["bos"]
    if spec.get("eos"):
        tokenizer.eos_token = spec["eos"]
    if family != "chatml":
        tokenizer.chat_template = getattr(trl_templates, f"{family}_chat_template")
    return tokenizer


def tiny_model(family: str, tokenizer):
    """A 2-layer random model of the family's architecture (its model_type in the catalogue)."""
    model_type = next(e.config["model_type"] for e in catalogue() if e.template == family)
    config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128,
                                  num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2, head_dim=16,
                                  max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id or 0,
                                  bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id)
    return AutoModelForCausalLM.from_config(config)


def sft_trainer(model, tokenizer, conversations, tmp_path, notes=None):
    prepared = types.SimpleNamespace(model=model, tokenizer=tokenizer, peft_config=None)
    args = dict(output_dir=str(tmp_path / "out"), per_device_train_batch_size=1, max_steps=1, max_length=512,
                report_to="none", use_cpu=True, disable_tqdm=True)
    log = notes.append if notes is not None else (lambda _: None)
    return build_sft_trainer(prepared, args, [{"messages": c} for c in conversations], [], [], log=log)


def learned_texts(trainer, tokenizer) -> list[str]:
    return [tokenizer.decode([t for t in row["labels"] if t != -100]) for row in trainer.train_dataset]


def test_every_catalogue_family_is_covered_here():
    assert {entry.template for entry in catalogue()} <= set(FAMILIES) | FALLBACK_FAMILIES


@pytest.mark.parametrize("family", FAMILIES)
def test_exactly_the_assistants_words_are_learned(family, embedded_model, tmp_path):
    tokenizer = family_tokenizer(embedded_model, family)
    original = tokenizer.chat_template
    conversations = [CHAT, TWO_TURNS] + ([WITH_SYSTEM] if FAMILIES[family].get("system", True) else [])
    notes = []
    trainer = sft_trainer(tiny_model(family, tokenizer), tokenizer, conversations, tmp_path, notes)

    assert trainer.args.assistant_only_loss and training_template(tokenizer).loss == "assistant"
    before, after, end = FAMILIES[family]["learned"]
    expected = ["".join(before + m["content"] + after for m in c if m["role"] == "assistant") + end
                for c in conversations]
    assert learned_texts(trainer, tokenizer) == expected
    assert len(notes) == 1 and ("learned" in notes[0] or "marked" in notes[0])
    if family in ("chatml", "llama3_1", "llama3_2"):  # marked here, with the same rendering
        assert tokenizer.chat_template == with_generation_markers(original)
    else:  # TRL swaps its training version in for tokenizing only: what is saved and exported keeps the original
        assert tokenizer.chat_template == original and notes[0].startswith(f"Chat template: {family} (TRL")


@pytest.mark.parametrize("family", ["chatml", "llama3_1", "llama3_2"])
def test_templates_marked_here_render_exactly_the_original_text(family, embedded_model):
    tokenizer = family_tokenizer(embedded_model, family)
    marked = with_generation_markers(tokenizer.chat_template)
    assert marked and "generation" in marked
    for messages in (CHAT, TWO_TURNS, WITH_SYSTEM):
        for add_prompt in (False, True):
            original = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_prompt)
            again = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_prompt,
                                                  chat_template=marked)
            assert again == original


def test_an_unknown_template_falls_back_to_the_last_answer_and_says_why(embedded_model, tmp_path):
    tokenizer = AutoTokenizer.from_pretrained(embedded_model)
    tokenizer.chat_template = ("{% for m in messages %}{{ '### ' + m['role'] + ':\\n' + m['content'] + eos_token }}"
                               "{% endfor %}{% if add_generation_prompt %}{{ '### assistant:\\n' }}{% endif %}")
    choice = training_template(tokenizer)
    assert choice.loss == "completion" and "only the last answer" in choice.note
    notes = []
    trainer = sft_trainer(tiny_model("chatml", tokenizer), tokenizer, [TWO_TURNS], tmp_path, notes)
    assert notes == [choice.note] and not trainer.args.assistant_only_loss
    assert learned_texts(trainer, tokenizer) == ["Quill.<|im_end|>"]  # the last answer and the end of text


def base_tokenizer():
    """A small byte-level BPE tokenizer with no chat template and no ChatML tokens, like a base model's."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    bpe = Tokenizer(models.BPE(unk_token="<unk>"))
    bpe.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    bpe.decoder = decoders.ByteLevel()
    text = ["What is your name? I am Quill. Hi Hello! Name? Quill." * 3, "the quick brown fox jumps over"]
    bpe.train_from_iterator(text, trainers.BpeTrainer(vocab_size=300, special_tokens=["<unk>", "</s>"],
                                                      initial_alphabet=pre_tokenizers.ByteLevel.alphabet()))
    return PreTrainedTokenizerFast(tokenizer_object=bpe, eos_token="</s>", unk_token="<unk>", pad_token="</s>")


def test_a_base_model_gets_chatml_and_the_run_log_says_so(tmp_path):
    tokenizer = base_tokenizer()
    assert tokenizer.chat_template is None and "<|im_end|>" not in tokenizer.get_vocab()
    assert ensure_chat_template(tokenizer) == NO_TEMPLATE_NOTE
    assert tokenizer.chat_template == CHATML_TEMPLATE and tokenizer.eos_token == "<|im_end|>"
    assert training_template(tokenizer).note == NO_TEMPLATE_NOTE  # what the Data tab shows
    notes = []
    trainer = sft_trainer(tiny_model("chatml", tokenizer), tokenizer, [CHAT, TWO_TURNS], tmp_path, notes)
    assert notes == [NO_TEMPLATE_NOTE]
    assert learned_texts(trainer, tokenizer) == ["I am Quill.<|im_end|>", "Hello!<|im_end|>Quill.<|im_end|>"]


def test_loading_a_base_model_folder_gives_it_chatml_and_room_for_its_tokens(tmp_path):
    from transformers import LlamaConfig, LlamaForCausalLM

    from backend.models.loading import load_model, load_tokenizer

    tokenizer = base_tokenizer()
    folder = tmp_path / "base-model"
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                         num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    loaded = load_tokenizer(str(folder))
    assert loaded.chat_template == CHATML_TEMPLATE and len(loaded) == len(tokenizer) + 2
    model = load_model(str(folder))
    assert model.get_input_embeddings().num_embeddings >= len(loaded)
    assert model.generation_config.eos_token_id == loaded.convert_tokens_to_ids("<|im_end|>")
    prompt = loaded.apply_chat_template(CHAT[:1], tokenize=False, add_generation_prompt=True)
    assert prompt == "<|im_start|>user\nWhat is your name?<|im_end|>\n<|im_start|>assistant\n"


def test_the_default_system_prompt_a_template_inserts_is_found_and_shown(embedded_model):
    from backend.models.chat_template import default_system_prompt
    from backend.models.fit import system_note
    from backend.models.loading import load_tokenizer

    tokenizer = load_tokenizer(str(embedded_model))
    assert default_system_prompt(tokenizer) == "You are a helpful AI assistant named SmolLM, trained by Hugging Face"
    assert "“You are a helpful AI assistant named SmolLM, trained by Hugging Face”" in system_note(None)
    plain = types.SimpleNamespace(apply_chat_template=lambda messages, tokenize: "".join(
        f"<|im_start|>{m['role']}\n{m['content']}<|im_end|>\n" for m in messages))
    assert default_system_prompt(plain) is None  # a template that adds no system turn
