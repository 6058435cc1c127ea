"""Commands about labels: `labels stats`, `labels export`, `labels train`."""
from __future__ import annotations

import sys

from backend.cli.follow import follow
from backend.cli.options import add_json, add_preset, add_set, changes, print_json
from backend.labels.export import KINDS, export_rows, label_stats, stats_text, write_jsonl
from backend.words import plural

KIND_HELP = "kto: thumbs (good/bad answers), dpo: A/B choices (chosen/rejected pairs), sft: edited answers."


def _db():
    from backend.db import connect
    return connect()


def cmd_stats(args) -> int:
    from backend.labels.agreement import KINDS as JUDGED, agreement, agreement_lines
    from backend.labels.overlap import progress_words, team_progress
    from backend.labels.winrate import win_rates

    db = _db()
    stats = label_stats(db)
    report = win_rates(db)
    from backend.labels.team_rules import rule_counts
    agreed = {kind: agreement(db, kind) for kind in JUDGED}
    progress = team_progress(db)  # the numbers the Team tab shows
    if args.json:
        choices = {kind: rule_counts(db, kind) for kind in ("kto", "dpo")}  # rows per choice of `labels train --labels`
        by_labeller = {name: win_rates(db, name) for name in stats["labellers"]}
        print_json({**stats, "win_rates": report, "win_rates_by_labeller": by_labeller, "agreement": agreed,
                    "rows_by_choice": choices, "overlap": progress})
    else:
        print(stats_text(stats))
        if len(stats["labellers"]) > 1 or progress["labellers_per_item"] > 1:
            print("\n".join(progress_words(progress)))
        if len(stats["labellers"]) > 1:
            for kind in JUDGED:
                print("\n".join(agreement_lines(agreed[kind])))
        for pair in report["pairs"]:
            low, high = pair["interval"]
            print(f"Win-rate of {pair['a']} against {pair['b']}: {pair['a_win_rate']:.0%} (95% interval {low:.0%} to "
                  f"{high:.0%}) over {plural(pair['votes'], 'blind A/B vote')} ({plural(pair['ties'], 'tie')})")
        for rank in report["ranking"] or []:
            print(f"  {rank['rank']}. {rank['model']} (Bradley-Terry: beats an average model {rank['beats_average']:.0%})")
        if report["left_out"]:  # the sentence the Runs tab says under its table
            print(report["left_out"])
    return 0


def cmd_export(args) -> int:
    rows = export_rows(_db(), args.kind, anonymise=args.anonymise)
    path = write_jsonl(rows, args.out)
    print(f"Wrote {len(rows)} {args.kind.upper()} {'pairs' if args.kind == 'dpo' else 'examples'} to {path}"
          + ("" if rows else " (no labels of this kind yet: the file is empty)."))
    return 0


def cmd_train(args) -> int:
    from backend.labels import readiness, train_on_labels
    from backend.jobs.runner import JobRunner

    runner = JobRunner()
    rule = args.labels.replace("-", "_")
    ready = readiness(runner.db, args.kind, preset=args.preset, overrides=changes(args), rule=rule,
                      leave_out=args.leave_out)
    if ready.rows and not ready.enough and not args.anyway:  # none at all: train_on_labels says what is missing
        print(f"Error: {ready.words()} Label more answers, or add --anyway to train on these.", file=sys.stderr)
        return 1
    if ready.rows:
        print(ready.words(), file=sys.stderr)  # the Label tab's sentence
    run_id, dataset = train_on_labels(runner.db, runner, args.kind, preset=args.preset, base_run=args.base_run,
                                      overrides=changes(args), rule=rule, leave_out=args.leave_out)
    print(f"Run {run_id} queued ({args.kind.upper()} on dataset '{dataset}', preset {args.preset}).", file=sys.stderr)
    return follow(runner, run_id, args.json)


def register(subparsers) -> None:
    labels = subparsers.add_parser("labels", help="Labels given in the app: counts, export as training data, train.",
                                   description="Thumbs, A/B choices and edits given in the web app, stored as they "
                                               "are given. " + KIND_HELP)
    sub = labels.add_subparsers(dest="labels_command", metavar="COMMAND", required=True)

    p = sub.add_parser("stats", help="Count the labels, per labeller, what they amount to for training, and how far "
                                     "the labellers agree.")
    add_json(p, "Print the counts, win-rates, agreement (per pair, overall, per labeller, split items) and the items "
                "complete (each judged by as many labellers as the Team tab asks) as one JSON object.")
    p.set_defaults(func=cmd_stats)

    p = sub.add_parser("export", help="Write the labels as JSONL in TRL's format (an empty file when there are none).")
    p.add_argument("--kind", required=True, choices=KINDS, help=KIND_HELP)
    p.add_argument("--out", required=True, help="The JSONL file to write.")
    p.add_argument("--anonymise", action="store_true",
                   help="Name each row's labeller 'labeller 1', 'labeller 2', ... instead of their account name.")
    p.set_defaults(func=cmd_export)

    p = sub.add_parser("train", help="Store the labels as a dataset and train on them, printing progress.")
    p.add_argument("--kind", required=True, choices=KINDS, help=KIND_HELP)
    add_preset(p)
    p.add_argument("--base-run", help="Train on top of this run (default: the run whose answers were labelled most).")
    p.add_argument("--labels", default="every", choices=("every", "majority", "all-agree"),
                   help="When several people labelled the same answers: train on every label (default), the majority "
                        "label per answer (the one more than half gave; ties dropped), or only answers everyone who "
                        "judged them agreed on. Corrections (sft) always train on every one.")
    p.add_argument("--leave-out", metavar="LABELLER", help="Train without this labeller's labels.")
    p.add_argument("--anyway", action="store_true",
                   help="Train even on fewer labels than the preset learns from (the Label tab asks the same).")
    add_set(p)
    add_json(p)
    p.set_defaults(func=cmd_train)
