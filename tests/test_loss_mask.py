"""SFT learns only the assistant's words: the marked template renders the same text, and labels cover
only the assistant's answer and its end token."""
from datasets import Dataset
from trl import SFTConfig, SFTTrainer

from backend.models.chat_template import with_generation_markers
from backend.models.loading import load_tokenizer

CONVERSATIONS = [
    [{"role": "user", "content": "What is your name?"}, {"role": "assistant", "content": "I am Quill."}],
    [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"},
     {"role": "assistant", "content": "Hello!"}, {"role": "user", "content": "Name?"},
     {"role": "assistant", "content": "Quill."}],
]


def test_marked_template_renders_exactly_the_original_text():
    tokenizer = load_tokenizer()
    marked = with_generation_markers(tokenizer.chat_template)
    assert marked and "{% generation %}" in marked
    for messages in CONVERSATIONS:
        for add_prompt in (False, True):
            original = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_prompt)
            again = tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=add_prompt,
                                                  chat_template=marked)
            assert again == original


def test_unknown_template_is_not_marked():
    assert with_generation_markers("{{ messages[0]['content'] }}") is None


def test_labels_cover_only_the_assistant_turns(tiny_model, tmp_path):
    from backend.config import build_config
    from backend.train.common import prepare_model, trainer_arguments
    from backend.train.sft import build_sft_trainer

    config = build_config({"model": tiny_model, "max_steps": 1, "batch_size": 2})
    prepared = prepare_model(config)
    args = trainer_arguments(config, tmp_path, prepared.hardware, False, 2)
    trainer = build_sft_trainer(prepared, args, [{"messages": m} for m in CONVERSATIONS], [], [])
    assert isinstance(trainer, SFTTrainer) and trainer.args.assistant_only_loss
    tokenizer = prepared.tokenizer
    learned = []
    for row in trainer.train_dataset:
        learned.append(tokenizer.decode([t for t in row["labels"] if t != -100]))
    assert learned[0] == "I am Quill.<|im_end|>"
    assert learned[1] == "Hello!<|im_end|>Quill.<|im_end|>"
    batch = trainer.data_collator([trainer.train_dataset[0]])
    labelled = batch["labels"][0][batch["labels"][0] != -100]
    assert tokenizer.decode(labelled) == "I am Quill.<|im_end|>"
