"""Adapters under autocast take their inputs as they come (backend/train/adapter_casts.py): the same loss and the
same gradients as with PEFT's float32 copy, and PEFT's cast back in place afterwards, where nothing else makes dtypes
meet."""
import pytest
import torch

from backend.train.adapter_casts import adapters_take_autocast_inputs, train_with_autocast_inputs


@pytest.fixture
def bf16_model_with_float32_adapters(tiny_model):
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16)
    model = get_peft_model(model, LoraConfig(r=4, lora_alpha=8, target_modules="all-linear", init_lora_weights=False))
    assert {p.dtype for p in model.parameters() if p.requires_grad} == {torch.float32}  # PEFT's default
    return model


def loss_and_gradients(model, ids):
    """Loss, gradients, and how many tensors were copied to float32 on the way."""
    to_float32 = []
    original = torch.Tensor.to

    def counting(tensor, *args, **kwargs):
        to_float32.append(kwargs.get("dtype", args[0] if args else None) == torch.float32)
        return original(tensor, *args, **kwargs)

    model.zero_grad()
    torch.Tensor.to = counting
    try:
        with torch.autocast("cpu", dtype=torch.bfloat16):
            loss = model(input_ids=ids, labels=ids).loss
        loss.backward()
    finally:
        torch.Tensor.to = original
    return loss.item(), {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}, sum(to_float32)


def test_the_same_numbers_without_the_float32_round_trip(bf16_model_with_float32_adapters):
    model = bf16_model_with_float32_adapters
    adapted = [m for m in model.modules() if hasattr(m, "lora_A")]
    ids = torch.randint(0, 1000, (2, 24), generator=torch.Generator().manual_seed(1))
    loss, grads, copies = loss_and_gradients(model, ids)
    with adapters_take_autocast_inputs(model, True):
        lean_loss, lean_grads, lean_copies = loss_and_gradients(model, ids)
    assert copies - lean_copies == len(adapted) == 14  # one input copy per adapted layer (2 layers x 7) saved
    assert lean_loss == loss
    assert grads.keys() == lean_grads.keys()
    assert all(torch.equal(grads[n], lean_grads[n]) for n in grads)


def test_outside_autocast_peft_casts_as_before(bf16_model_with_float32_adapters):
    model = bf16_model_with_float32_adapters
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    with adapters_take_autocast_inputs(model, False):  # a float32 run, or DeepSpeed's bf16: no autocast
        assert all(m.cast_input_dtype_enabled for m in layers)
    with adapters_take_autocast_inputs(model, True):
        assert not any(m.cast_input_dtype_enabled for m in layers)
    assert layers and all(m.cast_input_dtype_enabled for m in layers)
    with torch.no_grad():  # generation and the probe run without autocast: PEFT's cast makes the dtypes meet
        assert model(input_ids=torch.tensor([[1, 2, 3]])).logits.shape[-1] == model.config.vocab_size


def test_a_failed_step_still_puts_the_cast_back(bf16_model_with_float32_adapters):
    model = bf16_model_with_float32_adapters
    layers = [m for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")]
    with pytest.raises(RuntimeError, match="out of memory"):
        with adapters_take_autocast_inputs(model, True):
            raise RuntimeError("out of memory")
    assert all(m.cast_input_dtype_enabled for m in layers)


def test_a_bf16_trainer_on_the_cpu_trains_without_the_round_trip_and_gives_the_cast_back(tiny_model, tmp_path):
    """The wiring: the Trainer autocasts a bf16 run on the CPU (accelerate's native_amp), so during its steps the
    adapters take bf16 inputs; after train() PEFT's cast is back for the probe and chat."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import AutoModelForCausalLM, TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from backend.models.loading import load_tokenizer

    seen = []

    class Flags(TrainerCallback):
        def on_step_end(self, args, state, control, model=None, **kwargs):
            seen.append({m.cast_input_dtype_enabled for m in model.modules() if hasattr(m, "cast_input_dtype_enabled")})

    rows = [{"messages": [{"role": "user", "content": f"Say {i}."}, {"role": "assistant", "content": f"{i}."}]}
            for i in range(4)]
    trainer = SFTTrainer(
        model=AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.bfloat16),
        args=SFTConfig(output_dir=str(tmp_path), max_steps=2, per_device_train_batch_size=2, bf16=True, use_cpu=True,
                       report_to="none", save_strategy="no", disable_tqdm=True),
        train_dataset=Dataset.from_list(rows), processing_class=load_tokenizer(tiny_model),
        peft_config=LoraConfig(r=4, lora_alpha=8, target_modules="all-linear"), callbacks=[Flags()])
    assert trainer.accelerator.native_amp
    train_with_autocast_inputs(trainer)
    assert seen == [{False}, {False}]
    assert all(m.cast_input_dtype_enabled for m in trainer.model.modules() if hasattr(m, "cast_input_dtype_enabled"))


def test_run_training_in_bf16_trains_without_the_round_trip(tiny_model, chat_file, tmp_path, monkeypatch):
    """Through the app's own training code, on hardware that trains in bf16: every adapter call made while training
    finds PEFT's cast off."""
    import json

    import backend.models.loading
    import backend.train.common
    from backend.models.loading import Hardware
    from backend.train import run_training
    from peft.tuners.tuners_utils import BaseTunerLayer
    from tests.conftest import tiny_config

    bf16 = Hardware("cpu", "bfloat16", "none")
    monkeypatch.setattr(backend.models.loading, "detect_hardware", lambda: bf16)
    monkeypatch.setattr(backend.train.common, "detect_hardware", lambda: bf16)
    calls = []
    original = BaseTunerLayer._cast_input_dtype

    def recording(self, x, dtype):
        if x is not None and self.training:
            calls.append(self.cast_input_dtype_enabled)
        return original(self, x, dtype)

    monkeypatch.setattr(BaseTunerLayer, "_cast_input_dtype", recording)
    rows = [json.loads(line) for line in chat_file.read_text().splitlines() if line.strip()]
    run_training(tiny_config(tiny_model, chat_file, max_steps=1), tmp_path / "run", rows, [],
                 on_metrics=lambda *a: None, on_total_steps=lambda *a: None, log=lambda *a: None)
    assert calls and not any(calls)
