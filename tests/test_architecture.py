"""The layers hold: backend/ never imports Gradio or ui/, ui/ never imports the command line or runs SQL, and no
module imports itself through others (imports inside functions count: a late import is still a dependency)."""
import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("backend", "ui")
SQL = re.compile(r"\b(select\s+.+\s+from|insert\s+into|update\s+\w+\s+set|delete\s+from)\b|\.execute\(|\.query\(",
                 re.IGNORECASE)


def modules() -> dict[str, Path]:
    found = {}
    for package in PACKAGES:
        for path in (ROOT / package).rglob("*.py"):
            parts = path.relative_to(ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            found[name] = path
    return found


def imports(path: Path, name: str, known: set[str]) -> set[str]:
    """The project modules a module imports, anywhere in it."""
    package = name if path.name == "__init__.py" else name.rsplit(".", 1)[0]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                base = ".".join(package.split(".")[: len(package.split(".")) - node.level + 1] + ([base] if base else []))
            # `from package import module` depends on the module; `from module import name` on the module
            targets = [f"{base}.{alias.name}" if f"{base}.{alias.name}" in known else base for alias in node.names]
        else:
            continue
        for target in targets:
            while target and target not in known:
                target = target.rpartition(".")[0]
            if target and target != name:
                out.add(target)
    return out


def graph() -> dict[str, set[str]]:
    found = modules()
    return {name: imports(path, name, set(found)) for name, path in found.items()}


def cycles(edges: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected groups of more than one module (Tarjan)."""
    index, low, stack, on_stack, groups, counter = {}, {}, [], set(), [], [0]

    def visit(node):
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in edges.get(node, ()):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            group = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                group.append(top)
                if top == node:
                    break
            if len(group) > 1:
                groups.append(sorted(group))

    for node in sorted(edges):
        if node not in index:
            visit(node)
    return groups


def package_imports(name: str) -> set[str]:
    """Every module name (project or not) imported by a project module."""
    path = modules()[name]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            out.add(node.module)
    return out


def test_no_import_cycles():
    assert cycles(graph()) == []


def test_the_cycle_finder_finds_one():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_backend_runs_headless():
    for name in modules():
        if name.startswith("backend"):
            used = package_imports(name)
            assert not any(m == "gradio" or m.startswith(("gradio.", "ui")) for m in used), name


def test_ui_calls_the_stores_not_the_command_line_or_sql():
    edges = graph()
    for name, path in modules().items():
        if not name.startswith("ui"):
            continue
        assert not any(m.startswith("backend.cli") for m in edges[name]), f"{name} imports the command line"
        for number, line in enumerate(path.read_text().splitlines(), 1):
            assert not SQL.search(line), f"{path.name}:{number} runs SQL: {line.strip()}"


def test_label_tab_does_not_reach_into_the_chat_tab():
    assert "ui.chat_tab" not in graph()["ui.label_tab"]


def test_one_generation_engine_calls_generate():
    """Answers come from backend/models/pool.py alone (generate_ids): no other module calls a model's generate."""
    calls = [path.relative_to(ROOT).as_posix() for path in modules().values()
             for node in ast.walk(ast.parse(path.read_text()))
             if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == "generate"]
    assert calls == ["backend/models/pool.py"]


# The layers of backend/, from the edges down: a module imports its own layer and those below it, never one above.
# (The pages and the command line call into any of them.)
LAYERS = ["backend.cli", "backend.jobs", ("backend.train", "backend.export"), "backend.evaluation", "backend.labels",
          "backend.data", "backend.models", "backend"]


def layer_of(name: str) -> int:
    """The index in LAYERS of the most specific package that holds `name` (the top-level modules: the core)."""
    best, depth = None, -1
    for index, layer in enumerate(LAYERS):
        for package in (layer if isinstance(layer, tuple) else (layer,)):
            if (name == package or name.startswith(package + ".")) and package.count(".") > depth:
                best, depth = index, package.count(".")
    return best


def upward_imports(edges: dict[str, set[str]]) -> list[tuple[str, str]]:
    return sorted((name, target) for name, targets in edges.items() if name.startswith("backend")
                  for target in targets if layer_of(target) < layer_of(name))


def test_backend_imports_only_down_its_layers():
    assert upward_imports(graph()) == []


def test_an_upward_import_is_found():
    edges = {"backend.models.memory": {"backend.jobs.runner"}, "backend.jobs.runner": {"backend.models.memory"},
             "backend.config": {"backend.evaluation.probe"}, "backend.train.sft": {"backend.export.merged"}}
    assert upward_imports(edges) == [("backend.config", "backend.evaluation.probe"),
                                     ("backend.models.memory", "backend.jobs.runner")]
