"""The estimate's GPU parts (4-bit weights, bf16 QLoRA adapter, 8-bit optimizer, checkpointing) and the choice of
gradient checkpointing the trainer makes from it."""
import json

import pytest

from backend.config import build_config
from backend.models.memory import GB, ModelShape, estimate_memory
from backend.models.loading import Hardware
from backend.train.memory_plan import longest_sequence, plan_checkpointing

GPU = Hardware("cuda", "bfloat16", "4bit")
CPU32 = Hardware("cpu", "float32", "none")
LLAMA_8B = {"model_type": "llama", "hidden_size": 4096, "intermediate_size": 14336, "num_hidden_layers": 32,
            "num_attention_heads": 32, "num_key_value_heads": 8, "vocab_size": 128256, "tie_word_embeddings": False}


@pytest.fixture
def llama_8b(tmp_path):
    folder = tmp_path / "llama-8b"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(LLAMA_8B))
    return str(folder)


def gpu_config(model, **values):
    return build_config({"model": model, "quantization": "4bit", "rehearsal": 0, "max_length": 256, **values})


def test_qlora_on_a_gpu_counts_nf4_weights_and_a_bf16_adapter(llama_8b):
    estimate = estimate_memory(gpu_config(llama_8b), GPU, available=80 * GB, seq_length=256)
    shape = ModelShape.from_config(LLAMA_8B)
    # 7.0 B linear weights at about half a byte, 1.05 B embedding and output weights in bf16.
    assert 5.3 * GB < estimate.weights < 5.9 * GB
    lora = shape.lora_params(16, "attention+mlp")
    assert estimate.adapter == estimate.gradients == 2 * lora  # TRL casts a QLoRA adapter to bf16
    assert estimate.optimizer == 4 * lora  # AdamW's two states in the adapter's dtype
    plain = estimate_memory(gpu_config(llama_8b, quantization="none"), GPU, available=80 * GB, seq_length=256)
    assert plain.adapter == 4 * lora and plain.weights > 2.5 * estimate.weights


def test_paged_8bit_adam_keeps_about_one_byte_per_state(llama_8b):
    adam = estimate_memory(gpu_config(llama_8b), GPU, available=80 * GB, seq_length=256)
    paged = estimate_memory(gpu_config(llama_8b, optimizer="paged_adamw_8bit"), GPU, available=80 * GB, seq_length=256)
    lora = ModelShape.from_config(LLAMA_8B).lora_params(16, "attention+mlp")
    assert 2 * lora < paged.optimizer < 2.1 * lora
    assert paged.optimizer < 0.55 * adam.optimizer
    assert paged.total - paged.optimizer == adam.total - adam.optimizer


def test_checkpointing_keeps_a_fraction_of_the_activations(llama_8b):
    off = estimate_memory(gpu_config(llama_8b, gradient_checkpointing="off"), GPU, available=80 * GB, seq_length=256)
    on = estimate_memory(gpu_config(llama_8b, gradient_checkpointing="on"), GPU, available=80 * GB, seq_length=256)
    assert not off.checkpointing and on.checkpointing
    assert on.activations < off.activations / 5
    assert on.weights == off.weights and on.optimizer == off.optimizer
    assert "gradient checkpointing" in on.message and "gradient checkpointing" not in off.message


def test_auto_checkpointing_only_when_the_run_would_not_fit_without_it(llama_8b):
    config = gpu_config(llama_8b, method="dpo", batch_size=8)
    plain = estimate_memory(config, GPU, available=80 * GB, seq_length=256, checkpointing=False)
    assert plain.verdict == "fits"
    assert not estimate_memory(config, GPU, available=80 * GB, seq_length=256).checkpointing
    small = int(plain.total / 0.95)  # it would fit, but without the margin a run needs
    auto = estimate_memory(config, GPU, available=small, seq_length=256)
    assert auto.checkpointing and auto.verdict == "fits" and auto.total < plain.total


def test_dpo_keeps_activations_for_both_answers_kto_for_one(llama_8b):
    sft, dpo, kto = (estimate_memory(gpu_config(llama_8b, method=m, gradient_checkpointing="off"), GPU,
                                     available=80 * GB, seq_length=256) for m in ("sft", "dpo", "kto"))
    assert kto.activations == sft.activations  # KTO's KL batch runs without gradients
    assert 1.9 * sft.activations < dpo.activations < 2.1 * sft.activations


def test_longest_sequence_counts_prompt_and_each_answer(embedded_model):
    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer()
    short = {"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}],
             "rejected": [{"role": "assistant", "content": "word " * 50}]}
    chat = {"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}
    assert longest_sequence(tokenizer, [chat]) < 40
    assert longest_sequence(tokenizer, [chat, short]) > 50
    assert longest_sequence(tokenizer, []) is None


def test_plan_turns_checkpointing_on_when_memory_is_short(tiny_model, monkeypatch):
    from backend.models import memory
    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer(tiny_model)
    rows = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    config = build_config({"model": tiny_model, "rehearsal": 0})
    monkeypatch.setattr(memory, "free_memory", lambda device: 64 * GB)
    assert plan_checkpointing(config, rows, tokenizer, CPU32) == (False, "")
    need = estimate_memory(config, CPU32, available=64 * GB, seq_length=30, checkpointing=False).total
    monkeypatch.setattr(memory, "free_memory", lambda device: int(need * 1.05))
    on, why = plan_checkpointing(config, rows, tokenizer, CPU32)
    assert on and "Gradient checkpointing is on" in why
    assert plan_checkpointing(build_config({"model": tiny_model, "gradient_checkpointing": "on"}), rows, tokenizer,
                              CPU32) == (True, "")


def test_dpo_on_the_cpu_checkpoints_even_when_it_would_fit(tiny_model, monkeypatch):
    """Recomputing costs DPO no time on the CPU and saves about 40% of its memory (memory.checkpointing_is_free), so
    'auto' turns it on there; SFT keeps its activations, and 'off' is obeyed."""
    from backend.models import memory
    from backend.models.loading import load_tokenizer
    tokenizer = load_tokenizer(tiny_model)
    pairs = [{"prompt": [{"role": "user", "content": "Hi"}], "chosen": [{"role": "assistant", "content": "Hello"}],
              "rejected": [{"role": "assistant", "content": "Go away"}]}]
    monkeypatch.setattr(memory, "free_memory", lambda device: 64 * GB)
    dpo = build_config({"model": tiny_model, "method": "dpo"})
    on, why = plan_checkpointing(dpo, pairs, tokenizer, CPU32)
    assert on and "for DPO on the CPU it is no slower" in why and "a quarter longer" not in why
    assert plan_checkpointing(dpo, pairs, tokenizer, Hardware("cpu", "bfloat16", "none"))[0]
    assert plan_checkpointing(build_config({"model": tiny_model, "method": "dpo", "gradient_checkpointing": "off"}),
                              pairs, tokenizer, CPU32) == (False, "")
    chats = [{"messages": [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}]}]
    assert plan_checkpointing(build_config({"model": tiny_model, "rehearsal": 0}), chats, tokenizer, CPU32) == \
        (False, "")
    gpu = estimate_memory(build_config({"model": tiny_model, "method": "dpo"}), GPU, available=80 * GB, seq_length=30)
    assert not gpu.checkpointing  # on a GPU only when the run would not fit without it


def test_training_with_checkpointing_and_the_8bit_optimizer(tiny_model, chat_file, monkeypatch, tmp_path):
    """Both switches reach the trainer, and training still learns: loss goes down on a tiny model."""
    from backend.models import memory
    from backend.data import load_examples
    from backend.train import run_training
    from tests.conftest import tiny_config

    import backend.train
    monkeypatch.setattr(memory, "free_memory", lambda device: 10 * 1024 ** 2)  # too little: checkpointing goes on
    made, original = {}, backend.train.trainer_arguments
    monkeypatch.setattr(backend.train, "trainer_arguments", lambda *a, **k: made.setdefault("args", original(*a, **k)))
    config = tiny_config(tiny_model, chat_file, max_steps=6, optimizer="paged_adamw_8bit")
    _, rows, _ = load_examples(config.dataset, validation_fraction=0.0)
    losses, log = [], []
    result = run_training(config, tmp_path / "run", rows, [], on_metrics=lambda step, row: losses.append(
        row.get("train_loss")), on_total_steps=lambda total: None, log=log.append)
    assert any("Gradient checkpointing is on" in line for line in log)
    assert made["args"]["gradient_checkpointing"] is True and made["args"]["optim"] == "paged_adamw_8bit"
    assert result["metrics"]["steps"] == 6
    losses = [loss for loss in losses if loss is not None]
    assert losses[-1] < losses[0]
