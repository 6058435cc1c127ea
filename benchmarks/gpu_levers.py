"""Speed levers for the GPU check (issue 27), each switched on for one row of benchmarks/gpu.py's table.

A lever changes how Tuneloop's own SFT trainer runs (backend/train/sft.py), for that run only, without changing the
product: the trainer's config and class are swapped inside backend.train.sft while the run lasts, and the base model's
attention is set back afterwards. A lever that has no CPU path is switched off on the CPU, and its row says why.

    pf          padding-free batches: the rows of a batch end to end in one sequence, position ids starting again at
                each row, no padding; transformers keeps the rows apart with a block-diagonal mask built from the
                position ids (SDPA: a dense mask, so attention still costs the whole packed length squared)
    pf-flex     the same with FlexAttention: the mask as a BlockMask, whose kernel skips the blocks between rows
                (Triton; compiled on first use). Seen here on the CPU: packed rows' logits within 2.4e-7 of each row
                alone on the tests' tiny model (0.76 where rows see each other), after a 36 s compile
    liger       Liger's Triton kernels (RMSNorm, RoPE, SwiGLU) through TRL's use_liger_kernel; TRL 1.16 keeps its own
                fused LM head, so Liger's fused linear cross-entropy is left off
    pf-liger    pf and liger together
    gc-offload  gradient checkpointing whose saved layer inputs wait in pinned host memory
                (transformers' activation_checkpointing_kwargs offload), to compare with the gc row
"""
import contextlib

LEVERS = {
    "pf": dict(padding_free=True),
    "pf-flex": dict(padding_free=True, attention="flex_attention"),
    "liger": dict(liger=True),
    "pf-liger": dict(padding_free=True, liger=True),
    "gc-offload": dict(offload=True),
}
SETTINGS = {"gc-offload": {"gradient_checkpointing": "on"}}  # Tuneloop settings a lever's row needs
PATCHED = ("forward", "extra_repr", "_get_name")  # what Liger binds on a module instance


def liger_missing() -> str | None:
    """Why Liger's kernels cannot be used here, or None when they can."""
    try:
        import liger_kernel.transformers  # noqa: F401
    except Exception as exc:  # ImportError, or Triton failing to load
        return f"liger_kernel does not import ({type(exc).__name__}: {str(exc)[:120]})"
    return None


def unavailable(name: str, cuda: bool) -> str | None:
    """Why the lever `name` is switched off on this machine, or None when it runs."""
    lever = LEVERS[name]
    if not cuda:
        if lever.get("attention") == "flex_attention":
            return "off on the CPU: FlexAttention compiles its kernel there (36 s for a 2-layer model), GPU only"
        if lever.get("liger"):
            return "off on the CPU: Liger's kernels are Triton, GPU only"
        if lever.get("offload"):
            return "off on the CPU: the activations already live in host memory, nothing to offload"
    if lever.get("liger"):
        return liger_missing()
    return None


def padding_free_collator(tokenizer):
    """TRL's collator in its padding-free mode, passed as our own collator: TRL's own padding_free switch refuses a
    max_length without packing (it would no longer cut rows to it). It lays the rows end to end, restarts the position
    ids at each row and masks the label of each row's first token, so no row learns to predict the next row's start."""
    from trl.trainer.sft_trainer import DataCollatorForLanguageModeling
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return DataCollatorForLanguageModeling(pad_token_id=pad, padding_free=True)


@contextlib.contextmanager
def levers_on(name: str, model=None):
    """While the block runs, Tuneloop's SFT trainer runs with the lever `name` (none for '' or an unknown name).
    `model`: the shared base model, whose attention implementation a lever may change; put back afterwards."""
    import backend.train.sft as sft
    lever = LEVERS.get(name, {})
    config_class, trainer_class = sft.SFTConfig, sft.StepOrderSFTTrainer
    extras = {}
    if lever.get("liger"):
        extras["use_liger_kernel"] = True
    if lever.get("offload"):
        extras["gradient_checkpointing_kwargs"] = {"use_reentrant": False, "offload": True}

    def config_with_lever(**kwargs):
        return config_class(**{**kwargs, **extras})

    class TrainerWithLever(trainer_class):
        def __init__(self, *args, **kwargs):
            if lever.get("padding_free"):
                kwargs["data_collator"] = padding_free_collator(kwargs["processing_class"])
            super().__init__(*args, **kwargs)

    attention = getattr(getattr(model, "config", None), "_attn_implementation", None)
    sft.SFTConfig, sft.StepOrderSFTTrainer = config_with_lever, TrainerWithLever
    try:
        with patched_in_place(model) if lever.get("liger") and model is not None else contextlib.nullcontext():
            if lever.get("attention") and model is not None:
                model.set_attn_implementation(lever["attention"])
            yield
    finally:
        sft.SFTConfig, sft.StepOrderSFTTrainer = config_class, trainer_class
        if model is not None and attention and model.config._attn_implementation != attention:
            model.set_attn_implementation(attention)


@contextlib.contextmanager
def patched_in_place(model):
    """Undo, afterwards, what Liger patches in place: each module's own forward (RMSNorm, SwiGLU MLP) and the functions
    of the model's modeling module (its rotary embedding), which every later model of that kind would use too.
    The shared base model then trains the next rows as loaded."""
    import sys
    modeling = sys.modules[type(model).__module__]
    functions = dict(vars(modeling))
    own = {module: {k: module.__dict__[k] for k in PATCHED if k in module.__dict__}
           for module in model.modules()}
    try:
        yield
    finally:
        for name, value in list(vars(modeling).items()):
            if functions.get(name, value) is not value:
                setattr(modeling, name, functions[name])
        for module, saved in own.items():
            for key in PATCHED:
                if key in saved:
                    module.__dict__[key] = saved[key]
                else:
                    module.__dict__.pop(key, None)


def rows_kept_apart(model, token_rows: list[list[int]], restart: bool = True) -> float:
    """Largest difference between the logits of rows laid end to end (position ids restarting at each row, as the
    padding-free collator makes them) and those of each row alone: about 0 when no row sees another. restart=False
    numbers the positions straight through, so that the rows do see each other: what a leak looks like on this model.
    No cache, as in training (TRL's compute_loss sets use_cache=False): with a cache transformers does not look for
    packed rows, and the rows would attend to each other."""
    import torch
    device = next(model.parameters()).device
    ids = torch.tensor([[t for row in token_rows for t in row]], device=device)
    positions = [p for row in token_rows for p in range(len(row))] if restart else list(range(ids.shape[1]))
    worst, start = 0.0, 0
    with torch.no_grad():
        together = model(input_ids=ids, position_ids=torch.tensor([positions], device=device),
                         use_cache=False).logits[0].float()
        for index, row in enumerate(token_rows):
            alone = model(input_ids=torch.tensor([row], device=device), use_cache=False).logits[0].float()
            if index or restart:  # the first row sees nothing before it either way
                worst = max(worst, (together[start:start + len(row)] - alone).abs().max().item())
            start += len(row)
    return worst
