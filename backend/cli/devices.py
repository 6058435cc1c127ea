"""`train`'s device options: --processes, --strategy, --machines, --machine-rank, --main-address. Each is a shortcut
for `--set NAME=VALUE`, with the help, choices and checks of the setting's own declaration (backend/config.py).

Several computers: start the same command on each, with the same --machines and --main-address (computer 0's
HOST:PORT) and each its own --machine-rank; computer 0 keeps the run's results and shows it in its app.
"""
import argparse

from backend.config import declaration

OPTIONS = ("processes", "strategy", "machines", "machine_rank", "main_address")
METAVARS = {"processes": "N", "machines": "M", "machine_rank": "R", "main_address": "HOST:PORT"}


def add_devices(parser: argparse.ArgumentParser):
    group = parser.add_argument_group("devices (several GPUs, processes or computers)")
    for name in OPTIONS:
        d = declaration(name)
        default = f"default {d.default!r}" if d.default != "" else "none"
        group.add_argument("--" + name.replace("_", "-"), dest=name, choices=d.meta["choices"], metavar=METAVARS.get(name),
                           help=f"{d.meta['help']} ({default}; the same as --set {name}=...)")


def device_changes(args) -> dict:
    """The device options given, as settings; the config coerces and checks them."""
    return {name: getattr(args, name) for name in OPTIONS if getattr(args, name, None) is not None}
