"""Chat templates fit for training: loss only on what the assistant says, for every model family we can.

TRL's `assistant_only_loss` needs `{% generation %}` markers around the assistant's text. Shipped templates rarely
have them. In TRL 1.16, `get_training_chat_template(tokenizer)` compares the tokenizer's template, byte for byte,
with the originals it knows (Qwen2.5, Qwen3, Llama 3, Gemma, Gemma 3, Phi-3, Phi-3.5 and more) and returns its
marked training version (None when the template is already fit; ValueError for any template it does not know).
SFTTrainer makes the same call itself when the template has no markers. So, in order:
  1. no template (a base model): ChatML, added when the tokenizer is loaded (`ensure_chat_template`), and said so;
  2. already marked, or known to TRL: TRL's own training template (SFTTrainer swaps it in; the tokenizer and what is
     exported keep the original);
  3. ChatML, and the Llama 3.1 / 3.2 templates (TRL knows their originals but ships no training version): marked
     here, rendering exactly the original text (tests/test_chat_templates.py checks it);
  4. anything else: prompt/completion, so the last answer of each conversation is learned, and the reason is given.
"""
import re
from dataclasses import dataclass

CHATML_TURN = "{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}"
CHATML_TURN_MARKED = (
    "{% if message['role'] == 'assistant' %}"
    "{{ '<|im_start|>assistant\\n' }}{% generation %}{{ message['content'] + '<|im_end|>' }}{% endgeneration %}{{ '\\n' }}"
    "{% else %}" + CHATML_TURN + "{% endif %}"
)
# Llama 3.1 and 3.2 render every plain turn with this one expression (trl/chat_templates/llama3_1.jinja, llama3_2.jinja).
LLAMA3_TURN = "{{- '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' }}"
LLAMA3_TURN_MARKED = (
    "{%- if message['role'] == 'assistant' %}"
    "{{- '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}"
    "{%- generation %}{{- message['content'] | trim + '<|eot_id|>' }}{%- endgeneration %}"
    "{%- else %}" + LLAMA3_TURN + "{%- endif %}"
)
HAND_MARKED = {"chatml": (CHATML_TURN, CHATML_TURN_MARKED), "llama3": (LLAMA3_TURN, LLAMA3_TURN_MARKED)}

# Given to a model that has no chat template: ChatML, with no default system turn.
CHATML_TEMPLATE = (
    "{% for message in messages %}" + CHATML_TURN + "{% endfor %}"
    "{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}"
)
CHATML_TOKENS = ("<|im_start|>", "<|im_end|>")
NO_TEMPLATE_NOTE = "This model has no chat template; Tuneloop uses ChatML."
NATIVE_NOTE = "The model's chat template already marks the assistant's words: each answer is learned."
LAST_ANSWER_NOTE = ("The model's chat template is not one TRL or Tuneloop can mark for training, so only the last "
                    "answer of each conversation is learned (earlier turns are context).")
HAND_MARKED_FAMILIES = {"chatml": "chatml", "llama3_1": "llama3", "llama3_2": "llama3"}  # catalogue family -> ours


@dataclass(frozen=True)
class TrainingTemplate:
    loss: str  # "assistant": every assistant turn is learned; "completion": the last answer of each conversation
    template: str | None  # set it as the tokenizer's chat template before training; None: leave the tokenizer as is
    family: str  # "trl:qwen2_5", "native", "chatml", "llama3", "added-chatml", "unknown"
    note: str  # one sentence for the run log and the Data tab


def with_generation_markers(template: str | None) -> str | None:
    """The same template with assistant turns marked, for the ChatML and Llama 3.1/3.2 families; else None."""
    return _hand_mark(template)[0] if template else None


def training_template(tokenizer) -> TrainingTemplate:
    """How SFT will mask this tokenizer's conversations (see the module docstring for the order)."""
    template = _text(tokenizer.chat_template)
    if not template or template == CHATML_TEMPLATE:
        return TrainingTemplate("assistant", with_generation_markers(CHATML_TEMPLATE), "added-chatml", NO_TEMPLATE_NOTE)
    known = _trl_training_template(tokenizer)
    if known == "":
        return TrainingTemplate("assistant", None, "native", NATIVE_NOTE)
    if known:
        family = trl_family(template) or "known"
        return TrainingTemplate("assistant", None, f"trl:{family}", _trl_note(family))
    marked, family = _hand_mark(template)
    if marked:
        return TrainingTemplate("assistant", marked, family, _marked_note(family))
    return TrainingTemplate("completion", None, "unknown", LAST_ANSWER_NOTE)


def family_name(family: str) -> str:
    """The name a catalogue family (catalogue.yaml's `template`) is shown by: the one its training note gives, so the
    table and the note under a picked model agree (they said "llama3_1" and "llama3")."""
    return HAND_MARKED_FAMILIES.get(family, family)


def expected_note(family: str) -> str:
    """The note training_template() will give a model of this catalogue family (catalogue.yaml's `template`), told
    before the model is downloaded: from the training templates TRL ships (trl/chat_templates/<family>_training.jinja),
    found without importing TRL (10 s and more) or loading a tokenizer."""
    import importlib.util
    from pathlib import Path

    if family in HAND_MARKED_FAMILIES:
        return _marked_note(HAND_MARKED_FAMILIES[family])
    trl = importlib.util.find_spec("trl")
    shipped = Path(next(iter(trl.submodule_search_locations))) / "chat_templates" if trl else None
    if shipped and (shipped / f"{family}_training.jinja").is_file():
        return _trl_note(family)
    return LAST_ANSWER_NOTE


def _trl_note(family: str) -> str:
    return f"Chat template: {family} (TRL's training version marks the assistant's words, so each answer is learned)."


def _marked_note(family: str) -> str:
    return f"Chat template: {family} (assistant turns marked for training, same text)."


def trl_family(template: str) -> str | None:
    """The name TRL gives a template it knows (e.g. 'qwen2_5'), or None."""
    from trl import chat_template_utils as known

    for name in dir(known):
        if name.endswith("_chat_template") and not name.endswith("_training_chat_template"):
            if getattr(known, name) == template:
                return name[: -len("_chat_template")]
    return None


def ensure_chat_template(tokenizer) -> str | None:
    """Give a tokenizer without a chat template (a base model) ChatML, as TRL's clone_chat_template would: the
    ChatML tokens are added as special tokens when missing and <|im_end|> ends a turn. Returns the note, or None.
    The model's embeddings must then grow to the tokenizer (`fit_embeddings`)."""
    if _text(tokenizer.chat_template):
        return None
    from transformers import AddedToken

    vocab = tokenizer.get_vocab()
    missing = [AddedToken(t, special=True, normalized=False) for t in CHATML_TOKENS if t not in vocab]
    if missing:
        tokenizer.add_tokens(missing, special_tokens=True)
    tokenizer.eos_token = CHATML_TOKENS[1]
    tokenizer.chat_template = CHATML_TEMPLATE
    return NO_TEMPLATE_NOTE


def fit_embeddings(model, tokenizer):
    """After ensure_chat_template added tokens: grow the model's embeddings and make <|im_end|> its end token."""
    if len(tokenizer) > model.get_input_embeddings().num_embeddings:
        model.resize_token_embeddings(len(tokenizer))
    if tokenizer.chat_template in (CHATML_TEMPLATE, with_generation_markers(CHATML_TEMPLATE)):  # marked by SFT
        model.config.eos_token_id = tokenizer.eos_token_id
        if getattr(model, "generation_config", None) is not None:
            model.generation_config.eos_token_id = tokenizer.eos_token_id


def _trl_training_template(tokenizer) -> str | None:
    """TRL's training template: '' when the template is already fit, None when TRL does not know it."""
    from trl.chat_template_utils import get_training_chat_template

    try:
        patched = get_training_chat_template(tokenizer)
    except Exception:  # ValueError for an unknown template; a template may also fail to render TRL's probes
        return None
    return "" if patched is None else patched


def _hand_mark(template: str) -> tuple[str | None, str]:
    if re.search(r"\{%-?\s*generation\s*-?%\}", template):
        return template, "native"
    # The newline inside the template's string literals is stored either escaped or as a real newline,
    # depending on how the tokenizer was saved: accept both.
    for family, (turn, marked) in HAND_MARKED.items():
        for newline in ("\\n", "\n"):
            if turn.replace("\\n", newline) in template:
                return template.replace(turn.replace("\\n", newline), marked.replace("\\n", newline)), family
    return None, "unknown"


def _text(template) -> str | None:
    if isinstance(template, dict):  # a template shipped as named variants
        return template.get("default")
    return template


def default_system_prompt(tokenizer) -> str | None:
    """The system prompt the chat template inserts into a conversation that has none, or None. SmolLM2's says "You are
    a helpful AI assistant named SmolLM, trained by Hugging Face": examples without a system turn are trained under
    it, and Chat and the export answer under it. Kept, not removed (docs/benchmarks.md, "The hidden system prompt"):
    the same identity task learned no better under a neutral one, and the base model then answered 11 fewer of the
    probe's 40 everyday questions right."""
    user = [{"role": "user", "content": "TLUSERMARK"}]
    try:
        alone = tokenizer.apply_chat_template(user, tokenize=False)
        marked = tokenizer.apply_chat_template([{"role": "system", "content": "TLSYSTEMMARK"}] + user, tokenize=False)
    except Exception:  # a template that cannot render a plain conversation says nothing about a system prompt
        return None
    before, found, after = marked.partition("TLSYSTEMMARK")
    if not found or alone == after or not (alone.startswith(before) and alone.endswith(after)):
        return None
    return alone[len(before):len(alone) - len(after)] or None
