"""What every method shares: the model with its adapter, and the Trainer arguments."""
import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path

from backend.config import RunConfig, batch_plan, planned_steps, target_modules
from backend.models.loading import Hardware, detect_hardware, load_model, load_tokenizer


CHECKS_WITH_PATIENCE = 10  # held-back loss checks in a run with early stopping (4 without)
CHECKS_PER_PASS = 2  # when the checks answer the held-back examples (behaviour_check): twice a pass over the data


@dataclass
class Prepared:
    model: object  # base model, or a PeftModel when starting from a finished run's adapter
    tokenizer: object
    peft_config: object  # None when the model already carries a trainable adapter
    hardware: Hardware
    quantization: str


def prepare_model(config: RunConfig, base_adapter: Path | None = None) -> Prepared:
    from peft import LoraConfig, PeftModel

    hardware = detect_hardware()
    quantization = hardware.quantization(config.quantization)
    tokenizer = load_tokenizer(config.model)
    model = load_model(config.model, quantization, hardware)
    if base_adapter is not None:
        model = PeftModel.from_pretrained(model, str(base_adapter), is_trainable=True)
        return Prepared(model, tokenizer, None, hardware, quantization)
    peft_config = LoraConfig(
        r=config.lora_r, lora_alpha=config.lora_alpha, lora_dropout=config.lora_dropout,
        target_modules=target_modules(config), task_type="CAUSAL_LM",
    )
    return Prepared(model, tokenizer, peft_config, hardware, quantization)


def trainer_arguments(config: RunConfig, output_dir: Path, hardware: Hardware, has_eval: bool,
                      train_rows: int, gradient_checkpointing: bool = True, processes: int = 1,
                      behaviour: bool = False) -> dict:
    """Keyword arguments shared by SFTConfig, DPOConfig and KTOConfig. gradient_checkpointing: from the memory plan
    (backend/train/memory_plan.py); TRL's own default is on. processes: all the run's training processes, which share
    each step's examples (config.batch_plan). behaviour: the checks score the held-back answers
    (backend/train/behaviour_check.py), and the best checkpoint is the one whose answers showed the most of it."""
    steps = planned_steps(config, train_rows, processes)
    save_every = config.save_every or max(5, steps // 4)
    plan = batch_plan(config, processes)
    eval_every = max(1, steps // 4)
    stopping = {}
    if has_eval and config.patience:
        # Early stopping checks the held-back loss about ten times, and the best adapter must be on disk to come
        # back to, so a checkpoint is saved at every check (the Trainer keeps the best one and the latest).
        eval_every = save_every = max(1, steps // CHECKS_WITH_PATIENCE)
        stopping = dict(load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False)
        if behaviour:
            from backend.train.behaviour_check import METRIC
            # Answering the held-back examples costs a few seconds a check: CHECKS_PER_PASS, not ten a run; but
            # enough checks in a short run (few steps, or under a pass) for early stopping to be able to fire.
            per_pass = planned_steps(dataclasses.replace(config, epochs=1.0, max_steps=0), train_rows, processes)
            eval_every = save_every = max(1, min(math.ceil(per_pass / CHECKS_PER_PASS),
                                                 steps // (config.patience + 2)))
            stopping.update(metric_for_best_model=METRIC, greater_is_better=True)
    return dict(
        output_dir=str(output_dir),
        per_device_train_batch_size=plan.per_device,
        per_device_eval_batch_size=plan.per_device,
        gradient_accumulation_steps=plan.grad_accum,
        learning_rate=config.learning_rate,
        num_train_epochs=config.epochs,
        max_steps=config.max_steps or -1,
        lr_scheduler_type=config.lr_scheduler,
        warmup_steps=config.warmup_steps,
        max_length=config.max_length,
        logging_steps=1,
        save_strategy="steps",
        save_steps=save_every,
        save_total_limit=2,
        eval_strategy="steps" if has_eval else "no",
        eval_steps=eval_every,
        seed=config.seed,
        data_seed=config.seed,
        report_to="none",
        disable_tqdm=True,
        bf16=hardware.dtype_name == "bfloat16",
        fp16=hardware.dtype_name == "float16",
        use_cpu=hardware.device == "cpu",
        dataloader_num_workers=0,
        remove_unused_columns=True,
        gradient_checkpointing=gradient_checkpointing,
        optim=config.optimizer,
        **(several_processes(config) if processes > 1 else {}),
        **stopping,
    )


def reference_once(args: dict, train_rows: int) -> dict:
    """DPO/KTO settings that compute the reference model's log-probabilities once, before training, when the run
    reads its rows more than once: every later pass then skips the reference forward pass. On a single pass it
    would only move the same work to the start (and delay the first loss point), so it is left off."""
    per_step = args["per_device_train_batch_size"] * args["gradient_accumulation_steps"]
    passes = args["max_steps"] * per_step / max(train_rows, 1) if args["max_steps"] > 0 else args["num_train_epochs"]
    return {"precompute_ref_log_probs": passes > 1}


def several_processes(config: RunConfig) -> dict:
    """Trainer arguments for a run on several processes. Every adapter weight gets a gradient on every step, so DDP
    need not look for unused ones; checkpointing must not be the reentrant kind, which DDP cannot follow; with several
    computers each saves its own checkpoints, so that each can resume from its own disk."""
    return dict(ddp_find_unused_parameters=False, gradient_checkpointing_kwargs={"use_reentrant": False},
                save_on_each_node=config.machines > 1)


def step_order(sampler, args):
    """The Trainer's length-grouped sampler, made to give the same order of examples whatever the number of processes:
    it groups by length within whole updates (per-device batch x processes x accumulation, not one process's share)
    and draws its order from the run's seed, in the same way in every process and every epoch. Left as it is, it
    groups within one process's share and shuffles with torch's global random state, which dropout moves differently
    in each process: from the second epoch on, the processes would each take their batches from a different order."""
    from transformers.trainer_pt_utils import LengthGroupedSampler
    if not isinstance(sampler, LengthGroupedSampler):
        return sampler
    import torch
    update = args.per_device_train_batch_size * args.world_size * args.gradient_accumulation_steps
    generator = torch.Generator().manual_seed(args.data_seed if args.data_seed is not None else args.seed)
    return shortest_first(LengthGroupedSampler)(update, lengths=sampler.lengths, generator=generator)


def shortest_first(grouped_sampler):
    """`grouped_sampler` (the Trainer's LengthGroupedSampler) with the update of the fewest tokens moved to the
    front. The Trainer puts the longest row first, so that running out of memory shows at once; on the CPU that
    update takes three times as long as a short one (11 s against 3.4 s for the quick preset's first step, whose
    rehearsed everyday answers are the long rows), and the first point of the loss curve waits for it. Now the
    first point comes after the quickest update, and the longest comes second: memory still runs out in the first
    seconds if it will. Only whole updates move, so every process still cuts the same order into the same updates."""

    class ShortestFirst(grouped_sampler):
        def __iter__(self):
            order = list(super().__iter__())
            updates = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
            whole = [u for u in range(len(updates)) if len(updates[u]) == self.batch_size]
            if len(whole) > 1:
                shortest = min(whole, key=lambda u: sum(self.lengths[i] for i in updates[u]))
                updates.insert(0, updates.pop(shortest))
            return iter([i for rows in updates for i in rows])

    return ShortestFirst
