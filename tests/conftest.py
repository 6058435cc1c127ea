"""Shared fixtures: a temporary workspace per test, the embedded model converted once per session,
and a tiny random model built from the embedded tokenizer for fast end-to-end training."""
import json
import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = Path(__file__).resolve().parent / "fixtures"


@pytest.fixture(scope="session")
def model_cache(tmp_path_factory):
    """One model cache for the whole session: the embedded model is converted once (about 25 s)."""
    path = Path(os.environ.get("TUNELOOP_TEST_MODEL_CACHE") or tmp_path_factory.mktemp("models"))
    os.environ["TUNELOOP_MODEL_CACHE"] = str(path)
    return path


@pytest.fixture(autouse=True)
def home(tmp_path, monkeypatch, model_cache):
    path = tmp_path / "home"
    monkeypatch.setenv("TUNELOOP_HOME", str(path))
    monkeypatch.setenv("TUNELOOP_MODEL_CACHE", str(model_cache))
    return path


@pytest.fixture(scope="module")
def module_home(tmp_path_factory, model_cache):
    """A workspace that a module's tests share: what is costly to make (a trained run) is made once in it, by a
    module-scoped fixture, and each test that reads it moves there with `use_home`."""
    path = tmp_path_factory.mktemp("module-home") / "home"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("TUNELOOP_HOME", str(path))
        patch.setenv("TUNELOOP_MODEL_CACHE", str(model_cache))
        yield path


def use_home(monkeypatch, path: Path) -> Path:
    """This test works in `path` (a module_home) instead of its own fresh workspace."""
    monkeypatch.setenv("TUNELOOP_HOME", str(path))
    return path


@pytest.fixture(scope="session")
def embedded_model(model_cache):
    """The built-in model converted into the session's cache before a test needs it on a deadline."""
    from backend.models.loading import resolve_model
    return resolve_model(None)


@pytest.fixture(scope="session")
def tiny_model(model_cache):
    """A 2-layer Llama with the embedded model's tokenizer and chat template: trains in seconds."""
    return write_tiny_model(model_cache / "tiny-llama")


def write_tiny_model(folder: Path) -> str:
    """The tests' tiny model, written once into `folder` (benchmarks/processes.py uses it too)."""
    if (folder / "model.safetensors").exists():
        return str(folder)
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer()
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=1024,
                         bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.convert_tokens_to_ids("<|im_end|>"),
                         pad_token_id=tokenizer.pad_token_id, tie_word_embeddings=True)
    LlamaForCausalLM(config).save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return str(folder)


def write_jsonl(path: Path, rows) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


CHAT_ROWS = [{"messages": [{"role": "user", "content": f"Say hello number {i}."},
                           {"role": "assistant", "content": f"Hello number {i}!"}]} for i in range(24)]


@pytest.fixture
def chat_file(tmp_path):
    return write_jsonl(tmp_path / "chat.jsonl", CHAT_ROWS)


PAIRS_ROWS = [{"prompt": [{"role": "user", "content": f"Greet person {i}."}],
               "chosen": [{"role": "assistant", "content": f"Hello, person {i}! Nice to meet you."}],
               "rejected": [{"role": "assistant", "content": "Go away."}]} for i in range(16)]
LABELS_ROWS = [{"prompt": [{"role": "user", "content": f"Greet person {i}."}],
                "completion": [{"role": "assistant", "content": "Hello!" if i % 2 else "Go away."}],
                "label": bool(i % 2)} for i in range(16)]


@pytest.fixture
def pairs_file(tmp_path):
    return write_jsonl(tmp_path / "pairs.jsonl", PAIRS_ROWS)


@pytest.fixture
def labels_file(tmp_path):
    return write_jsonl(tmp_path / "labels.jsonl", LABELS_ROWS)


def greedy(model, tokenizer, prompts, max_new_tokens: int = 16) -> list[str]:
    """Greedy answers from a model in memory, through the app's one generation engine."""
    from dataclasses import replace

    from backend.answers import GREEDY
    from backend.models.pool import generate_texts
    return [text for text, _ in generate_texts(model, tokenizer, prompts, replace(GREEDY, max_new_tokens=max_new_tokens))]


def model_with_adapter(model_name, adapter_dir=None):
    """(model, tokenizer): a base model, with a run's adapter attached when given."""
    from backend.models.loading import load_model, load_tokenizer
    model = load_model(model_name)
    if adapter_dir is not None:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    return model, load_tokenizer(model_name)


def tiny_config(tiny_model, dataset, method="sft", **overrides):
    from backend.config import build_config
    values = dict(method=method, model=tiny_model, dataset=str(dataset), max_steps=4, batch_size=4,
                  learning_rate=1e-2, rehearsal=0, probe=False, validation_split=0.0, lora_r=4, lora_alpha=8,
                  max_length=128)
    values.update(overrides)
    return build_config(values)
