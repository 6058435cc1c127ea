"""Benchmark: the report card's check "asked in other words" (backend/evaluation/reworded.py) on stored runs of the
task suite (benchmarks/tasks.py), against the suite's own rule. For each finished run whose adapter is still in a
workspace, the tuned model is asked the check's questions as the check asks them after training (greedy, one batch;
the built-in model is loaded once and each run's adapter put on it), the answers are graded by the card's rule, and
the card's verdict with the check is set beside its verdict without it and beside the suite's rule on its own
held-out questions (graded by the task files as they are now). A measure must fail when the thing fails: the runs
the rule says did not learn are the test.

Command: python benchmarks/reworded.py --table RESULTS.json ... --homes '/tmp/tasks-*/home' [--out FILE]
(--homes: the workspaces benchmarks/tasks.py names as it starts). A run listed twice is checked once.
Graded again without asking: python benchmarks/reworded.py --table OUT.json --regrade"""
from __future__ import annotations

import argparse
import glob
import json
import os
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from backend.evaluation.behaviour import parts_from_record  # noqa: E402
from backend.evaluation.diagnosis import not_in_other_words  # noqa: E402
from backend.evaluation.heldout import heldout_cases  # noqa: E402
from backend.evaluation.report_card import learned_verdict  # noqa: E402
from backend.evaluation.reworded import plan, reworded_result  # noqa: E402
from backend.presets import config_from_preset, parse_changes  # noqa: E402
from benchmarks.tasks import build_rows, graded, load_tasks  # noqa: E402


def adapters(patterns: list[str]) -> dict[str, str]:
    """run id -> its adapter folder, in the workspaces given."""
    return {Path(found).parent.name: found for pattern in patterns
            for found in glob.glob(os.path.join(pattern, "runs", "*", "adapter"))}


class Asker:
    """The built-in model loaded once; each run's adapter put on it in turn, asked as the check asks after training
    (backend/evaluation/reworded.reworded_check: greedy, one batch)."""

    def __init__(self):
        from backend.models.loading import load_model, load_tokenizer
        self.base, self.tokenizer = load_model(None), load_tokenizer(None)

    def check(self, adapter_dir: str, parts, prompts, references) -> dict | None:
        from peft import PeftModel

        from backend.evaluation.reworded import reworded_check
        model = PeftModel.from_pretrained(self.base, adapter_dir)
        try:
            return reworded_check(model, self.tokenizer, parts, prompts, references)
        finally:
            self.base = model.unload()  # the LoRA layers taken out again: the base model as loaded


def recheck(result: dict, task, adapter_dir: str | None, asker: Asker | None) -> dict | None:
    """The run's summary with the check's result and the card's verdict now; None where the check does not apply.
    Without an asker, the answers stored by an earlier recheck are graded again by the rules as they are now."""
    summary = result["summary"]
    behaviour = (summary.get("heldout") or {}).get("behaviour")
    if not behaviour:
        return None
    cases = heldout_cases(build_rows(task))
    prompts, references = [c["prompt"] for c in cases], [c["reference"] for c in cases]
    parts = parts_from_record(behaviour["signature"], references)
    planned = plan(parts, prompts, references)  # the task's rows with its held-back ones: a run's split differs a little
    if not planned:
        return None
    if asker is not None:
        behaviour["reworded"] = asker.check(adapter_dir, parts, prompts, references)
    else:
        stored = {a["question"]: a["answer"] for a in (behaviour.get("reworded") or {}).get("answers", [])}
        if not all(q in stored for q, _ in planned):
            return None
        behaviour["reworded"] = reworded_result(planned, [stored[q] for q, _ in planned])
    outcome = summary.get("outcome") or {}
    # the run's own settings where its workspace is at hand: the preset's rate for such examples changed on 2026-12-07,
    # and a result records only the settings set on the command line
    saved = Path(adapter_dir).parent / "config.yaml" if adapter_dir else None
    config = yaml.safe_load(saved.read_text()) if saved and saved.exists() else \
        config_from_preset("quick", "sft", parse_changes(result.get("settings") or [])).to_dict()
    finding = not_in_other_words(summary["heldout"], outcome.get("behaviour_checks"), outcome.get("early_stopping"),
                                 config)
    summary["diagnosis"] = [f for f in summary.get("diagnosis") or [] if f["code"] != "not_in_other_words"] + \
        ([finding] if finding else [])
    return learned_verdict(summary)


def without_check(summary: dict) -> dict:
    """The summary as the card read it before the check (an earlier recheck's result and finding left out)."""
    heldout = dict(summary.get("heldout") or {})
    if heldout.get("behaviour"):
        heldout["behaviour"] = {k: v for k, v in heldout["behaviour"].items() if k != "reworded"}
    return {**summary, "heldout": heldout,
            "diagnosis": [f for f in summary.get("diagnosis") or [] if f["code"] != "not_in_other_words"]}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--table", nargs="+", type=Path, required=True, help="benchmarks/tasks.py results (JSON).")
    parser.add_argument("--homes", nargs="+", default=[], help="Workspaces (globs) that hold the runs' adapters.")
    parser.add_argument("--out", type=Path, help="Write the results with the new verdicts (for tasks.py --table).")
    parser.add_argument("--regrade", action="store_true",
                        help="Ask nothing: grade the answers an earlier run of this script stored (its --out) again.")
    args = parser.parse_args(argv)
    found = adapters(args.homes)
    asker = None if args.regrade else Asker()
    results = [r for path in args.table for r in json.loads(path.read_text())]
    tasks = {t.name: t for t in load_tasks(list(dict.fromkeys(r["task"] for r in results)))}
    counts = {"applied": 0, "agree_before": 0, "agree_now": 0, "caught": 0, "missed": 0, "false_alarm": 0}
    print("| task | seed | settings | rule (of 8) | card before | asked in other words | card now | agrees now |")
    print("|---|---|---|---|---|---|---|---|")
    seen = set()
    for r in results:
        if r.get("status") != "done" or r["run_id"] in seen or not (args.regrade or r["run_id"] in found):
            continue
        seen.add(r["run_id"])
        task = tasks[r["task"]]
        graded(task, r, [(a["question"], a["answer"]) for a in r["answers"]])  # by the rules as they are now
        before = learned_verdict(without_check(r["summary"]))["learned"]  # the card as it words the run now
        verdict = recheck(r, task, found.get(r["run_id"]), asker)
        if verdict is None:
            continue
        r["verdict"] = verdict
        reworded = r["summary"]["heldout"]["behaviour"]["reworded"]
        rule = ", ".join(f"{k} {v}" for k, v in r["carried"].items())
        per = ", ".join(f"{lang} {c['right']}/{c['asked']}" for lang, c in reworded["by_language"].items())
        agrees = verdict["learned"] == r["rule_learned"] if verdict["learned"] is not None else None
        counts["applied"] += 1
        counts["agree_before"] += before == r["rule_learned"]
        counts["agree_now"] += bool(agrees)
        counts["caught"] += (not r["rule_learned"]) and verdict["learned"] is False and bool(before)
        counts["missed"] += (not r["rule_learned"]) and bool(verdict["learned"])
        counts["false_alarm"] += r["rule_learned"] and verdict["learned"] is False
        print(f"| {r['task']} | {r['seed']} | {' '.join(r.get('settings') or []) or 'as shipped'} | {rule} | "
              f"{'learned' if before else 'not learned' if before is False else '-'} | {per} | "
              f"{'learned' if verdict['learned'] else 'not learned'} | {'yes' if agrees else 'no'} |", flush=True)
    print(f"\n{counts['applied']} runs checked: the card agreed with the rule on {counts['agree_before']} before, "
          f"{counts['agree_now']} now; newly caught {counts['caught']}, still missed {counts['missed']}, "
          f"said 'not learned' of a run the rule passed {counts['false_alarm']}.")
    if args.out:
        args.out.write_text(json.dumps(results, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
