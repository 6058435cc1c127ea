"""A finished run whose adapter really learned: the tiny model trained 24 steps on "Say hello number N", so its
answers are decisive ("Hello number 1!!!...") and an 8-bit GGUF of it keeps them. (A random adapter from
fake_runs gives near-tied answers that q8_0 rounding changes: its q8_0 check fails, as it should, 3 of 5 seen.)
The adapter is trained once per model cache and copied into each test's workspace."""
import json
import os
import shutil
import tempfile
from pathlib import Path

STEPS = 24
ROWS = [{"messages": [{"role": "user", "content": f"Say hello number {i}."},
                      {"role": "assistant", "content": f"Hello number {i}!"}]} for i in range(24)]


def learned_adapter(model_cache: Path, tiny_model: str) -> Path:
    """The trained adapter in the model cache; trains it (about a minute and a half) when missing."""
    target = Path(model_cache) / f"tiny-llama-hello-adapter-{STEPS}"
    if (target / "adapter_config.json").exists():
        return target
    from backend import workspace
    from backend.jobs.runner import JobRunner
    from tests.conftest import tiny_config

    saved = os.environ.get("TUNELOOP_HOME")
    with tempfile.TemporaryDirectory() as home:
        os.environ["TUNELOOP_HOME"] = home
        try:
            data = Path(home) / "hello.jsonl"
            data.write_text("".join(json.dumps(r) + "\n" for r in ROWS))
            runner = JobRunner()
            run_id = runner.submit(tiny_config(tiny_model, data, max_steps=STEPS))
            status = runner.wait(run_id, timeout=1200)["status"]
            runner.close()
            assert status == "done", f"training the learned tiny adapter ended {status}"
            partial = target.with_name(target.name + ".partial")
            shutil.rmtree(partial, ignore_errors=True)
            shutil.copytree(workspace.run_dir(run_id) / "adapter", partial)
            partial.rename(target)
        finally:
            if saved is None:
                os.environ.pop("TUNELOOP_HOME", None)
            else:
                os.environ["TUNELOOP_HOME"] = saved
    return target


def learned_run(tiny_model: str, adapter: Path, name: str = "hello") -> str:
    """A finished run in the current workspace with a copy of the learned adapter."""
    from backend import workspace
    from backend.db import connect
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "hello.jsonl", max_steps=STEPS, name=name))
    store.set_status(run_id, "done")
    shutil.copytree(adapter, workspace.run_dir(run_id) / "adapter")
    return run_id


def run_model(model_name: str, adapter: Path):
    """(model, tokenizer): the base model in float32 with a run's adapter, as the merged export computes it
    (the app itself may load bfloat16 on this CPU, which can change greedy answers)."""
    from peft import PeftModel

    from backend.models.loading import Hardware, load_model, load_tokenizer
    base = load_model(model_name, hardware=Hardware("cpu", "float32", "none"))
    return PeftModel.from_pretrained(base, str(adapter)).eval(), load_tokenizer(model_name)
