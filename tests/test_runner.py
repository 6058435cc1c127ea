"""Each method trains end to end through the runner on the CPU, on a tiny model. The runs that tests only read
are trained once for the module, in one queue."""
import os
import signal
import time
from types import SimpleNamespace

import pytest
from safetensors.torch import load_file

from backend import workspace
from backend.jobs.runner import JobRunner
from tests.conftest import CHAT_ROWS, LABELS_ROWS, PAIRS_ROWS, tiny_config, use_home, write_jsonl


def lora_and_base(run_id, tiny_model):
    adapter = load_file(str(workspace.run_dir(run_id) / "adapter" / "adapter_model.safetensors"))
    base = load_file(os.path.join(tiny_model, "model.safetensors"))
    return adapter, base


DATA = {"sft": CHAT_ROWS, "dpo": PAIRS_ROWS, "kto": LABELS_ROWS}


@pytest.fixture(scope="module")
def trained(module_home, tiny_model, tmp_path_factory):
    """One run per method, and a DPO run queued behind the SFT run that it builds on: trained once, in one queue,
    read by the tests below. (the runner, the run ids, the DPO run's status right after it was submitted)"""
    folder = tmp_path_factory.mktemp("data")
    files = {method: write_jsonl(folder / f"{method}.jsonl", rows) for method, rows in DATA.items()}
    base_before = load_file(os.path.join(tiny_model, "model.safetensors"))
    runner = JobRunner()
    ids = {method: runner.submit(tiny_config(tiny_model, files[method], method=method)) for method in DATA}
    ids["dpo_on_sft"] = runner.submit(tiny_config(tiny_model, files["dpo"], method="dpo", base_run=ids["sft"],
                                                  max_steps=2))
    queued = runner.store.get(ids["dpo_on_sft"])["status"]
    try:
        for run_id in ids.values():
            runner.wait(run_id, timeout=600)
    finally:
        runner.close()
    return SimpleNamespace(home=module_home, store=runner.store, ids=ids, queued=queued, base_before=base_before)


@pytest.fixture
def runs(trained, monkeypatch):
    use_home(monkeypatch, trained.home)
    return trained


@pytest.mark.parametrize("method", ["sft", "dpo", "kto"])
def test_method_trains_end_to_end(method, runs, tiny_model):
    run_id = runs.ids[method]
    run = runs.store.get(run_id)
    assert run["status"] == "done", run.get("reason")
    metrics = runs.store.metrics(run_id)
    steps = [m["step"] for m in metrics if "train_loss" in m]
    assert steps == [1, 2, 3, 4]
    assert all(m["tokens_per_second"] > 0 and "eta" in m for m in metrics if "train_loss" in m)
    if method in ("dpo", "kto"):
        assert any("rewards_chosen" in m for m in metrics)
    adapter, base_after = lora_and_base(run_id, tiny_model)
    lora_b = [v for k, v in adapter.items() if "lora_B" in k]
    assert lora_b and any(v.abs().sum() > 0 for v in lora_b)  # lora_B starts at zero: nonzero means it learned
    assert all((runs.base_before[k] == base_after[k]).all() for k in runs.base_before)
    assert (workspace.run_dir(run_id) / "config.yaml").exists()
    assert run["final_metrics"]["steps"] == 4


@pytest.mark.parametrize("method", ["dpo", "kto"])
def test_preference_runs_raise_the_margin_of_what_they_were_shown(method, runs, tiny_model):
    """The direction of preference learning, cheaply: on the pairs it trained on, the tuned tiny model prefers the
    good answer more than its base did. (On held-out pairs of the real model: benchmarks/learning.py.)"""
    from tests.conftest import model_with_adapter
    from tests.scoring import preference_margins

    if method == "dpo":
        pairs = [{"prompt": row["prompt"], "chosen": row["chosen"][0]["content"],
                  "rejected": row["rejected"][0]["content"]} for row in PAIRS_ROWS]
    else:  # KTO was shown "Hello!" marked good and "Go away." marked bad
        pairs = [{"prompt": row["prompt"], "chosen": "Hello!", "rejected": "Go away."} for row in LABELS_ROWS]
    base = preference_margins(*model_with_adapter(tiny_model), pairs)
    tuned = preference_margins(*model_with_adapter(tiny_model, workspace.run_dir(runs.ids[method]) / "adapter"), pairs)
    assert sum(tuned) / len(tuned) > sum(base) / len(base) + 0.5, (base, tuned)
    assert sum(t > b for t, b in zip(tuned, base)) >= 0.9 * len(base), (base, tuned)


def test_qlora_4bit_trains_on_cpu(tiny_model, chat_file):
    runner = JobRunner()
    run_id = runner.submit(tiny_config(tiny_model, chat_file, quantization="4bit", max_steps=2))
    run = runner.wait(run_id, timeout=300)
    runner.close()
    assert run["status"] == "done", run.get("reason")
    assert "QLoRA 4-bit" in (workspace.run_dir(run_id) / "train.log").read_text()


def test_dpo_builds_on_finished_sft_run(runs):
    assert runs.queued == "queued"  # one run trains at a time
    run = runs.store.get(runs.ids["dpo_on_sft"])
    assert run["status"] == "done", run.get("reason")
    assert run["base_run"] == runs.ids["sft"]
    first_loss = runs.store.metrics(run["id"])[0]["train_loss"]
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
    assert "killed from outside Tuneloop (signal SIGKILL)" in run["reason"]  # by hand (faults/test_outside_kills.py)
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
        "from backend.jobs.runner import JobRunner\n"
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
    from backend.jobs.processes import alive
    return alive(pid)


def test_a_standby_worker_trains_the_next_run_and_another_waits_after_it(tiny_model, chat_file):
    """The web app's runner keeps a worker that has loaded the training libraries before Start: the run trains in
    it (same pid), and once the queue is empty again a new one waits. Closing the runner ends the waiting one."""
    runner = JobRunner(standby=True)
    try:
        runner.start()
        assert runner.standby_ready(timeout=180)
        waiting = runner.standby.process
        run_id = runner.submit(tiny_config(tiny_model, chat_file, max_steps=2))
        run = runner.wait(run_id, timeout=300)
        assert run["status"] == "done", run.get("reason")
        assert [m["step"] for m in runner.store.metrics(run_id) if "train_loss" in m] == [1, 2]
        # A new standby is started only after the runner has seen the worker end (and reaped it): joining it here
        # as well would race the runner's thread for its exit status (os.waitpid in two threads, one gets ECHILD).
        assert runner.standby_ready(timeout=180) and runner.standby.pid != waiting.pid
        assert run["pid"] == waiting.pid and waiting.exitcode == 0
        after = runner.standby.process
    finally:
        runner.close()
    after.join(10)
    assert not after.is_alive() and runner.standby is None


def test_a_standby_started_under_other_settings_is_not_used(tiny_model, chat_file, monkeypatch):
    """A setting changed after the standby started (here an environment variable) must reach the run: the old
    standby is ended and the run gets a worker of its own."""
    runner = JobRunner(standby=True)
    try:
        runner.start()
        assert runner.standby_ready(timeout=180)
        stale = runner.standby.process
        monkeypatch.setenv("TUNELOOP_SOMETHING_NEW", "1")
        run = runner.wait(runner.submit(tiny_config(tiny_model, chat_file, max_steps=1)), timeout=300)
        assert run["status"] == "done", run.get("reason")
        assert run["pid"] != stale.pid
        stale.join(10)
        assert not stale.is_alive()
    finally:
        runner.close()


def test_a_standby_that_dies_unused_is_not_restarted_and_runs_still_train(tiny_model, chat_file):
    runner = JobRunner(standby=True)
    try:
        runner.start()
        assert runner.standby_ready(timeout=180)
        dead = runner.standby.process
        dead.kill()
        dead.join(10)
        run = runner.wait(runner.submit(tiny_config(tiny_model, chat_file, max_steps=1)), timeout=300)
        assert run["status"] == "done", run.get("reason")
        assert run["pid"] != dead.pid
        time.sleep(2)  # several turns of the empty queue
        assert runner.standby is None
    finally:
        runner.close()


def test_a_standby_that_ended_just_before_its_run_is_replaced_by_a_worker_of_its_own(tiny_model, chat_file):
    from backend.jobs import launcher
    store = JobRunner().store
    run_id = store.create(tiny_config(tiny_model, chat_file, max_steps=1))
    standby = launcher.Standby(str(workspace.home()))
    assert standby.ready(timeout=180)
    gone = standby.process
    gone.kill()
    gone.join(10)
    handle = standby.take(run_id)
    handle.start()  # the pipe is broken: a worker is spawned for the run instead
    handle.join(300)
    assert handle.pid != gone.pid and handle.exitcode == 0
    assert store.get(run_id)["status"] == "done", store.get(run_id).get("reason")
