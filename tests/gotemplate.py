"""A small evaluator for the part of Go's text/template that our Ollama TEMPLATEs use, so a test can render
a TEMPLATE the way Ollama would and compare it with the Hugging Face chat template's text.
Supported: literal text, {{ .System }}, {{ .Role }}, {{ .Content }}, {{ "literal" }}, {{ if X }}, {{ else }},
{{ end }}, {{ range .Messages }} and {{ if ne .Role "system" }}. Anything else raises, so a TEMPLATE that
uses more than this is noticed rather than mis-rendered. (No whitespace trimming markers: ours use none.)"""
import re

_ACTION = re.compile(r"{{(.*?)}}", re.S)


def _parse(parts, i, stop=()):
    nodes = []
    while i < len(parts):
        kind, value = parts[i]
        if kind == "text":
            nodes.append(("text", value))
            i += 1
            continue
        words = value.split(None, 1)
        if words[0] in stop:
            return nodes, i
        if words[0] == "if":
            body, i = _parse(parts, i + 1, ("else", "end"))
            other = []
            if parts[i][1].split()[0] == "else":
                other, i = _parse(parts, i + 1, ("end",))
            nodes.append(("if", words[1], body, other))
            i += 1
        elif words[0] == "range":
            body, i = _parse(parts, i + 1, ("end",))
            nodes.append(("range", words[1], body))
            i += 1
        else:
            nodes.append(("expr", value))
            i += 1
    return nodes, i


def _value(expr, root, item):
    expr = expr.strip()
    if expr.startswith('"') and expr.endswith('"'):
        return expr[1:-1]
    if expr.startswith("ne "):
        left, right = re.fullmatch(r'ne (\S+) (".*?")', expr).groups()
        return _value(left, root, item) != _value(right, root, item)
    if expr in (".System", ".Messages"):
        return root[expr[1:]]
    if expr in (".Role", ".Content"):
        return item[expr[1:].lower()]
    raise ValueError(f"unsupported template expression: {expr!r}")


def _run(nodes, root, item):
    out = []
    for node in nodes:
        if node[0] == "text":
            out.append(node[1])
        elif node[0] == "expr":
            out.append(str(_value(node[1], root, item)))
        elif node[0] == "if":
            out.append(_run(node[2] if _value(node[1], root, item) else node[3], root, item))
        else:
            for message in _value(node[1], root, item):
                out.append(_run(node[2], root, message))
    return "".join(out)


def render(template: str, system: str, messages: list[dict]) -> str:
    """Render like Ollama: .System is the system messages joined, .Messages all messages."""
    parts, pos = [], 0
    for m in _ACTION.finditer(template):
        parts.append(("text", template[pos:m.start()]))
        parts.append(("action", m.group(1).strip()))
        pos = m.end()
    parts.append(("text", template[pos:]))
    nodes, _ = _parse([p for p in parts if p != ("text", "")], 0)
    return _run(nodes, {"System": system, "Messages": messages}, None)
