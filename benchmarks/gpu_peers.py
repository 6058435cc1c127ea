"""Plain TRL on the same work as Tuneloop's rows of the GPU check (issue 27): the baseline of its 'x TRL' column.

TRL's SFTTrainer with its own defaults (loss on every token, no length grouping, gradient checkpointing on, its default
optimizer and learning rate), given only what makes the work the same: the model (the same 4-bit base model the
size's other rows train, loaded once by from_pretrained with the same NF4 settings), the rows, max_length, the batch,
the steps, LoRA r16 / alpha 32 / dropout 0 on the same layers, and the precision the device trains in. No code of
Tuneloop's training runs: its patch of TRL's LM head (backend/train/lm_head.py, which only changes anything on the
CPU) is undone for the run. Variant 'trl-nogc' is the same with checkpointing off, as Tuneloop's memory plan leaves
it where memory allows.
"""
import contextlib
import time

PEERS = {"trl": {}, "trl-nogc": {"gradient_checkpointing": False}}

try:  # TRL's own choice of which positions its fused LM head scores, as it was before Tuneloop's trainer changed it
    import trl.trainer.utils as _trl_utils
    _TRL_USE_TRITON = getattr(_trl_utils, "_use_triton", None)
except ImportError:  # the preflight says what is missing
    _TRL_USE_TRITON = None


@contextlib.contextmanager
def trl_as_shipped():
    import trl.trainer.utils as trl_utils
    patched = getattr(trl_utils, "_use_triton", None)
    if _TRL_USE_TRITON is not None:
        trl_utils._use_triton = _TRL_USE_TRITON
    try:
        yield
    finally:
        if patched is not None:
            trl_utils._use_triton = patched


def train_plain_trl(variant: str, model, tokenizer, rows: list[dict], *, batch: int, steps: int, max_length: int,
                    hardware, output_dir, seconds: float = float("inf")) -> dict:
    """Train `steps` steps, or fewer when `seconds` run out (the check's time guard); returns
    {'times': {step: time logged}, 'tokens': {step: TRL's num_tokens}, 'steps': steps done, 'stopped': bool}."""
    from datasets import Dataset
    from peft import LoraConfig
    from transformers import TrainerCallback
    from trl import SFTConfig, SFTTrainer

    from backend.config import TARGET_MODULES

    times, tokens = {}, {}
    deadline = time.perf_counter() + seconds

    class Clock(TrainerCallback):
        def on_log(self, args, state, control, logs=None, **kwargs):
            times.setdefault(state.global_step, time.perf_counter())
            if logs and "num_tokens" in logs:
                tokens.setdefault(state.global_step, float(logs["num_tokens"]))

        def on_step_end(self, args, state, control, **kwargs):
            if time.perf_counter() > deadline:
                control.should_training_stop = True

    config = SFTConfig(output_dir=str(output_dir), per_device_train_batch_size=batch, max_steps=steps,
                       max_length=max_length, logging_steps=1, save_strategy="no", report_to="none", disable_tqdm=True,
                       bf16=hardware.dtype_name == "bfloat16", fp16=hardware.dtype_name == "float16",
                       use_cpu=hardware.device == "cpu", **PEERS[variant])
    lora = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=list(TARGET_MODULES["attention+mlp"]),
                      task_type="CAUSAL_LM")
    with trl_as_shipped():
        trainer = SFTTrainer(model=model, args=config, train_dataset=Dataset.from_list(rows),
                             processing_class=tokenizer, peft_config=lora, callbacks=[Clock()])
        trainer.train()
    done = trainer.state.global_step
    del trainer
    return {"times": times, "tokens": tokens, "steps": done, "stopped": done < steps}
