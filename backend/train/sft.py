"""Supervised fine-tuning: loss only on the assistant's words."""
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from backend.chat_template import with_generation_markers


def build_sft_trainer(prepared, args: dict, train_rows, eval_rows, callbacks):
    tokenizer = prepared.tokenizer
    marked = with_generation_markers(tokenizer.chat_template)
    if marked:
        # Every assistant turn is learned; system and user turns are context only.
        tokenizer.chat_template = marked
        train, evaluation = train_rows, eval_rows
        extra = {"assistant_only_loss": True}
    else:
        # A template we cannot mark: learn the last answer of each conversation, the rest is context.
        train, evaluation = [as_prompt_completion(r) for r in train_rows], [as_prompt_completion(r) for r in eval_rows]
        extra = {"completion_only_loss": True}
    # Batches of similar lengths: less padding, so more of each step's compute goes to real tokens.
    config = SFTConfig(**args, **extra, packing=False, train_sampling_strategy="group_by_length")
    return SFTTrainer(
        model=prepared.model,
        args=config,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(evaluation) if evaluation else None,
        processing_class=tokenizer,
        peft_config=prepared.peft_config,
        callbacks=callbacks,
    )


def as_prompt_completion(row: dict) -> dict:
    messages = row["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}
