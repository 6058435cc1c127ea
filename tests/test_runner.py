"""Each method trains end to end through the runner on the CPU, on a tiny model."""
import os
import signal
import time

import pytest
from safetensors.torch import load_file

from backend import workspace
from backend.runner import JobRunner
from tests.conftest import tiny_config


def lora_and_base(run_id, tiny_model):
    adapter = load_file(str(workspace.run_dir(run_id) / "adapter" / "adapter_model.safetensors"))
    base = load_file(os.path.join(tiny_model, "model.safetensors"))
    return adapter, base


@pytest.mark.parametrize("method,data", [("sft", "chat_file"), ("dpo", "pairs_file"), ("kto", "labels_file")])
def test_method_trains_end_to_end(method, data, tiny_model, request):
    base_before = load_file(os.path.join(tiny_model, "model.safetensors"))
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, request.getfixturevalue(data), method=method))
    run = runner.wait(run_id, timeout=300)
    runner.close()
    assert run["status"] == "done", run.get("reason")
    metrics = runner.store.metrics(run_id)
    steps = [m["step"] for m in metrics if "train_loss" in m]
    assert steps == [1, 2, 3, 4]
    assert all(m["tokens_per_second"] > 0 and "eta" in m for m in metrics if "train_loss" in m)
    if method in ("dpo", "kto"):
        assert any("rewards_chosen" in m for m in metrics)
    adapter, base_after = lora_and_base(run_id, tiny_model)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: nonzero means it learned
    assert all((base_before[k] == base_after[k]).all() for k in base_before)
    assert (workspace.run_dir(run_id) / "config.yaml").exists()
    assert run["final_metrics"]["steps"] == 4


def test_qlora_4bit_trains_on_cpu(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, quantization="4bit", max_steps=2))
    run = runner.wait(run_id, timeout=300)
    runner.close()
    assert run["status"] == "done", run.get("reason")
    assert "QLoRA 4-bit" in (workspace.run_dir(run_id) / "train.log").read_text()


def test_dpo_builds_on_finished_sft_run(tiny_model, chat_file, pairs_file):
    runner = JobRunner()
    sft = runner.submit(tiny_config(tiny_model, chat_file))
    dpo = runner.submit(tiny_config(tiny_model, pairs_file, method="dpo", base_run=sft, max_steps=2))
    assert runner.store.get(dpo)["status"] == "queued"  # one run trains at a time
    assert runner.wait(sft, timeout=300)["status"] == "done"
    run = runner.wait(dpo, timeout=300)
    runner.close()
    assert run["status"] == "done", run.get("reason")
    first_loss = runner.store.metrics(dpo)[0]["train_loss"]
    assert abs(first_loss - 0.693) < 0.01  # policy starts equal to its reference, the SFT adapter


def test_stop_then_resume_from_checkpoint(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=400, save_every=1000))
    deadline = time.time() + 120
    while not [m for m in runner.store.metrics(run_id) if m["step"] >= 3] and time.time() < deadline:
        time.sleep(0.2)
    runner.stop(run_id)
    run = runner.wait(run_id, timeout=120)
    assert run["status"] == "stopped"
    stopped_at = run["final_metrics"]["steps"]
    assert 3 <= stopped_at < 400
    assert (workspace.run_dir(run_id) / "checkpoints" / f"checkpoint-{stopped_at}").exists()
    from tests.conftest import greedy, model_with_adapter
    model, tokenizer = model_with_adapter(tiny_model, workspace.run_dir(run_id) / "adapter")
    assert len(greedy(model, tokenizer, ["Say hello number 1."], max_new_tokens=4)) == 1  # the adapter loads and answers

    runner.resume(run_id)
    while runner.store.get(run_id)["status"] != "running":
        time.sleep(0.1)
    deadline = time.time() + 120
    while len(runner.store.metrics(run_id)) < stopped_at + 3 and time.time() < deadline:
        time.sleep(0.2)
    runner.stop(run_id)
    run = runner.wait(run_id, timeout=120)
    runner.close()
    steps = [m["step"] for m in runner.store.metrics(run_id) if "train_loss" in m]
    resumed = steps[steps.index(stopped_at) + 1:]
    assert resumed and resumed[0] == stopped_at + 1  # went on from the checkpoint, not from step 1


def test_crashed_worker_fails_with_reason_and_queue_goes_on(tiny_model, chat_file):
    runner = JobRunner()
    doomed = runner.submit(tiny_config(tiny_model, chat_file, max_steps=400))
    after = runner.submit(tiny_config(tiny_model, chat_file, max_steps=2))
    deadline = time.time() + 120
    while not runner.store.metrics(doomed) and time.time() < deadline:
        time.sleep(0.2)
    os.kill(runner.store.get(doomed)["pid"], signal.SIGKILL)
    run = runner.wait(doomed, timeout=60)
    assert run["status"] == "failed"
    assert "ended by the system (SIGKILL)" in run["reason"] and "memory" in run["reason"]
    assert runner.wait(after, timeout=300)["status"] == "done"
    runner.close()


def test_bad_data_for_method_fails_in_words(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, method="dpo"))
    run = runner.wait(run_id, timeout=120)
    runner.close()
    assert run["status"] == "failed"
    assert "SFT data" in run["reason"] and "chosen" in run["reason"]


def test_worker_ends_when_its_app_is_killed(tiny_model, chat_file, tmp_path):
    """An app killed mid-run leaves no orphan training in the background; the next start marks it failed."""
    import subprocess
    import sys

    from tests.conftest import ROOT

    script = tmp_path / "app_like.py"
    script.write_text(
        "import sys, time\n"
        f"sys.path.insert(0, {str(ROOT)!r})\n"
        "from backend.runner import JobRunner\n"
        "from tests.conftest import tiny_config\n"
        "if __name__ == '__main__':\n"
        f"    runner = JobRunner(); runner.submit(tiny_config({tiny_model!r}, {str(chat_file)!r}, max_steps=400))\n"
        "    time.sleep(600)\n")
    app = subprocess.Popen([sys.executable, str(script)], env=os.environ.copy())
    store = JobRunner().store
    deadline = time.time() + 120
    while time.time() < deadline and not (store.list() and store.list()[0].get("pid")):
        time.sleep(0.3)
    worker_pid = store.list()[0]["pid"]
    app.kill()
    app.wait()
    deadline = time.time() + 30
    while time.time() < deadline and _running(worker_pid):
        time.sleep(0.5)
    assert not _running(worker_pid)
    run = JobRunner().store.list()[0]  # a new app start recovers the orphaned run
    assert run["status"] == "failed" and "Resume it" in run["reason"]


def _running(pid: int) -> bool:
    from backend.runner import _alive
    return _alive(pid)
