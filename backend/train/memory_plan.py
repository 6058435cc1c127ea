"""Choices made from the memory estimate just before the model is loaded: gradient checkpointing.

Checkpointing keeps only each layer's input during the forward pass and works the rest out again during the
backward pass: much less memory for about a quarter more time. TRL turns it on for every run by default; here it is
on only when asked ('on') or, with 'auto', when the estimate says the run would not fit without it, or for DPO on the
CPU, where it costs no time (memory.checkpointing_is_free).
"""
from backend.config import RunConfig
from backend.errors import TuneloopError

LONGEST_SAMPLE = 20  # rows, the longest by characters, whose tokens are counted to find the longest sequence


def plan_checkpointing(config: RunConfig, rows: list, tokenizer, hardware) -> tuple[bool, str]:
    """(checkpointing on?, a line for the log saying why, or '')."""
    if config.gradient_checkpointing != "auto":
        return config.gradient_checkpointing == "on", ""
    from backend.models.memory import estimate_memory
    try:
        estimate = estimate_memory(config, hardware, seq_length=longest_sequence(tokenizer, rows))
    except TuneloopError as exc:
        return True, f"Gradient checkpointing is on, to be safe: the memory use could not be estimated ({exc})."
    if estimate.checkpointing:
        return True, f"Gradient checkpointing is on. {estimate.message}"
    return False, ""


def longest_sequence(tokenizer, rows: list) -> int | None:
    """Tokens in the longest sequence the model will see (prompt and answer), from the longest rows by characters."""
    if not rows:
        return None
    longest = sorted(rows, key=lambda row: len(str(row)), reverse=True)[:LONGEST_SAMPLE]
    return max(len(tokenizer.apply_chat_template(conversation, tokenize=True, return_dict=False))
               for row in longest for conversation in conversations(row))


def conversations(row: dict) -> list[list[dict]]:
    """The message lists one row is trained as: SFT's messages, or the prompt with each answer (DPO, KTO)."""
    if "messages" in row:
        return [row["messages"]]
    answers = [row[k] for k in ("chosen", "rejected", "completion") if k in row] or [[]]
    return [row.get("prompt", []) + answer for answer in answers]
