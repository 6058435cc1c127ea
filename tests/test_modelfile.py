"""The Ollama Modelfile: FROM the GGUF, TEMPLATE translated from the Hugging Face chat template (rendered
here as Ollama would and compared with the original), stop tokens, SYSTEM."""
import copy

import pytest

from backend.export.modelfile import build_modelfile, ollama_commands, ollama_name, recognise, write_modelfile
from tests.gotemplate import render

# Meta-Llama-3-8B-Instruct's template, as published in its tokenizer_config.json.
LLAMA3_TEMPLATE = (
    "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + "
    "message['role'] + '<|end_header_id|>\n\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}"
    "{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|start_header_id|>assistant<|end_header_id|>\n\n' }}{% endif %}"
)
MISTRAL_TEMPLATE = (
    "{{ bos_token }}{% for message in messages %}{% if message['role'] == 'user' %}{{ '[INST] ' + message['content'] "
    "+ ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ message['content'] + eos_token}}{% endif %}{% endfor %}"
)

CONVERSATIONS = [
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "Answer in one word."}, {"role": "user", "content": "Capital of Italy?"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke."}],
]


def _template_of(text: str) -> str:
    start = text.index('TEMPLATE """') + len('TEMPLATE """')
    return text[start:text.index('"""', start)]


def _as_ollama_renders(template: str, conversation, modelfile_system=None) -> str:
    system = "\n\n".join(m["content"] for m in conversation if m["role"] == "system") or (modelfile_system or "")
    return render(template, system, conversation)


def _llama3_tokenizer():
    from backend.models.loading import load_tokenizer
    tokenizer = copy.deepcopy(load_tokenizer())
    tokenizer.add_special_tokens({"bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>",
                                  "additional_special_tokens": ["<|start_header_id|>", "<|end_header_id|>"]})
    tokenizer.chat_template = LLAMA3_TEMPLATE
    return tokenizer


def test_chatml_modelfile_from_the_builtin_tokenizer(tmp_path):
    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer()
    modelfile = write_modelfile(tmp_path, "my-run-q8_0.gguf", tokenizer, system_prompt="You are Quill.")
    text = (tmp_path / "Modelfile").read_text()
    assert text == modelfile.text and modelfile.template == "chatml" and modelfile.note == ""
    assert "\nFROM ./my-run-q8_0.gguf\n" in text
    assert 'PARAMETER stop "<|im_start|>"' in text and 'PARAMETER stop "<|im_end|>"' in text
    assert text.count("PARAMETER stop") == 2  # the eos is <|im_end|>, not repeated
    assert 'SYSTEM """You are Quill."""' in text
    template = _template_of(text)
    assert "You are a helpful AI assistant named SmolLM" in template  # the template's own default system turn
    for conversation in CONVERSATIONS:
        assert _as_ollama_renders(template, conversation) == tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True)


def test_the_run_system_prompt_replaces_the_default_one(tmp_path):
    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer()
    template = _template_of(build_modelfile("m.gguf", tokenizer, system_prompt="You are Quill.").text)
    question = [{"role": "user", "content": "Who are you?"}]
    rendered = _as_ollama_renders(template, question, modelfile_system="You are Quill.")
    assert rendered == tokenizer.apply_chat_template([{"role": "system", "content": "You are Quill."}] + question,
                                                     tokenize=False, add_generation_prompt=True)
    assert "SmolLM" not in rendered


def test_llama3_modelfile(tmp_path):
    tokenizer = _llama3_tokenizer()
    modelfile = build_modelfile("run-f16.gguf", tokenizer)
    assert modelfile.template == "llama3"
    text = modelfile.text
    assert "\nFROM ./run-f16.gguf\n" in text and "SYSTEM" not in text
    for stop in ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>"):
        assert f'PARAMETER stop "{stop}"' in text
    template = _template_of(text)
    assert template.startswith("<|begin_of_text|>")  # this tokenizer does not add the BOS itself
    for conversation in CONVERSATIONS:
        assert _as_ollama_renders(template, conversation) == tokenizer.apply_chat_template(
            conversation, tokenize=False, add_generation_prompt=True)


def test_llama3_bos_is_left_to_llama_cpp_when_the_tokenizer_adds_it(monkeypatch):
    tokenizer = _llama3_tokenizer()
    import backend.export.gguf as gguf_export
    monkeypatch.setattr(gguf_export, "tokenizer_adds_special", lambda tok: (True, False))
    match = recognise(tokenizer)
    assert match.format.name == "llama3" and match.prefix == "" and match.default_system is None


def test_unknown_template_gets_no_template_and_says_why():
    from backend.models.loading import load_tokenizer
    tokenizer = copy.deepcopy(load_tokenizer())
    tokenizer.chat_template = MISTRAL_TEMPLATE
    modelfile = build_modelfile("m-q4_0.gguf", tokenizer)
    assert modelfile.template is None and "neither ChatML nor Llama 3" in modelfile.note
    assert "TEMPLATE" not in modelfile.text.replace("no TEMPLATE", "")
    assert "# The model's chat template is neither ChatML nor Llama 3" in modelfile.text
    assert 'PARAMETER stop "<|im_end|>"' in modelfile.text  # the eos still stops generation
    assert "\nFROM ./m-q4_0.gguf\n" in modelfile.text


@pytest.mark.parametrize("name, expected", [("My Run #3", "my-run-3"), ("quill", "quill"), ("***", "tuned-model")])
def test_ollama_names_and_commands(name, expected):
    assert ollama_name(name) == expected
    assert ollama_commands(expected) == [f"ollama create {expected} -f Modelfile", f"ollama run {expected}"]
