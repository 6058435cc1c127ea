"""kill -9 mid-write: during a checkpoint save (then resume), an adapter save, an export and an everyday-answers cache
write. Each process is killed by itself at a chosen file event (tests/faults/crash.py), so the moment is exact."""
import json
import os
import signal

import pytest

from backend import workspace
from backend.db import connect
from backend.jobs.runner import JobRunner
from backend.runs import RunStore
from tests.conftest import tiny_config
from tests.faults import crash


def test_kill_during_a_checkpoint_save_then_resume_from_the_last_complete_one(tiny_model, chat_file, home):
    from backend.jobs import worker
    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, chat_file, max_steps=12, save_every=4))
    assert store.claim(run_id)
    code = crash.run_until_killed(crash.opening("checkpoint-8", "trainer_state.json"), worker.main, run_id, str(home))
    assert code == -signal.SIGKILL
    checkpoints = workspace.run_dir(run_id) / "checkpoints"
    assert not (checkpoints / "checkpoint-8" / "trainer_state.json").exists()  # the save was cut short
    assert (checkpoints / "checkpoint-8" / "adapter_model.safetensors").exists()
    assert (checkpoints / "checkpoint-4" / "trainer_state.json").exists()

    run, log = resumed_to_the_end(run_id, orphaned=True)
    assert "Skipped checkpoint-8: no trainer_state.json (its save was cut short)." in log
    assert "Resuming from checkpoint-4." in log
    steps = [m["step"] for m in RunStore(connect()).metrics(run_id) if "train_loss" in m]
    assert steps[-8:] == [5, 6, 7, 8, 9, 10, 11, 12]  # went on from step 4, through a new checkpoint-8, to the end
    assert run["final_metrics"]["steps"] == 12


def resumed_to_the_end(run_id: str, orphaned: bool = False) -> tuple[dict, str]:
    """Resume the run in a new runner, as the app's next start would, and wait for its end: (the run, its log).
    orphaned: the new runner must first have found the run, whose worker was killed, failed."""
    runner = JobRunner()
    try:
        if orphaned:
            assert runner.store.get(run_id)["status"] == "failed"
        runner.resume(run_id)
        run = runner.wait(run_id, timeout=600)
    finally:
        runner.close()
    assert run["status"] == "done", run.get("reason")
    return run, (workspace.run_dir(run_id) / "train.log").read_text()


def test_a_torn_optimizer_file_is_skipped_and_resume_goes_on_from_the_one_before(tiny_model, chat_file, home):
    """A checkpoint whose trainer_state.json is there but whose optimizer.pt was cut short (a power cut before the
    disk had it all): resume read it and failed with "PytorchStreamReader failed reading zip archive", every time."""
    from backend.jobs import worker
    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, chat_file, max_steps=10, save_every=2))
    assert store.claim(run_id)
    code = crash.run_until_killed(crash.opening("checkpoint-8"), worker.main, run_id, str(home))
    assert code == -signal.SIGKILL
    checkpoints = workspace.run_dir(run_id) / "checkpoints"
    assert (checkpoints / "checkpoint-6" / "trainer_state.json").exists()
    optimizer = checkpoints / "checkpoint-6" / "optimizer.pt"
    os.truncate(optimizer, optimizer.stat().st_size // 2)

    run, log = resumed_to_the_end(run_id)
    assert "Skipped checkpoint-6: optimizer.pt is cut short." in log
    assert "Resuming from checkpoint-4." in log
    assert run["final_metrics"]["steps"] == 10


def test_each_file_resume_reads_is_checked(tmp_path):
    from backend.train.checkpoints import problem
    from safetensors.torch import save_file
    import torch

    folder = tmp_path / "checkpoint-2"
    folder.mkdir()
    save_file({"w": torch.ones(8, 8)}, str(folder / "adapter_model.safetensors"))
    (folder / "trainer_state.json").write_text(json.dumps({"global_step": 2}))
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        torch.save({"state": torch.ones(256)}, folder / name)
    assert problem(folder) is None
    for name in ("optimizer.pt", "scheduler.pt", "rng_state.pth"):
        whole = (folder / name).read_bytes()
        (folder / name).write_bytes(whole[: len(whole) // 2])
        assert problem(folder) == f"{name} is cut short"
        (folder / name).write_bytes(b"")
        assert problem(folder) == f"{name} is cut short"
        (folder / name).write_bytes(whole)
    (folder / "adapter_config.json").write_text('{"r": 4, "lora_al')
    assert problem(folder) == "adapter_config.json is cut short"


def test_a_checkpoint_with_weights_cut_short_is_skipped(tmp_path):
    from backend.train.checkpoints import latest_complete, safetensors_whole
    from safetensors.torch import save_file
    import torch

    for step in (2, 4):
        folder = tmp_path / f"checkpoint-{step}"
        folder.mkdir()
        save_file({"w": torch.ones(64, 64)}, str(folder / "adapter_model.safetensors"))
        (folder / "trainer_state.json").write_text(json.dumps({"global_step": step}))
    weights = tmp_path / "checkpoint-4" / "adapter_model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-100])  # a crash in the middle of writing the weights
    assert not safetensors_whole(weights)
    seen = []
    assert latest_complete(tmp_path, seen.append) == tmp_path / "checkpoint-2"
    assert seen == ["Skipped checkpoint-4: adapter_model.safetensors is cut short. Removed it; resuming from the one "
                    "before."]


def _save_adapter(tiny_model, adapter_dir, seed):
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from backend.train.checkpoints import save_adapter
    torch.manual_seed(seed)
    model = get_peft_model(AutoModelForCausalLM.from_pretrained(tiny_model),
                           LoraConfig(r=4, target_modules=["q_proj"], init_lora_weights=False))
    save_adapter(model, adapter_dir)


def test_kill_during_an_adapter_save_leaves_the_previous_adapter_whole(tiny_model, tmp_path):
    adapter = tmp_path / "adapter"
    _save_adapter(tiny_model, adapter, seed=0)
    before = {p.name: p.read_bytes() for p in adapter.iterdir()}
    code = crash.run_until_killed(crash.opening("/.adapter.", "adapter_config.json"), _save_adapter, tiny_model,
                                  adapter, 1)
    assert code == -signal.SIGKILL
    assert {p.name: p.read_bytes() for p in adapter.iterdir()} == before  # untouched, and it still loads
    from tests.conftest import model_with_adapter
    model_with_adapter(tiny_model, adapter)
    _save_adapter(tiny_model, adapter, seed=1)  # the next save replaces it whole
    assert (adapter / "adapter_model.safetensors").read_bytes() != before["adapter_model.safetensors"]


def _export(out, run_id, home):
    os.environ["TUNELOOP_HOME"] = home
    from backend.export.merged import export_run
    export_run(RunStore(connect()), run_id, out)


def test_kill_during_an_export_leaves_no_finished_looking_folder(tiny_model, tmp_path, home):
    from tests.fake_runs import fake_run
    run_id = fake_run(tiny_model)
    out = tmp_path / "exported"
    mine = tmp_path / "exported.partial"  # a folder of the user's that happens to have the old temporary name
    mine.mkdir()
    (mine / "keep.txt").write_text("mine")
    code = crash.run_until_killed(crash.opening(".exported.", ".partial", "README.md"), _export, out, run_id,
                                  str(home))
    assert code == -signal.SIGKILL
    assert not out.exists()  # killed after the weights, before the rename: nothing looks finished
    assert (mine / "keep.txt").read_text() == "mine"
    _export(out, run_id, str(home))  # exporting again works
    assert {"config.json", "model.safetensors", "README.md"} <= {p.name for p in out.iterdir()}
    assert (mine / "keep.txt").read_text() == "mine"


def _cache(tiny_model, home, cache):
    os.environ["TUNELOOP_HOME"], os.environ["TUNELOOP_MODEL_CACHE"] = home, cache
    from backend.evaluation.rehearsal import rehearsal_examples
    from tests.conftest import model_with_adapter
    model, tokenizer = model_with_adapter(tiny_model)
    return rehearsal_examples(model, tokenizer, "tiny|fault-test", 3)


@pytest.mark.parametrize("moment", ["opening", "renaming"])
def test_kill_during_an_everyday_answers_cache_write(tiny_model, home, tmp_path, moment):
    cache = tmp_path / "cache"
    folder = cache / "replay"
    matches = crash.opening("/replay/", ".tmp") if moment == "opening" else crash.renaming_to(".json")
    code = crash.run_until_killed(matches, _cache, tiny_model, str(home), str(cache))
    assert code == -signal.SIGKILL
    assert not list(folder.glob("*.json"))  # no cache file at all, rather than half of one
    rows = _cache(tiny_model, str(home), str(cache))  # the next run makes it again
    written = list(folder.glob("*.json"))
    assert len(written) == 1 and len(json.loads(written[0].read_text())) == 3
    assert len(rows) <= 3
