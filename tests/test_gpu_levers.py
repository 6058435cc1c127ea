"""The GPU check's speed levers (benchmarks/gpu_levers.py) on their CPU paths: padding-free batches train on the same
loss as padded ones and never let one row see another; the levers with no CPU path say so; the trainer is left as
it was. Behaviour only, on the tests' tiny model."""
import pytest

ROWS = [{"messages": [{"role": "user", "content": question}, {"role": "assistant", "content": answer}]}
        for question, answer in [("Hi", "Hello!"), ("What is 2 + 2?", "It is 4, as everyone knows by now."),
                                 ("Name a colour.", "Blue.")]]


@pytest.fixture
def padding_free_trainer(tiny_model, tmp_path):
    """Tuneloop's own SFT trainer, built with the padding-free lever on, in float32 (both batch layouts then add up
    the same numbers to within rounding)."""
    import torch

    from backend.config import build_config
    from backend.train.common import prepare_model, trainer_arguments
    from backend.train.sft import build_sft_trainer
    from benchmarks.gpu_levers import levers_on

    config = build_config({"model": tiny_model, "max_steps": 1, "batch_size": 3})
    prepared = prepare_model(config)
    prepared.model.to(torch.float32)
    args = trainer_arguments(config, tmp_path, prepared.hardware, False, len(ROWS), gradient_checkpointing=False)
    args.update(bf16=False, fp16=False)
    with levers_on("pf", prepared.model):
        trainer = build_sft_trainer(prepared, args, ROWS, [], [], log=lambda line: None)
    return trainer


def _examples(trainer):
    return [{k: trainer.train_dataset[i][k] for k in ("input_ids", "labels")} for i in range(len(ROWS))]


def test_padding_free_batches_train_on_the_same_loss_and_gradients_as_padded_ones(padding_free_trainer):
    import torch
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling

    trainer = padding_free_trainer
    examples = _examples(trainer)
    assert len({len(e["input_ids"]) for e in examples}) == 3  # rows of different lengths: padding to remove
    packed = trainer.data_collator(examples)
    padded = DataCollatorForLanguageModeling(pad_token_id=trainer.processing_class.pad_token_id)(examples)
    assert packed["input_ids"].shape == (1, sum(len(e["input_ids"]) for e in examples))
    assert "attention_mask" not in packed and padded["attention_mask"].eq(0).any()

    model = trainer.model.train()
    results = []
    for batch in (padded, packed):
        model.zero_grad()
        loss = trainer.compute_loss(model, dict(batch))
        loss.backward()
        grads = {n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None}
        results.append((loss.detach(), grads))
    (loss_padded, grads_padded), (loss_packed, grads_packed) = results
    assert torch.allclose(loss_padded, loss_packed, rtol=1e-5, atol=1e-6)
    assert grads_padded and grads_padded.keys() == grads_packed.keys()
    for name in grads_padded:
        assert torch.allclose(grads_padded[name], grads_packed[name], rtol=1e-4, atol=1e-6), name


def test_packed_rows_never_attend_to_each_other(padding_free_trainer):
    """Each row's logits, packed end to end with the others, equal its logits alone; the same check fails where the
    rows do see each other (positions numbered straight through), so it can tell."""
    from benchmarks.gpu_levers import rows_kept_apart

    trainer = padding_free_trainer
    model = trainer.model.eval()
    token_rows = [e["input_ids"] for e in _examples(trainer)]
    assert rows_kept_apart(model, token_rows) < 1e-4
    assert rows_kept_apart(model, token_rows, restart=False) > 1e-2


def test_the_padding_free_lever_labels_no_row_start_and_puts_the_trainer_back(padding_free_trainer):
    import backend.train.sft as sft
    from trl import SFTConfig

    trainer = padding_free_trainer
    batch = trainer.data_collator(_examples(trainer))
    starts = batch["position_ids"][0] == 0
    # No row learns to predict the next row's first token.
    assert starts.sum() == len(ROWS) and (batch["labels"][0][starts] == -100).all()
    learned = trainer.processing_class.decode(batch["labels"][0][batch["labels"][0] != -100])
    assert learned == "Hello!<|im_end|>It is 4, as everyone knows by now.<|im_end|>Blue.<|im_end|>"
    assert sft.SFTConfig is SFTConfig and sft.StepOrderSFTTrainer.__name__ == "StepOrderSFTTrainer"


def test_levers_without_a_cpu_path_are_switched_off_on_the_cpu_with_a_reason():
    from benchmarks.gpu_levers import LEVERS, unavailable

    assert unavailable("pf", cuda=False) is None
    for name in ("pf-flex", "liger", "pf-liger", "gc-offload"):
        assert unavailable(name, cuda=False).startswith("off on the CPU"), name
    assert set(LEVERS) == {"pf", "pf-flex", "liger", "pf-liger", "gc-offload"}


def test_what_liger_patches_in_place_is_undone_after_its_row(tiny_model):
    """Liger binds new forwards on the shared base model's modules and swaps functions and classes in the model's
    modeling module; after the row both are as loaded, so the next rows (and sizes) train without it. Liger itself
    is GPU only: its patching is played here by hand."""
    import sys

    import torch
    from transformers import AutoModelForCausalLM

    from benchmarks.gpu_levers import patched_in_place

    model = AutoModelForCausalLM.from_pretrained(tiny_model, dtype=torch.float32)
    modeling = sys.modules[type(model).__module__]
    rope, norm_class, norm = modeling.apply_rotary_pos_emb, modeling.LlamaRMSNorm, model.model.norm
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        before = model(input_ids=ids).logits
    with patched_in_place(model):
        modeling.apply_rotary_pos_emb = lambda q, k, cos, sin, *a, **kw: (q, k)
        modeling.LlamaRMSNorm = torch.nn.Identity
        norm.__dict__["forward"] = lambda hidden: hidden * 0
        norm.__dict__["_get_name"] = lambda: "LigerRMSNorm"
        with torch.no_grad():
            assert not torch.allclose(model(input_ids=ids).logits, before)
    assert modeling.apply_rotary_pos_emb is rope and modeling.LlamaRMSNorm is norm_class
    assert "forward" not in norm.__dict__ and norm._get_name() == "LlamaRMSNorm"
    with torch.no_grad():
        assert torch.equal(model(input_ids=ids).logits, before)
