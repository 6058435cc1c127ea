"""The command line: `python app.py COMMAND`. User errors become one plain line and a nonzero exit.

One package: this module builds the parser from the command modules (runs, data, labels), each of which registers
its own subcommands; options several commands share are declared once in options.py.
"""
import argparse
import os
import sys

from backend.errors import TuneloopError


def build_parser() -> argparse.ArgumentParser:
    from backend.cli import data, labels, runs

    parser = argparse.ArgumentParser(prog="python app.py", description="Tuneloop: fine-tune a language model "
                                     "on your own data and feedback. With no command, starts the web app.")
    parser.add_argument("--host", default="127.0.0.1",
                        help="Web app: the address to listen on (default 127.0.0.1, this computer only).")
    parser.add_argument("--port", type=int, default=7860, help="Web app: the port to listen on (default 7860).")
    parser.add_argument("--auth", default=os.environ.get("TUNELOOP_AUTH"), metavar="USER:PASSWORD",
                        help="Web app: ask for this user and password (or set TUNELOOP_AUTH). "
                             "Use it whenever --host lets other computers in.")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    runs.register(commands)
    data.register(commands)
    labels.register(commands)
    return parser


def main(argv=None, serve=None) -> int:
    """Run one command. With none, `serve(host=, port=, auth=)` starts the web app: the caller (app.py) passes it,
    so that the backend never imports the web app."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command is None:
            if serve is None:
                parser.error("give a command (see --help); the web app starts from app.py")
            return serve(host=args.host, port=args.port, auth=args.auth)
        return args.func(args) or 0
    except TuneloopError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("Interrupted.", file=sys.stderr)
        return 130
