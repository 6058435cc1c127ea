"""Commands about runs: train, resume, stop, runs, generate, settings, presets (export: cli/export.py)."""
import math
import sys

from backend.cli.follow import follow
from backend.cli.options import add_json, add_preset, add_set, changes, print_json


def read_data(data: str) -> dict:
    """What `train --data` names, read once: a saved dataset's record (DatasetStore.get: name, kind, stats), or for a
    file {"name": its path, "kind": what it holds}; with about_itself: whether the examples teach who the assistant
    is (the preset may have values for those). Unusable data is refused here, in words."""
    from backend.data import DatasetStore, data_reference, load_examples
    from backend.db import connect
    from backend.evaluation.reworded import rows_teach_about_itself

    what, dataset, note = data_reference(data)
    if note:
        print(note, file=sys.stderr)
    kind, train, _ = load_examples(dataset)
    record = DatasetStore(connect()).get(dataset) if what == "dataset" else {"name": dataset, "kind": kind}
    # the training rows, as the check that asks questions in other words reads them (backend/train/behaviour_check.py)
    return dict(record, about_itself=rows_teach_about_itself(train))


def config_from_args(*, data: str | dict, method: str | None = None, preset: str | None = None,
                     model: str | None = None, base_run: str | None = None, name: str | None = None,
                     changed: dict | None = None):
    """The config `train` builds: the preset, the data (a saved dataset's name or a file, or read_data's record of
    it), options, then --set. The method defaults to the one that fits the data."""
    from backend.presets import config_from_preset

    data = read_data(data) if isinstance(data, str) else data
    dataset, kind = data["name"], data["kind"]
    values = {"dataset": dataset}
    values.update({key: value for key, value in (("model", model), ("base_run", base_run), ("name", name)) if value})
    values.update(changed or {})
    return config_from_preset(preset, method or kind, values, about_itself=data.get("about_itself", False))


def cmd_train(args) -> int:
    from backend.cli.devices import device_changes
    from backend.cli.models import prepare_model
    from backend.jobs.runner import JobRunner
    from backend.presets import about_itself_note

    data = read_data(args.data)
    config = config_from_args(data=data, method=args.method, preset=args.preset, model=args.model,
                              base_run=args.base_run, name=args.name, changed={**device_changes(args), **changes(args)})
    config = prepare_model(config, data)  # refused here when it cannot start; a hub model is downloaded first
    runner = JobRunner(only_own=True)  # trains this run only, never someone else's queued run
    run_id = runner.submit(config)
    print(f"Run {run_id} queued ({config.method.upper()}, preset {args.preset}).", file=sys.stderr)
    note = about_itself_note(args.preset, config, data["about_itself"])
    if note:
        print(note, file=sys.stderr)
    return follow(runner, run_id, args.json)


def cmd_resume(args) -> int:
    from backend.jobs.runner import JobRunner
    runner = JobRunner(only_own=True)
    runner.resume(args.run_id)
    return follow(runner, args.run_id, args.json)


def cmd_stop(args) -> int:
    from backend.jobs.runner import JobRunner
    JobRunner().stop(args.run_id)
    print(f"Asked run {args.run_id} to stop; it saves and ends after its current step.")
    return 0


def cmd_generate(args) -> int:
    from backend.answers import Sampling
    from backend.models.pool import ModelPool

    # No time limit here: the web app's (answer_seconds) keeps one person's answer from holding a shared model, but a
    # command waits for its own answers, and one cut by a busy machine's slowness reads as the model's own words.
    pool = ModelPool(max_seconds=math.inf)
    source = pool.source(args.run) if args.run else pool.source(model=args.model)
    sampling = Sampling.of(temperature=args.temperature, max_new_tokens=args.max_new_tokens)
    answers = pool.answer([(source, [{"role": "user", "content": p}]) for p in args.prompt], sampling)
    for prompt, answer in zip(args.prompt, answers):
        cut = "" if answer.ended else f"\n(cut off at {sampling.max_new_tokens} tokens: --max-new-tokens)"
        print(f"> {prompt}\n{answer.text}{cut}\n")
    if args.json:
        print_json({"outputs": [a.text for a in answers], "ended": [a.ended for a in answers],
                    "seed": sampling.seed})
    return 0


def cmd_runs(args) -> int:
    from backend.db import connect
    from backend.runs import RunStore, loss_words

    store = RunStore(connect())
    runs = store.list()
    if args.json:
        from backend.evaluation.report_card import preferred
        print_json([{**run, "preferred": preferred(store.db, run["id"])} for run in runs])
        return 0
    if not runs:
        print("No runs yet. Start one with: python app.py train --data FILE")
    for run in runs:
        probe = (run.get("probe") or {}).get("summary", "")
        print(" ".join(part for part in (f"{run['id']:32} {run['status']:8} {run['method']:4}",
                                         loss_words(run), run["dataset"], probe)  # no loss until a run ends
                       if part))
    return 0


def cmd_settings(args) -> int:
    from backend.config import declarations
    for d in declarations():
        meta = d.meta
        bounds = f" choices: {', '.join(meta['choices'])}" if meta["choices"] else (
            f" range: {meta['min']} to {meta['max']}" if meta["min"] is not None else "")
        formerly = f"; formerly {', '.join(meta['formerly'])}" if meta["formerly"] else ""
        print(f"{d.name} ({d.type}, default {d.default!r};{bounds}{formerly})\n    {meta['label']}: {meta['help']}")
    return 0


def cmd_presets(args) -> int:
    from backend.presets import list_presets
    for preset in list_presets():
        print(f"{preset['name']}: {preset['title']} - {preset['description']}")
    return 0


def register(commands):
    from backend.answers import sampling_declarations
    from backend.cli.devices import add_devices
    from backend.config import BUILTIN_MODEL, METHODS

    sampling = {d.name: d for d in sampling_declarations()}

    train = commands.add_parser("train", help="Train a model on a dataset until done, printing progress.")
    train.add_argument("--data", required=True, help="A saved dataset's name, or a data file (JSON, JSONL, CSV, ...). "
                       "A name that is both: the saved dataset; write ./NAME for the file.")
    train.add_argument("--method", choices=METHODS, help="Training method (default: from the data).")
    add_preset(train)
    train.add_argument("--model", help=f"Base model: '{BUILTIN_MODEL}' (built in, default), a local folder, or a "
                       "Hugging Face id (owner/name, downloaded once with a progress bar; see: python app.py models).")
    train.add_argument("--base-run", help="Build on a finished run's adapter (e.g. DPO after SFT).")
    train.add_argument("--name", help="A name for the run.")
    add_set(train)
    add_devices(train)
    add_json(train)
    train.set_defaults(func=cmd_train)

    resume = commands.add_parser("resume", help="Continue a stopped or failed run from its last checkpoint.")
    resume.add_argument("run_id", help="The run to continue.")
    add_json(resume)
    resume.set_defaults(func=cmd_resume)

    stop = commands.add_parser("stop", help="Ask a training run to stop after its current step and save.")
    stop.add_argument("run_id", help="The run to stop.")
    stop.set_defaults(func=cmd_stop)

    generate = commands.add_parser("generate", help="Answer prompts with a run's model or the base model.")
    source = generate.add_mutually_exclusive_group(required=True)
    source.add_argument("--run", help="Use this run's tuned model.")
    source.add_argument("--base", action="store_true", help="Use the base model, without any adapter.")
    generate.add_argument("--model", help="Base model with --base (default: the built-in one).")
    generate.add_argument("--prompt", action="append", required=True, help="A prompt; repeat for several.")
    generate.add_argument("--max-new-tokens", default=sampling["max_new_tokens"].default,
                          help=f"{sampling['max_new_tokens'].meta['help']} (default "
                               f"{sampling['max_new_tokens'].default}).")
    generate.add_argument("--temperature", default=sampling["temperature"].default,
                          help=f"{sampling['temperature'].meta['help']} (default {sampling['temperature'].default}).")
    add_json(generate, 'End with one JSON line: {"outputs": [...], "seed": N}.')
    generate.set_defaults(func=cmd_generate)

    runs = commands.add_parser("runs", help="List runs with their status and results.")
    add_json(runs, "Print the list as JSON.")
    runs.set_defaults(func=cmd_runs)

    settings = commands.add_parser("settings", help="List every training setting with its default, range and help.")
    settings.set_defaults(func=cmd_settings)

    presets = commands.add_parser("presets", help="List the presets and what they do.")
    presets.set_defaults(func=cmd_presets)
