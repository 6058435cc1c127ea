"""Chat templates fit for training: loss only on what the assistant says.

TRL's `assistant_only_loss` needs `{% generation %}` markers around assistant text, which most shipped
templates (the embedded SmolLM2's included) lack. For ChatML templates we add them without changing the
rendered text; for other templates the SFT trainer falls back to prompt/completion (loss on the last answer).
"""

CHATML_TURN = "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
CHATML_TURN_MARKED = (
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}" + CHATML_TURN + "{% endif %}"
)


def with_generation_markers(template: str | None) -> str | None:
    """The same template with assistant turns marked for training, or None when we cannot mark it."""
    if not template:
        return None
    if "{% generation %}" in template:
        return template
    # The newline inside the template's string literals is stored either escaped or as a real newline,
    # depending on how the tokenizer was saved: accept both.
    for newline in ("\\n", "\n"):
        turn = CHATML_TURN.replace("\\n", newline)
        if turn in template:
            return template.replace(turn, CHATML_TURN_MARKED.replace("\\n", newline))
    return None
