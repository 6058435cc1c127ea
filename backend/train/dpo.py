"""DPO: prefer the chosen answer over the rejected one, relative to where the model started."""
from datasets import Dataset
from trl import DPOConfig, DPOTrainer

from backend.train.common import reference_once


def build_dpo_trainer(prepared, args: dict, train_rows, eval_rows, callbacks, beta: float):
    config = DPOConfig(**args, beta=beta, **reference_once(args, len(train_rows)))
    return DPOTrainer(
        model=prepared.model,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=prepared.tokenizer,
        peft_config=prepared.peft_config,
        callbacks=callbacks,
    )
