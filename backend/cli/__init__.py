"""The command line: `python app.py COMMAND`. User errors become one plain line and a nonzero exit.

One package: this module builds the parser from the command modules (runs, models, data, labels), each of which
registers its own subcommands; options several commands share are declared once in options.py.
"""
import argparse
import sys

from backend.errors import TuneloopError


def build_parser() -> argparse.ArgumentParser:
    from backend.cli import data, export, labels, models, runs

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
    runs.register(commands)
    export.register(commands)
    models.register(commands)
    data.register(commands)
    labels.register(commands)
    return parser


def main(argv=None, serve=None) -> int:
    """Run one command. With none, `serve(host=, port=, auth=, auth_file=, insecure_no_auth=)` starts the web app:
    the caller (app.py) passes it, so that the backend never imports the web app."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if serve is None:
                parser.error("give a command (see --help); the web app starts from app.py")
            return serve(host=args.host, port=args.port, auth=args.auth, auth_file=args.auth_file,
                         insecure_no_auth=args.insecure_no_auth)
        return args.func(args) or 0
    except TuneloopError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
