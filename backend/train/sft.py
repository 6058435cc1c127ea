"""Supervised fine-tuning: loss only on the assistant's words."""
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from backend.models.chat_template import training_template
from backend.train.common import step_order


def build_sft_trainer(prepared, args: dict, train_rows, eval_rows, callbacks, log=print):
    tokenizer = prepared.tokenizer
    choice = training_template(tokenizer)
    log(choice.note)
    if choice.loss == "assistant":
        # Every assistant turn is learned; system and user turns are context only. A template TRL knows is swapped
        # for TRL's training version inside SFTTrainer; ours (ChatML, Llama 3.x, added ChatML) is set here.
        if choice.template:
            tokenizer.chat_template = choice.template
        train, evaluation = train_rows, eval_rows
        extra = {"assistant_only_loss": True}
    else:
        # A template nobody can mark: learn the last answer of each conversation, the rest is context.
        train, evaluation = [as_prompt_completion(r) for r in train_rows], [as_prompt_completion(r) for r in eval_rows]
        extra = {"completion_only_loss": True}
    # Batches of similar lengths: less padding, so more of each step's compute goes to real tokens.
    config = SFTConfig(**args, **extra, packing=False, train_sampling_strategy="group_by_length")
    return StepOrderSFTTrainer(
        model=prepared.model,
        args=config,
        train_dataset=Dataset.from_list(train),
        eval_dataset=Dataset.from_list(evaluation) if evaluation else None,
        processing_class=tokenizer,
        peft_config=prepared.peft_config,
        callbacks=callbacks,
    )


class StepOrderSFTTrainer(SFTTrainer):
    """SFTTrainer whose length-grouped order is the same however many processes share a step (common.step_order)."""

    def _get_train_sampler(self, train_dataset=None):
        return step_order(super()._get_train_sampler(train_dataset), self.args)


def as_prompt_completion(row: dict) -> dict:
    messages = row["messages"]
    return {"prompt": messages[:-1], "completion": messages[-1:]}
