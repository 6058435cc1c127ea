"""Options several commands share, each declared once: --json, --preset, --set KEY=VALUE."""
import argparse
import json

from backend.presets import DEFAULT_PRESET, list_presets, parse_changes


def add_json(parser: argparse.ArgumentParser, what: str = "End with one JSON line: run_id, status, metrics."):
    parser.add_argument("--json", action="store_true", help=what)


def add_preset(parser: argparse.ArgumentParser):
    names = ", ".join(p["name"] for p in list_presets())
    parser.add_argument("--preset", default=DEFAULT_PRESET, help=f"Preset: {names} (default: {DEFAULT_PRESET}).")


def add_set(parser: argparse.ArgumentParser):
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="changes",
                        help="Change one setting, e.g. --set learning_rate=1e-4 (see: python app.py settings).")


def changes(args) -> dict:
    """The --set items as {setting: text}; the config coerces and checks them."""
    return parse_changes(args.changes)


def print_json(value):
    print(json.dumps(value, ensure_ascii=False))
