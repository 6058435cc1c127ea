"""The adapters' share of a mixed-precision step: no round trip of every activation through float32.

The base model runs in bfloat16 (or float16) and its LoRA adapters are kept in float32, as PEFT keeps them for the
optimizer's sake. Before each adapter, PEFT casts the layer's input to the adapter's float32; the Trainer's autocast
then casts it straight back to bfloat16 for the adapter's matrix product. So every adapted layer copies its whole
input twice in the forward pass and its gradient twice in the backward pass (q, k and v each do it for the same input),
for a product whose numbers are the same either way: a bfloat16 value survives float32 unchanged, and autocast
computes in bfloat16 whatever it is given (with LoRA dropout 0, the default; with dropout on, its mask is applied in
bfloat16 instead of float32, a rounding apart). Under autocast the cast is skipped; outside it (the probe, chat, export:
no autocast) PEFT's cast is what makes the dtypes meet, so it is left on there, and so it is where the trainer
does not autocast although it trains in bf16: DeepSpeed, whose engine handles precision itself (accelerate's
`native_amp` is off there).
"""
from contextlib import contextmanager


def train_with_autocast_inputs(trainer, **train_kwargs):
    """trainer.train(**train_kwargs), its adapters taking their inputs as they come wherever the trainer autocasts."""
    with adapters_take_autocast_inputs(trainer.model, trainer.accelerator.native_amp):
        return trainer.train(**train_kwargs)


@contextmanager
def adapters_take_autocast_inputs(model, autocast: bool):
    """While `model` runs under autocast (`autocast`: whether the code inside autocasts it), its LoRA adapters take
    their inputs in the compute dtype instead of a float32 copy. Without autocast nothing changes. (PEFT's own switch,
    peft.helpers.disable_input_dtype_casting, reads the flag on every tuner layer; some kinds, IA3's, have none.)"""
    layers = [m for m in model.modules() if getattr(m, "cast_input_dtype_enabled", None) is True] if autocast else []
    for layer in layers:
        layer.cast_input_dtype_enabled = False
    try:
        yield
    finally:
        for layer in layers:
            layer.cast_input_dtype_enabled = True


@contextmanager
def adapters_cast_inputs(model):
    """PEFT's cast back on for a while inside training, for code that runs the model without autocast (the
    behaviour check's answers, backend/train/behaviour_check.py): without it a bfloat16 input meets a float32
    adapter."""
    layers = [m for m in model.modules() if getattr(m, "cast_input_dtype_enabled", None) is False]
    for layer in layers:
        layer.cast_input_dtype_enabled = True
    try:
        yield
    finally:
        for layer in layers:
            layer.cast_input_dtype_enabled = False
