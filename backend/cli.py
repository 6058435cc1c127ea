"""The command line: `python app.py COMMAND`. User errors become one plain line and a nonzero exit."""
import argparse
import json
import sys
from pathlib import Path

from backend.errors import TuneloopError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python app.py", description="Tuneloop: fine-tune a language model "
                                     "on your own data and feedback. With no command, starts the web app.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="Web app: the address to listen on (default 127.0.0.1, this computer only).")
    parser.add_argument("--port", type=int, default=7860, help="Web app: the port to listen on (default 7860).")
    parser.add_argument("--auth-file", metavar="PATH",
                        help="Web app: ask for the user:password written on this file's first line (or set "
                             "TUNELOOP_AUTH_FILE=PATH, or TUNELOOP_AUTH=user:password). Required when --host "
                             "lets other computers in.")
    parser.add_argument("--auth", metavar="USER:PASSWORD",
                        help="Web app: like --auth-file, but every user of this computer can read it in `ps`: "
                             "prefer TUNELOOP_AUTH or --auth-file.")
    parser.add_argument("--insecure-no-auth", action="store_true",
                        help="Web app: listen beyond this computer without a password (anyone who can reach "
                             "the port can use the app).")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    train = commands.add_parser("train", help="Train a model on a dataset until done, printing progress.")
    train.add_argument("--data", required=True, help="A data file (JSON, JSONL, CSV, ...) or a saved dataset's name.")
    train.add_argument("--method", choices=["sft", "dpo", "kto"], help="Training method (default: from the data).")
    train.add_argument("--preset", default="quick", help="Preset: quick, balanced or thorough (default: quick).")
    train.add_argument("--model", help="Base model: 'smollm2' (built in, default), a local folder or a hub id.")
    train.add_argument("--base-run", help="Build on a finished run's adapter (e.g. DPO after SFT).")
    train.add_argument("--name", help="A name for the run.")
    train.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                       help="Change one setting, e.g. --set learning_rate=1e-4 (see: python app.py settings).")
    train.add_argument("--json", action="store_true", help="End with one JSON line: run_id, status, metrics.")
    train.set_defaults(func=cmd_train)

    resume = commands.add_parser("resume", help="Continue a stopped or failed run from its last checkpoint.")
    resume.add_argument("run_id", help="The run to continue.")
    resume.add_argument("--json", action="store_true", help="End with one JSON line.")
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
    generate.add_argument("--max-new-tokens", type=int, default=128, help="Longest answer, in tokens.")
    generate.add_argument("--temperature", type=float, default=0.0, help="0 (default) answers greedily.")
    generate.add_argument("--json", action="store_true", help='End with one JSON line: {"outputs": [...]}.')
    generate.set_defaults(func=cmd_generate)

    export = commands.add_parser("export", help="Save a run as a merged model folder (or the adapter alone).")
    export.add_argument("run_id", help="The run to export.")
    export.add_argument("--out", required=True, help="A new or empty folder to write to.")
    export.add_argument("--adapter-only", action="store_true", help="Export only the LoRA adapter.")
    export.add_argument("--zip", action="store_true", help="Also make a .zip of the folder.")
    export.set_defaults(func=cmd_export)

    runs = commands.add_parser("runs", help="List runs with their status and results.")
    runs.add_argument("--json", action="store_true", help="Print the list as JSON.")
    runs.set_defaults(func=cmd_runs)

    settings = commands.add_parser("settings", help="List every training setting with its default, range and help.")
    settings.set_defaults(func=cmd_settings)

    presets = commands.add_parser("presets", help="List the presets and what they do.")
    presets.set_defaults(func=cmd_presets)

    try:
        from backend.data.commands import register
        register(commands)
    except ImportError:
        pass
    from backend.labels.commands import register as register_labels
    register_labels(commands)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            from ui.app import serve
            return serve(host=args.host, port=args.port, auth=args.auth, auth_file=args.auth_file,
                         insecure_no_auth=args.insecure_no_auth)
        return args.func(args) or 0
    except TuneloopError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130


# --- commands -----------------------------------------------------------------------------------

def cmd_train(args) -> int:
    from backend.run_config import config_from_cli
    from backend.runner import JobRunner

    config = config_from_cli(data=args.data, method=args.method, preset=args.preset, model=args.model,
                             base_run=args.base_run, name=args.name, overrides=args.set)
    runner = JobRunner()
    run_id = runner.submit(config)
    print(f"Run {run_id} queued ({config.method.upper()}, preset {args.preset}).", file=sys.stderr)
    return _follow(runner, run_id, args.json)


def cmd_resume(args) -> int:
    from backend.runner import JobRunner
    runner = JobRunner()
    runner.resume(args.run_id)
    return _follow(runner, args.run_id, args.json)


def _follow(runner, run_id: str, as_json: bool) -> int:
    from backend.progress import follow_run
    try:
        run = follow_run(runner, run_id)
    except KeyboardInterrupt:
        print("Stopping after the current step (press Ctrl-C again to leave it running)...", file=sys.stderr)
        runner.stop(run_id)
        run = runner.wait(run_id)
    runner.close(stop_current=False)
    print(f"Run {run_id}: {run['status']}" + (f" - {run['reason']}" if run.get("reason") else ""))
    for key, value in (run.get("final_metrics") or {}).items():
        print(f"  {key}: {value:.4g}" if isinstance(value, float) else f"  {key}: {value}")
    if run.get("probe"):
        print(f"  {run['probe']['summary']}")
    if as_json:
        print(json.dumps({"run_id": run_id, "status": run["status"], "reason": run.get("reason"),
                          "metrics": run.get("final_metrics") or {}, "probe": run.get("probe")}))
    return 0 if run["status"] == "done" else 1


def cmd_stop(args) -> int:
    from backend.runner import JobRunner
    JobRunner().stop(args.run_id)
    print(f"Asked run {args.run_id} to stop; it saves and ends after its current step.")
    return 0


def cmd_generate(args) -> int:
    from backend.db import connect
    from backend.generate import generate, load_for_generation
    from backend.runs import RunStore
    from backend import workspace

    if args.run:
        store = RunStore(connect())
        run = store.get(args.run)
        adapter = workspace.run_dir(args.run) / "adapter"
        if not adapter.exists():
            from backend.errors import RunStateError
            raise RunStateError(f"Run '{args.run}' is {run['status']} and has no saved adapter yet.")
        model, tokenizer = load_for_generation(run["config"]["model"], adapter)
    else:
        model, tokenizer = load_for_generation(args.model)
    outputs = generate(model, tokenizer, args.prompt, max_new_tokens=args.max_new_tokens,
                       temperature=args.temperature)
    for prompt, output in zip(args.prompt, outputs):
        print(f"> {prompt}\n{output}\n")
    if args.json:
        print(json.dumps({"outputs": outputs}))
    return 0


def cmd_export(args) -> int:
    from backend.db import connect
    from backend.export import export_run
    from backend.runs import RunStore

    path = export_run(RunStore(connect()), args.run_id, Path(args.out), adapter_only=args.adapter_only,
                      zip_it=args.zip, progress=lambda m: print(m + "...", file=sys.stderr))
    print(f"Exported to {path}")
    return 0


def cmd_runs(args) -> int:
    from backend.db import connect
    from backend.runs import RunStore

    runs = RunStore(connect()).list()
    if args.json:
        print(json.dumps(runs))
        return 0
    if not runs:
        print("No runs yet. Start one with: python app.py train --data FILE")
    for run in runs:
        probe = (run.get("probe") or {}).get("summary", "")
        loss = (run.get("final_metrics") or {}).get("train_loss")
        print(f"{run['id']:32} {run['status']:8} {run['method']:4} loss={loss if loss is None else round(loss, 4)} "
              f"{run['dataset']} {probe}")
    return 0


def cmd_settings(args) -> int:
    from backend.config import declarations
    for name, kind, default, meta in declarations():
        bounds = f" choices: {', '.join(meta['choices'])}" if meta["choices"] else (
            f" range: {meta['min']} to {meta['max']}" if meta["min"] is not None else "")
        print(f"{name} ({kind.__name__ if hasattr(kind, '__name__') else kind}, default {default!r};{bounds})\n    {meta['help']}")
    return 0


def cmd_presets(args) -> int:
    from backend.presets import list_presets
    for preset in list_presets():
        print(f"{preset['name']}: {preset['title']} - {preset['description']}")
    return 0
