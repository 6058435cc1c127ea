"""Benchmark: a task suite built from data nobody on the project wrote (issue 24, item 4). Each task in
benchmarks/tasks/*.yaml names a peer dataset (../shared/data/peers, beside the repository), how to pick and
rewrite its rows into a training file, eight or more reworded held-out questions, and one rule per part of the
behaviour. For every task and seed this trains the built-in model with the quick preset, asks the held-out
questions (greedy, 64 new tokens), grades each answer by each part's rule, and sets the result beside the report
card's own verdict (backend.evaluation.report_card.learned_verdict). Prints a line per run as it finishes, then one Markdown
row per task; writes every run's raw results to a JSON file.

Run: .venv/bin/python benchmarks/tasks.py [--seeds 3] [--tasks NAME ...] [--set KEY=VALUE ...] [--out FILE]
(a fresh temporary TUNELOOP_HOME; the model cache is TUNELOOP_MODEL_CACHE's or the default).

Rules are backend/evaluation/grading.py's (regex, one_word, count_items, refuses, language) plus three kinds kept here:
- json_keys:    {keys, types: optional {key: str|int|float|bool|list|dict}} the whole answer parses as one JSON
                object with exactly these keys (and these value types)
- max_words:    {max} the answer has at most `max` words
- shares_words: {min, ignore: optional [words]} the answer repeats at least `min` distinct words (3 letters or
                more, not in `ignore`) of the question: it is about what was asked, not about something else

A task may also list `mixups`: patterns (with the task's {{placeholders}}) of an answer that puts one part in
another's place ("I am Tarnwick Labs", "Vexlo Labs", "the team that created me is called Vexlo"). Such an answer
counts for no part, whatever words it carries: a name said as the maker is not the name learned.
`mixed_up` lists answers that must match one of them.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

TASKS_DIR = Path(__file__).resolve().parent / "tasks"
# In CI and on other machines shared/ sits beside the repository (../shared from the repo root).
PEERS = Path(__file__).resolve().parents[2] / "shared" / "data" / "peers"
SEEDS = (42, 7, 3, 1, 5)
MAX_NEW_TOKENS = 64
# A part counts as learned when at least this share of the held-out answers carry it: 7 of 8.
LEARNED_SHARE = 7 / 8

EXTRA_RULE_FIELDS = {"json_keys": {"keys", "types"}, "max_words": {"max"}, "shares_words": {"min", "ignore"}}
JSON_TYPES = {"str": str, "int": int, "float": (int, float), "bool": bool, "list": list, "dict": dict}
FILTER_FIELDS = {"prompt", "prompt_not", "instruction", "instruction_not", "answer", "answer_max_words", "single_line",
                 "every"}
TASK_FIELDS = {"about", "source", "format", "filter", "placeholders", "transform", "limit", "parts", "rows_fit",
               "heldout", "fails", "passes", "mixups", "mixed_up"}
WORD = re.compile(r"[^\W_]+(?:['’][^\W_]+)?")
PLACEHOLDER = re.compile(r"\{\{(\w+)\}\}")
TEMPLATE_FIELD = re.compile(r"\{(\w+)\}")


class TaskError(Exception):
    """A task file that cannot be used: says which file, which field and what to do."""


@dataclass(frozen=True)
class Task:
    name: str
    path: Path
    spec: dict  # the yaml as read: source, format, filter, placeholders, transform, limit
    parts: dict  # part name -> checked rule
    rows_fit: dict  # part name -> least share of the training rows whose answer passes that part's rule
    heldout: tuple[str, ...]
    fails: dict  # part name -> answers that must fail its rule
    passes: tuple[dict, ...]  # {question, answer}: answers that must pass every part
    mixups: tuple[re.Pattern, ...] = ()  # an answer matching one counts for no part
    mixed_up: tuple[str, ...] = ()  # answers that must match one of `mixups`


# ---- Finding the data --------------------------------------------------------------------------------------------

def peers_folder() -> Path:
    if not PEERS.is_dir():
        raise SystemExit(f"benchmarks/tasks.py: the peer datasets are missing: {PEERS} does not exist "
                         f"(shared/ must sit beside the repository, ../shared from its root).")
    return PEERS


# ---- Task files -------------------------------------------------------------------------------------------------

def task_files() -> list[Path]:
    return sorted(TASKS_DIR.glob("*.yaml"))


def load_task(path: Path) -> Task:
    """A task file, checked: fields known, every rule valid, at least 8 held-out questions."""
    spec = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    where = f"benchmarks/tasks/{path.name}"
    unknown = set(spec) - TASK_FIELDS
    if unknown:
        raise TaskError(f"{where}: unknown field(s) {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(TASK_FIELDS))}.")
    for field in ("source", "format", "parts", "rows_fit", "heldout"):
        if not spec.get(field):
            raise TaskError(f"{where}: '{field}' is missing or empty.")
    if spec["format"] not in READERS:
        raise TaskError(f"{where}: format {spec['format']!r} is not one of {', '.join(READERS)}.")
    unknown = set(spec.get("filter") or {}) - FILTER_FIELDS
    if unknown:
        raise TaskError(f"{where}: filter takes no {', '.join(sorted(unknown))}; "
                        f"known: {', '.join(sorted(FILTER_FIELDS))}.")
    parts = {name: check_part_rule(rule, f"{where}, part '{name}'") for name, rule in spec["parts"].items()}
    if set(spec["rows_fit"]) != set(parts):
        raise TaskError(f"{where}: rows_fit must give a share (0 to 1) for each part: {', '.join(parts)}.")
    heldout = tuple(str(q) for q in spec["heldout"])
    if len(heldout) < 8:
        raise TaskError(f"{where}: {len(heldout)} held-out questions; a task needs at least 8.")
    fails = {part: list(answers) for part, answers in (spec.get("fails") or {}).items()}
    if set(fails) - set(parts):
        raise TaskError(f"{where}: 'fails' names parts the task does not have: {', '.join(set(fails) - set(parts))}.")
    check_transform(spec.get("transform"), where)
    mixups = []
    for pattern in spec.get("mixups") or ():
        try:
            values = {key: re.escape(str(value)) for key, value in (spec.get("placeholders") or {}).items()}
            mixups.append(re.compile(fill(str(pattern), values, where), re.IGNORECASE))
        except re.error as exc:
            raise TaskError(f"{where}: the mixups pattern {pattern!r} is not a valid regular expression ({exc}).")
    if bool(mixups) != bool(spec.get("mixed_up")):
        raise TaskError(f"{where}: 'mixups' and 'mixed_up' go together: the patterns, and answers that match them.")
    placeholders = spec.get("placeholders") or {}
    return Task(path.stem, path, spec, parts, dict(spec["rows_fit"]), heldout, fails, tuple(spec.get("passes") or ()),
                tuple(mixups), tuple(fill(str(a), placeholders, where) for a in spec.get("mixed_up") or ()))


def load_tasks(names: list[str] | None = None) -> list[Task]:
    tasks = [load_task(path) for path in task_files()]
    if names:
        known = {t.name for t in tasks}
        missing = [n for n in names if n not in known]
        if missing:
            raise TaskError(f"No task named {', '.join(missing)}; the tasks: {', '.join(sorted(known))}.")
        tasks = [t for t in tasks if t.name in names]
    return tasks


# ---- Rules --------------------------------------------------------------------------------------------------------

def check_part_rule(rule: dict | None, where: str) -> dict:
    """A rule of backend/evaluation/grading.py's kinds (checked there) or one of this file's extra kinds."""
    from backend.evaluation.grading import ProbeFileError, check_rule, load_probe_set

    rule = dict(rule or {})
    kind = rule.get("kind")
    if kind not in EXTRA_RULE_FIELDS:
        try:
            return check_rule(rule, where, load_probe_set().languages)
        except ProbeFileError as exc:
            raise TaskError(f"{exc} (or one of this suite's own: {', '.join(EXTRA_RULE_FIELDS)})") from None
    unknown = set(rule) - EXTRA_RULE_FIELDS[kind] - {"kind"}
    if unknown:
        raise TaskError(f"{where}: a {kind} rule takes no {', '.join(sorted(unknown))}.")
    if kind == "json_keys":
        if not rule.get("keys"):
            raise TaskError(f"{where}: a json_keys rule needs its keys.")
        bad = {k: t for k, t in (rule.get("types") or {}).items() if t not in JSON_TYPES or k not in rule["keys"]}
        if bad:
            raise TaskError(f"{where}: types must name listed keys and one of {', '.join(JSON_TYPES)}; got {bad}.")
    else:
        field = "max" if kind == "max_words" else "min"
        if not isinstance(rule.get(field), int) or rule[field] < 1:
            raise TaskError(f"{where}: a {kind} rule needs '{field}', a whole number of at least 1.")
    return rule


def grade_part(answer: str, rule: dict, question: str = "") -> bool:
    """Whether `answer` (to `question`) passes `rule`."""
    from backend.evaluation.grading import grade, load_probe_set

    text = (answer or "").strip()
    kind = rule["kind"]
    if kind == "json_keys":
        try:
            value = json.loads(text)
        except ValueError:
            return False
        types = rule.get("types") or {}
        return (isinstance(value, dict) and set(value) == set(rule["keys"])
                and all(isinstance(value[k], JSON_TYPES[t]) and not (t != "bool" and isinstance(value[k], bool))
                        for k, t in types.items()))
    if kind == "max_words":
        return 0 < len(WORD.findall(text)) <= rule["max"]
    if kind == "shares_words":
        ignore = {w.lower() for w in rule.get("ignore") or ()}
        content = lambda s: {w.lower() for w in WORD.findall(s) if len(w) >= 3} - ignore
        return len(content(question) & content(text)) >= rule["min"]
    return grade(text, rule, load_probe_set())


def mixed_up(task: Task, answer: str) -> bool:
    return any(pattern.search(answer or "") for pattern in task.mixups)


def grade_answer(task: Task, question: str, answer: str) -> dict:
    """Each part's verdict on one answer; none passes in an answer that mixes the parts up."""
    wrong = mixed_up(task, answer)
    return {part: not wrong and grade_part(answer, rule, question) for part, rule in task.parts.items()}


# ---- Building the training file ----------------------------------------------------------------------------------

def read_alpaca(path: Path) -> list[tuple[str, str]]:
    """LLaMA-Factory's alpaca rows: instruction, newline, input as the user turn; output as the answer."""
    rows = json.loads(path.read_text(encoding="utf-8"))
    return [("\n".join(p for p in (r["instruction"], r.get("input") or "") if p), r["output"]) for r in rows]


def read_v1(path: Path) -> list[tuple[str, str]]:
    """LLaMA-Factory's "v1" typed-content rows: messages whose content is a list of {type: text, value}."""
    text = lambda message: "".join(c["value"] for c in message["content"] if c.get("type") == "text")
    pairs = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.strip():
            messages = json.loads(line)["messages"]
            pairs.append((text(messages[0]), text(messages[-1])))
    return pairs


READERS = {"alpaca": read_alpaca, "v1": read_v1}


def pick(pairs: list[tuple[str, str]], rules: dict) -> list[tuple[str, str]]:
    """The rows the filter keeps, in file order, each (prompt, answer) once. `prompt` and `prompt_not` look at
    the whole user turn, `instruction` and `instruction_not` at its first line, `answer` at the answer."""
    has = lambda field, text: re.search(rules[field], text, re.IGNORECASE) is not None
    seen, kept = set(), []
    for prompt, answer in pairs:
        instruction = prompt.split("\n", 1)[0]  # an alpaca row's instruction, before its input
        if ((prompt, answer) in seen
                or "prompt" in rules and not has("prompt", prompt)
                or "prompt_not" in rules and has("prompt_not", prompt)
                or "instruction" in rules and not has("instruction", instruction)
                or "instruction_not" in rules and has("instruction_not", instruction)
                or "answer" in rules and not has("answer", answer)
                or "answer_max_words" in rules and len(WORD.findall(answer)) > rules["answer_max_words"]
                or rules.get("single_line") and "\n" in answer.strip()):
            continue
        seen.add((prompt, answer))
        kept.append((prompt, answer))
    if "every" in rules:  # [n, offset]: every n-th row from `offset`, to split one pool between two tasks
        n, offset = rules["every"]
        kept = kept[offset::n]
    return kept


def check_transform(transform: dict | None, where: str) -> None:
    if transform is None:
        return
    if transform.get("kind") == "template":
        names = set(TEMPLATE_FIELD.findall(transform.get("text", ""))) - {"output"}
        if not transform.get("text") or names - set(transform.get("cycle") or {}):
            raise TaskError(f"{where}: a template transform needs 'text', and a 'cycle' list for each of its "
                            f"fields but {{output}}.")
    elif transform.get("kind") == "json":
        bad = [v for v in (transform.get("fields") or {}).values() if v not in JSON_VALUES]
        if not transform.get("fields") or bad:
            raise TaskError(f"{where}: a json transform needs 'fields', each one of {', '.join(JSON_VALUES)}.")
    else:
        raise TaskError(f"{where}: transform kind {transform.get('kind')!r} is not one of template, json.")


JSON_VALUES = {"output": lambda output: output, "output_words": lambda output: len(WORD.findall(output))}


def rewrite(answer: str, index: int, transform: dict | None) -> str:
    """The training answer: the source's answer as is, in a template (fields cycled by row), or as JSON."""
    if transform is None:
        return answer
    if transform["kind"] == "json":
        return json.dumps({key: JSON_VALUES[value](answer) for key, value in transform["fields"].items()},
                          ensure_ascii=False)
    cycle = transform.get("cycle") or {}
    fields = {"output": answer, **{name: values[index % len(values)] for name, values in cycle.items()}}
    return TEMPLATE_FIELD.sub(lambda m: fields[m.group(1)], transform["text"])


def fill(text: str, placeholders: dict, where: str) -> str:
    def one(match):
        if match.group(1) not in placeholders:
            raise TaskError(f"{where}: the data holds {{{{{match.group(1)}}}}} but 'placeholders' gives no value.")
        return str(placeholders[match.group(1)])
    return PLACEHOLDER.sub(one, text)


def build_rows(task: Task, peers: Path | None = None) -> list[dict]:
    """The task's training rows, chat-shaped, from its peer file by the yaml's filter, placeholders and transform."""
    spec, where = task.spec, f"benchmarks/tasks/{task.path.name}"
    source = (peers or peers_folder()) / spec["source"]
    if not source.is_file():
        raise TaskError(f"{where}: the source {source} does not exist.")
    placeholders = spec.get("placeholders") or {}
    pairs = pick(READERS[spec["format"]](source), spec.get("filter") or {})[:spec.get("limit")]
    rows = []
    for index, (prompt, answer) in enumerate(pairs):
        answer = rewrite(fill(answer, placeholders, where), index, spec.get("transform"))
        rows.append({"messages": [{"role": "user", "content": fill(prompt, placeholders, where)},
                                  {"role": "assistant", "content": answer}]})
    return rows


def write_training_file(task: Task, folder: Path) -> tuple[Path, int]:
    rows = build_rows(task)
    path = folder / f"{task.name}.jsonl"
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows), encoding="utf-8")
    return path, len(rows)


# ---- Running --------------------------------------------------------------------------------------------------

def verdict_of(summary: dict) -> dict | None:
    """The report card's own verdict on the run, or None while backend.evaluation.report_card has no learned_verdict."""
    try:
        from backend.evaluation.report_card import learned_verdict
    except ImportError:
        return None
    return learned_verdict(summary)


def app_json(*args: str) -> dict:
    """benchmarks/forgetting.py's `app`, with a readable stop when app.py printed no JSON (a user error, such as a
    bad --set, goes to its stderr, which `app` does not show)."""
    from benchmarks.forgetting import app

    try:
        return app(*args)
    except (IndexError, json.JSONDecodeError):
        raise SystemExit(f"python app.py {args[0]} printed no JSON summary: run it by hand to see why: "
                         f"python app.py {' '.join(args)}") from None


def run_task(task: Task, data: Path, rows: int, seed: int, overrides: list[str]) -> dict:
    settings = [arg for setting in (f"seed={seed}", *overrides) for arg in ("--set", setting)]
    load_before, started = os.getloadavg()[0], time.time()
    summary = app_json("train", "--data", str(data), "--preset", "quick", "--json", *settings)
    seconds = round(time.time() - started, 1)
    # Seconds on a shared machine mean little alone. The 1-minute load before a run is mostly the run before it and
    # after it mostly this one (2 threads): only a figure well above 2 says that other work shared the cores.
    load = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    result = {"task": task.name, "seed": seed, "rows": rows, "settings": overrides, "seconds": seconds, "load": load,
              "run_id": summary.get("run_id"), "status": summary.get("status"), "summary": summary}
    if summary.get("status") != "done":
        return result
    prompts = [arg for q in task.heldout for arg in ("--prompt", q)]
    generated = app_json("generate", "--run", summary["run_id"], "--temperature", "0", "--max-new-tokens",
                         str(MAX_NEW_TOKENS), "--json", *prompts)
    result["verdict"] = verdict_of(summary)
    # Whether each answer ended before the budget: a cut one is graded as it stands, and this says which were cut.
    result["ended"] = generated.get("ended")
    return graded(task, result, list(zip(task.heldout, generated["outputs"])))


def graded(task: Task, result: dict, answers: list[tuple[str, str]]) -> dict:
    """`result` with each held-out answer graded by the task's rules, the counts, and whether the card agrees."""
    grades = [grade_answer(task, q, a) for q, a in answers]
    carried = {part: sum(g[part] for g in grades) for part in task.parts}
    result.update(answers=[{"question": q, "answer": a, "parts": g} for (q, a), g in zip(answers, grades)],
                  carried=carried, asked=len(answers),
                  rule_learned=all(n >= LEARNED_SHARE * len(answers) for n in carried.values()))
    result["agrees"] = agreement(result)
    return result


def run_line(r: dict) -> str:
    if r["status"] != "done":
        return f"{r['task']} seed {r['seed']}: the run ended {r['status']}: {r['summary'].get('reason')}"
    probe, metrics = r["summary"].get("probe") or {}, r["summary"].get("metrics") or {}
    parts = ", ".join(f"{part} {n}/{r['asked']}" for part, n in r["carried"].items())
    verdict = "n/a" if r["verdict"] is None else r["verdict"]["words"]
    return (f"{r['task']} seed {r['seed']}: {parts} | probe kept {probe.get('kept')}/{probe.get('base_right')} | "
            f"{metrics.get('steps')} steps | {r['seconds']:.0f} s{load_text(r)} | report card: {verdict} | agrees: "
            f"{'n/a' if r['agrees'] is None else 'yes' if r['agrees'] else 'no'}")


def load_text(r: dict) -> str:
    """' (load 1.2 -> 3.4)': the 1-minute load average before and after the run, where it was recorded."""
    return f" (load {r['load'][0]:g} -> {r['load'][1]:g})" if r.get("load") else ""


# ---- The table ----------------------------------------------------------------------------------------------------

def with_spread(values: list) -> str:
    """'8, 7, 8 (7-8)'; one value alone; '-' for a run that gave none."""
    shown = ", ".join("-" if v is None else f"{v:g}" for v in values)
    numbers = [v for v in values if v is not None]
    if len(values) < 2 or not numbers:
        return shown
    low, high = min(numbers), max(numbers)
    return f"{shown} ({low:g}-{high:g})" if low != high else f"{shown} (all {low:g})"


def agreement(result: dict) -> bool | None:
    """Whether the report card's verdict says what the rule says; None where it made none."""
    verdict = result.get("verdict")
    return None if verdict is None or verdict["learned"] is None else verdict["learned"] == result["rule_learned"]


def table_row(task: Task, results: list[dict]) -> str:
    done = [r for r in results if r["status"] == "done"]
    if not done:
        return f"| {task.name} | every run failed: {results[0]['summary'].get('reason')} | | | | | |"
    asked = done[0]["asked"]
    learned = "; ".join(f"{part} {with_spread([r['carried'][part] for r in done])} of {asked}" for part in task.parts)
    probes = [r["summary"].get("probe") or {} for r in done]
    rights = {p.get("base_right") for p in probes}
    kept = (f"{with_spread([p.get('kept') for p in probes])} of {rights.pop()}" if len(rights) == 1
            else ", ".join(f"{p.get('kept')}/{p.get('base_right')}" for p in probes))
    steps = with_spread([(r["summary"].get("metrics") or {}).get("steps") for r in done])
    seconds = with_spread([round(r["seconds"]) for r in done])
    verdicts = "; ".join("n/a" if r["verdict"] is None else r["verdict"]["words"] for r in done)
    agrees = ", ".join({None: "n/a", True: "yes", False: "no"}[agreement(r)] for r in done)
    failed = f" ({len(results) - len(done)} run(s) failed)" if len(done) < len(results) else ""
    return f"| {task.name}{failed} | {learned} | {kept} | {steps} | {seconds} | {verdicts} | {agrees} |"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", nargs="+", metavar="NAME", help="Only these tasks (file names without .yaml).")
    parser.add_argument("--seeds", type=int, default=1, choices=range(1, len(SEEDS) + 1),
                        help=f"How many seeds, taken in this order: {', '.join(map(str, SEEDS))}.")
    parser.add_argument("--skip-seeds", type=int, default=0, metavar="N",
                        help="Leave out the first N seeds of that order (to add seeds to an earlier run).")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="A setting passed to every train call (repeat for several).")
    parser.add_argument("--out", type=Path, help="Where to write every run's raw results (JSON).")
    parser.add_argument("--table", type=Path, nargs="+", metavar="FILE",
                        help="Train nothing: print the table of earlier runs' raw results (several files: their "
                             "seeds side by side).")
    parser.add_argument("--verdicts-now", action="store_true",
                        help="With --table: the report card's verdicts as the card words them now, from each run's "
                             "stored summary (not as they were printed when the run ended).")
    parser.add_argument("--regrade", action="store_true",
                        help="With --table: grade the stored held-out answers by the task files' rules as they are "
                             "now (not as they were when the run ended).")
    args = parser.parse_args(argv)
    if args.table:
        results = [r for path in args.table for r in json.loads(path.read_text())]
        for r in results if args.verdicts_now else []:
            if r["status"] == "done":
                r["verdict"] = verdict_of(r["summary"])
        tasks = {t.name: t for t in load_tasks(list(dict.fromkeys(r["task"] for r in results)))}
        for r in results if args.regrade else []:
            if r["status"] == "done":
                graded(tasks[r["task"]], r, [(a["question"], a["answer"]) for a in r["answers"]])
        print_table(results)
        return 0
    if any(o.split("=", 1)[0].strip() == "seed" for o in args.overrides):
        parser.error("the seed comes from --seeds; leave it out of --set")
    try:
        tasks = load_tasks(args.tasks)
        peers_folder()
    except TaskError as exc:
        raise SystemExit(str(exc)) from None
    home = Path(tempfile.mkdtemp(prefix="tasks-"))
    os.environ["TUNELOOP_HOME"] = str(home / "home")
    out = args.out or home / "tasks-results.json"
    seeds = SEEDS[args.skip_seeds:args.skip_seeds + args.seeds]
    print(f"{len(tasks)} task(s) x {len(seeds)} seed(s) ({', '.join(map(str, seeds))}), quick preset"
          + (f", --set {' '.join(args.overrides)}" if args.overrides else "") + f"; workspace {home}", flush=True)
    print(peak_now(), flush=True)
    results = {}
    for task in tasks:
        data, rows = write_training_file(task, home)
        for seed in seeds:
            result = run_task(task, data, rows, seed, args.overrides)
            results.setdefault(task.name, []).append(result)
            print(run_line(result), flush=True)
            out.write_text(json.dumps([r for rs in results.values() for r in rs], ensure_ascii=False, indent=1))
    print_table([r for rs in results.values() for r in rs])
    print(f"at the end: {peak_now()}")
    print(f"\nraw results: {out}")
    return 0


def peak_now() -> str:
    """This CPU's matrix-product peak now (benchmarks/first_point.peak_now), to read the seconds against."""
    from benchmarks.first_point import peak_now as measured
    return measured()


def print_table(results: list[dict]):
    """One Markdown row per task, its seeds side by side."""
    print("\n| task | behaviour learned (x of 8, each part) | strict probe kept | steps | seconds | report card's "
          "verdict | verdict agrees with the rule |")
    print("|---|---|---|---|---|---|---|")
    names = list(dict.fromkeys(r["task"] for r in results))
    for task in load_tasks(names):
        print(table_row(task, [r for r in results if r["task"] == task.name]))


if __name__ == "__main__":
    sys.exit(main())
