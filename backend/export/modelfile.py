"""An Ollama Modelfile for an exported GGUF: FROM the file, the chat template in Ollama's TEMPLATE syntax
(Go templates), the stop tokens and the run's system prompt.

The Hugging Face chat template (Jinja) is recognised by what it renders, not by its source text: a test
conversation with marker strings is rendered and compared with what each known format would produce, so
rewordings of the same template (SmolLM2's, Qwen2.5's, Llama 3's) are all recognised, and a default system
prompt the template inserts when there is none is found and carried over.
Known formats: ChatML (<|im_start|>role ... <|im_end|>) and Llama 3 (<|start_header_id|>role<|end_header_id|>).
Any other template: the Modelfile is written without TEMPLATE and says why in a comment; Ollama then picks
the closest of its own templates from the chat template stored in the GGUF (it compares the two texts).
"""
import re
from dataclasses import dataclass
from pathlib import Path

_MARK = {"system": "TLSYSTEMMARK", "user": "TLUSERMARK", "assistant": "TLANSWERMARK", "user2": "TLSECONDMARK"}


@dataclass(frozen=True)
class ChatFormat:
    name: str
    turn: str  # one message; {role} and {content} are filled in
    generation: str  # what opens the assistant's answer
    stop: tuple[str, ...]  # Ollama's own stop list for this format

    def render(self, messages, default_system: str | None) -> str:
        text = ""
        if messages[0]["role"] != "system" and default_system is not None:
            text += self.turn.format(role="system", content=default_system)
        for m in messages:
            text += self.turn.format(role=m["role"], content=m["content"])
        return text + self.generation


FORMATS = (
    ChatFormat("chatml", "<|im_start|>{role}\n{content}<|im_end|>\n", "<|im_start|>assistant\n",
               ("<|im_start|>", "<|im_end|>")),
    ChatFormat("llama3", "<|start_header_id|>{role}<|end_header_id|>\n\n{content}<|eot_id|>",
               "<|start_header_id|>assistant<|end_header_id|>\n\n",
               ("<|start_header_id|>", "<|end_header_id|>", "<|eot_id|>")),
)


@dataclass(frozen=True)
class TemplateMatch:
    format: ChatFormat
    prefix: str  # text before the first turn that the tokenizer does not add itself (e.g. a BOS it does not add)
    default_system: str | None  # the system prompt the template inserts when a conversation has none


@dataclass(frozen=True)
class Modelfile:
    text: str
    gguf_name: str
    template: str | None  # "chatml", "llama3", or None when TEMPLATE was left out
    note: str  # why TEMPLATE was left out; empty otherwise

    def commands(self, name: str) -> list[str]:
        return ollama_commands(name)


def ollama_commands(name: str) -> list[str]:
    """The two commands to show: create the Ollama model from the Modelfile's folder, then chat with it."""
    return [f"ollama create {name} -f Modelfile", f"ollama run {name}"]


def ollama_name(text: str) -> str:
    """A model name Ollama accepts, from a run's name."""
    name = re.sub(r"[^a-z0-9._-]+", "-", text.lower()).strip("-._")
    return name or "tuned-model"


def _render(tokenizer, messages) -> str:
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def recognise(tokenizer) -> TemplateMatch | None:
    """Which known format the tokenizer's chat template produces, or None."""
    if not tokenizer.chat_template:
        return None
    conversation = [{"role": "system", "content": _MARK["system"]}, {"role": "user", "content": _MARK["user"]},
                    {"role": "assistant", "content": _MARK["assistant"]}, {"role": "user", "content": _MARK["user2"]}]
    try:
        full = _render(tokenizer, conversation)
        alone = _render(tokenizer, [{"role": "user", "content": _MARK["user"]}])
    except Exception:  # a template that cannot render a plain conversation is simply not one we know
        return None
    from backend.export.gguf import tokenizer_adds_special
    adds_bos = tokenizer_adds_special(tokenizer)[0]
    bos = tokenizer.bos_token or ""
    for fmt in FORMATS:
        body = fmt.render(conversation, None)
        raw_prefix = full[: -len(body)] if full.endswith(body) else None
        if raw_prefix not in ("", bos) or not alone.startswith(raw_prefix):
            continue
        rest = alone[len(raw_prefix):]
        user_only = fmt.render([{"role": "user", "content": _MARK["user"]}], None)
        if rest == user_only:
            default = None
        elif (default := _default_system(fmt, rest, user_only)) is None:
            continue
        prefix = "" if raw_prefix == bos and adds_bos else raw_prefix  # llama.cpp adds that BOS itself
        return TemplateMatch(fmt, prefix, default)
    return None


def _default_system(fmt: ChatFormat, rendered: str, user_only: str) -> str | None:
    """The system text of `rendered` = one system turn followed by `user_only`, or None."""
    head, _, tail = fmt.turn.partition("{content}")
    head = head.format(role="system")
    if not rendered.endswith(user_only):
        return None
    system_turn = rendered[: -len(user_only)]
    if not (system_turn.startswith(head) and system_turn.endswith(tail)) or len(system_turn) < len(head) + len(tail):
        return None
    return system_turn[len(head): len(system_turn) - len(tail)]


def _go_text(text: str) -> str:
    """Literal text inside a Go template: only '{{' needs care."""
    return text.replace("{{", '{{ "{{" }}')


def go_template(match: TemplateMatch) -> str:
    fmt = match.format
    system = fmt.turn.format(role="system", content="{{ .System }}")
    message = fmt.turn.format(role="{{ .Role }}", content="{{ .Content }}")
    text = _go_text(match.prefix) + "{{ if .System }}" + system
    if match.default_system is not None:
        text += "{{ else }}" + _go_text(fmt.turn.format(role="system", content=match.default_system))
    text += '{{ end }}{{ range .Messages }}{{ if ne .Role "system" }}' + message + "{{ end }}{{ end }}"
    return text + fmt.generation


# Ollama's parser knows no escapes: it ends a """ block at the first line break where the text so far, with trailing
# white space trimmed and every character that Go's strconv.IsPrint rejects dropped, ends in three quotes. So
# each line break is made a \n, those characters are dropped here, and a line that ends in quotes keeps two at
# most, counting quotes apart only where an ASCII character stands between them (Go's Unicode tables may be
# older than Python's). Quotes inside a line cannot end the block and stay. One pass of replace('"""', '"')
# was not enough: five quotes became three.
_LINE_END_QUOTES = re.compile(r'"(?:[^\x20-\x7e]*")*(?=[^\x21-\x7e]*$)')


def _two_quotes_at_most(run: re.Match) -> str:
    parts = run.group().split('"')
    return '"'.join(parts[:3]) + "".join(parts[3:])


def block_text(text: str) -> str:
    """`text` as it can stand between triple quotes in a Modelfile: nothing in it ends the block early."""
    text = "".join(c for c in text.replace("\r\n", "\n").replace("\r", "\n") if c in "\n\t" or c.isprintable())
    lines = text.split("\n")
    return "\n".join([_LINE_END_QUOTES.sub(_two_quotes_at_most, line, count=1) for line in lines[:-1]] + lines[-1:])


def _quoted(text: str) -> str:
    return '"""' + block_text(text) + '"""'


def build_modelfile(gguf_name: str, tokenizer, system_prompt: str | None = None) -> Modelfile:
    """The Modelfile text for `gguf_name` (a file next to the Modelfile) and the model's tokenizer."""
    lines = [f"# Written by Tuneloop. Create the model with: {ollama_commands('NAME')[0]}", f"FROM ./{gguf_name}", ""]
    match = recognise(tokenizer)
    note = ""
    if match is None:
        note = ("The model's chat template is neither ChatML nor Llama 3, so no TEMPLATE is written: Ollama picks "
                "the closest of its own templates from the chat template stored in the GGUF.")
    elif block_text(go_template(match)) != go_template(match):
        note, match = ('The chat template contains """ or control characters, which a Modelfile cannot quote; '
                       "no TEMPLATE is written."), None
    if match is None:
        lines += ["# " + note, ""]
        stops = []
    else:
        lines += ["TEMPLATE " + _quoted(go_template(match)), ""]
        stops = list(match.format.stop)
    eos = tokenizer.eos_token
    if eos and eos not in stops:
        stops.append(eos)
    lines += [f'PARAMETER stop "{s}"' for s in stops]
    if system_prompt:
        lines += ["", "SYSTEM " + _quoted(system_prompt)]
    return Modelfile("\n".join(lines) + "\n", gguf_name, match.format.name if match else None, note)


def write_modelfile(folder, gguf_name: str, tokenizer, system_prompt: str | None = None) -> Modelfile:
    modelfile = build_modelfile(gguf_name, tokenizer, system_prompt)
    (Path(folder) / "Modelfile").write_text(modelfile.text)
    return modelfile
