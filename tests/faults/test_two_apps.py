"""Two apps and a command line on one workspace, three runs: one trains at a time (the trainer lock), and each run
is trained exactly once (a claim is taken by one process only; the command line trains only its own run)."""
import os
import subprocess
import sys
import time
from pathlib import Path

from backend.db import connect
from backend.runs import FINISHED, RunStore
from tests.conftest import tiny_config

ROOT = Path(__file__).resolve().parents[2]
APP = "from backend.jobs.runner import JobRunner; import time; JobRunner(poll_seconds=0.2).start(); time.sleep(3600)"
TINY = ["--set", "max_steps=3", "--set", "batch_size=4", "--set", "learning_rate=0.01", "--set", "rehearsal=0",
        "--set", "probe=false", "--set", "validation_split=0", "--set", "lora_r=4", "--set", "lora_alpha=8",
        "--set", "max_length=128"]


def test_two_apps_and_a_command_line_train_three_runs_one_at_a_time_each_once(tiny_model, chat_file, home):
    store = RunStore(connect())
    queued = [store.create(tiny_config(tiny_model, chat_file, max_steps=3, name=f"queued {i}")) for i in range(2)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    apps = [subprocess.Popen([sys.executable, "-c", APP], cwd=ROOT, env=env) for _ in range(2)]
    try:
        cli = subprocess.run([sys.executable, "app.py", "train", "--data", str(chat_file), "--model", tiny_model,
                              "--name", "from the command line", *TINY, "--json"],
                             cwd=ROOT, env=env, capture_output=True, text=True, timeout=1800)
        assert cli.returncode == 0, cli.stderr[-2000:]
        deadline = time.monotonic() + 1800
        while not all(store.get(run_id)["status"] in FINISHED for run_id in queued):
            assert time.monotonic() < deadline, [store.get(r)["status"] for r in queued]
            time.sleep(1)
    finally:
        for process in apps:
            process.kill()
            process.wait()
    runs = store.list()
    assert len(runs) == 3 and all(run["status"] == "done" for run in runs), [(r["name"], r["status"], r["reason"])
                                                                              for r in runs]
    spans = []
    for run in runs:
        metrics = [m for m in store.metrics(run["id"]) if "train_loss" in m]
        assert [m["step"] for m in metrics] == [1, 2, 3], run["name"]  # trained once, whole, never twice
        spans.append((run["started"], run["ended"], run["name"]))  # claimed only with the trainer lock held
    spans.sort()
    for (_, end, first), (start, _, second) in zip(spans, spans[1:]):
        assert end <= start, f"'{first}' and '{second}' trained at the same time"
