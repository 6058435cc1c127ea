"""KTO: learn from single answers marked good or bad."""
from datasets import Dataset
from trl import KTOConfig, KTOTrainer

from backend.errors import DataError
from backend.train.common import reference_once


def build_kto_trainer(prepared, args: dict, train_rows, eval_rows, callbacks, beta: float):
    labels = {bool(r["label"]) for r in train_rows}
    if labels != {True, False}:
        missing = "bad (undesirable)" if True in labels else "good (desirable)"
        raise DataError(f"KTO needs answers marked good and answers marked bad; this data has no {missing} answers. "
                        f"Add some, or use SFT for good answers only.")
    config = KTOConfig(**args, beta=beta, **balancing_weights(train_rows), **reference_once(args, len(train_rows)))
    return KTOTrainer(
        model=prepared.model,
        args=config,
        train_dataset=Dataset.from_list(train_rows),
        eval_dataset=Dataset.from_list(eval_rows) if eval_rows else None,
        processing_class=prepared.tokenizer,
        peft_config=prepared.peft_config,
        callbacks=callbacks,
    )


def balancing_weights(rows) -> dict:
    """Weights that make good and bad answers count the same in the loss, whatever their numbers (people tend to
    give many more of one than the other). TRL and the KTO paper ask for desirable x weight : undesirable x weight
    between 1 and 4/3; weighting the rarer side up to equal counts gives 1."""
    good = sum(bool(r["label"]) for r in rows)
    bad = len(rows) - good
    if good < bad:
        return {"desirable_weight": round(bad / good, 3)}
    if bad < good:
        return {"undesirable_weight": round(good / bad, 3)}
    return {}
