"""KTO: learn from single answers marked good or bad."""
from datasets import Dataset
from trl import KTOConfig, KTOTrainer

from backend.errors import DataError


def build_kto_trainer(prepared, args: dict, train_rows, eval_rows, callbacks, beta: float):
    labels = {bool(r["label"]) for r in train_rows}
    if labels != {True, False}:
        missing = "bad (undesirable)" if True in labels else "good (desirable)"
        raise DataError(f"KTO needs answers marked good and answers marked bad; this data has no {missing} answers. "
                        f"Add some, or use SFT for good answers only.")
    config = KTOConfig(**args, beta=beta)
    return KTOTrainer(
        model=prepared.model,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=prepared.tokenizer,
        peft_config=prepared.peft_config,
        callbacks=callbacks,
    )
