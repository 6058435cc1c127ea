"""Run one training job in this process: data in, adapter and probe result out."""
import os
import random
import time
from pathlib import Path

# Set before torch loads its OpenMP runtime, which reads it once: threads that wait for work sleep instead of
# spinning. On a CPU shared with other work (the app answering a chat, other programs) spinning threads steal the
# cores the working ones need: on 2 busy cores, 26 s per step instead of 144 s (docs/benchmarks.md).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from backend import workspace  # noqa: E402  (after the setting above)
from backend.config import METHOD_TABLE, RunConfig  # noqa: E402
from backend.train.behaviour_check import SCORE, BehaviourCheck  # noqa: E402
from backend.train.callbacks import MetricsCallback, PatienceCallback, StopCallback, best_eval_loss, early_stopping_record  # noqa: E402,E501
from backend.train.checkpoints import latest_complete, save_adapter  # noqa: E402
from backend.train.common import prepare_model, trainer_arguments  # noqa: E402


def run_training(config: RunConfig, run_dir: Path, train_rows: list, eval_rows: list, *,
                 on_metrics, on_total_steps, base_adapter: Path | None = None, resume: bool = False,
                 log=print) -> dict:
    """Train, save the adapter to run_dir/adapter, probe forgetting, answer the held-back examples before and after.
    Returns {'stopped', 'probe', 'heldout', 'metrics', 'outcome'} (outcome: what it trained on and how it ended)."""
    from backend.config import batch_plan
    from backend.ranks import Ranks, sharded
    from backend.models.loading import detect_hardware, load_tokenizer, resolve_model
    from backend.train.adapter_casts import train_with_autocast_inputs
    from backend.train.dpo import build_dpo_trainer
    from backend.train.kto import build_kto_trainer
    from backend.train.lm_head import score_labelled_positions_only
    from backend.train.memory_plan import plan_checkpointing
    from backend.train.sft import build_sft_trainer

    # Several processes (backend/jobs/launcher.py): each trains on its share of every step; rank 0 alone writes.
    ranks = Ranks.here()
    together = ranks.join(detect_hardware())
    # Decided before the model is loaded, from the memory that is free for it (by rank 0, for all: the same graph).
    checkpointing, why = ranks.same_everywhere(together, plan_checkpointing(
        config, train_rows, load_tokenizer(config.model), detect_hardware()))
    prepared = prepare_model(config, base_adapter)
    examples = len(train_rows)
    person_rows = train_rows
    log(f"Model loaded on {prepared.hardware.device} ({prepared.hardware.dtype_name}, "
        f"{'QLoRA 4-bit' if prepared.quantization == '4bit' else 'LoRA'}).")
    layout = f" ({config.strategy.upper()}, this is rank {ranks.rank})" if ranks.world > 1 else ""
    log(f"Batch: {batch_plan(config, ranks.world).describe()}{layout}.")
    their_way = 0  # how many of them are answered in the examples' way
    # A resumed run mixes them in too: it must go on over the rows it began with (they are cached: read, not made).
    if METHOD_TABLE[config.method].rehearses and config.rehearsal:
        from contextlib import nullcontext

        from backend.evaluation.rehearsal import rehearsal_key, rehearsal_examples
        key = rehearsal_key(resolve_model(config.model), prepared.quantization, base_adapter)
        # The first process of each computer makes and caches the answers; the others then read them.
        with together.local_main_process_first() if together else nullcontext():
            extra = rehearsal_examples(prepared.model, prepared.tokenizer, key, config.rehearsal, config.method)
        began = time.monotonic()
        if extra and config.method == "sft" and asks_about_anything(person_rows):
            if sharded():  # the model waits on the CPU for FSDP or DeepSpeed to split it: answering there could
                # outlast the other processes' wait for the rows (10 minutes by default with NCCL)
                from backend.evaluation.rehearsal import has_their_way
                if has_their_way(person_rows, extra):
                    log("Your examples answer every kind of question one way, but with the model split across "
                        "processes (FSDP or DeepSpeed) the everyday answers are rehearsed plainly: with DDP or one "
                        "process they would be rehearsed in that way.")
            else:  # every process must train on the same rows: rank 0 answers them (and keeps them for a resume)
                extra, their_way = ranks.made_by_main(together, lambda: rehearsed_in_their_way(
                    prepared, extra, person_rows, config.seed, run_dir / REHEARSAL_FILE, resume, log=log))
        if their_way:
            log(f"Mixing in {len(extra)} everyday answers from the base model, so it keeps them; {their_way} of them "
                f"in your examples' way ({time.monotonic() - began:.0f} s).")
        elif extra:
            log(f"Mixing in {len(extra)} everyday answers from the base model, so it keeps them.")
        else:  # every answer was cut off or failed its check: say that the guard against forgetting is off
            log(f"None of the {config.rehearsal} everyday answers from the base model passed its check, so none "
                "are mixed in: nothing guards against forgetting in this run.")
        train_rows = train_rows + extra
    outcome = {"train_examples": examples, "heldout_examples": len(eval_rows), "everyday_mixed": len(train_rows) - examples}
    if their_way:
        outcome["everyday_their_way"] = their_way
    if config.method == "kto":
        train_rows = mixed(train_rows, config.seed)
    stop = StopCallback(run_dir / workspace.STOP_FILE)
    metrics = MetricsCallback(on_metrics, on_total_steps, _tokens_per_example(prepared.tokenizer, train_rows))
    if why:
        log(why)
    # SFT with held-back examples checks the behaviour itself at each check (backend/train/behaviour_check.py).
    check = BehaviourCheck(prepared.tokenizer, person_rows, eval_rows, on_check=on_metrics, log=log) \
        if config.method == "sft" and eval_rows and ranks.world == 1 else None
    args = trainer_arguments(config, run_dir / "checkpoints", prepared.hardware, bool(eval_rows), len(train_rows),
                             gradient_checkpointing=checkpointing, processes=ranks.world,
                             behaviour=bool(check and check.active))
    patience = PatienceCallback(config.patience, watch=SCORE) if args.get("load_best_model_at_end") else None
    callbacks = [metrics, stop] + ([check] if check else []) + ([patience] if patience else [])
    score_labelled_positions_only()  # TRL's LM head, on the CPU too (backend/train/lm_head.py)
    builders = {
        "sft": lambda: build_sft_trainer(prepared, args, train_rows, eval_rows, callbacks, log=log),
        "dpo": lambda: build_dpo_trainer(prepared, args, train_rows, eval_rows, callbacks, config.beta),
        "kto": lambda: build_kto_trainer(prepared, args, train_rows, eval_rows, callbacks, config.beta),
    }
    trainer = builders[config.method]()
    checkpoint = latest_complete(run_dir / "checkpoints", log) if resume else None
    if checkpoint:
        log(f"Resuming from {checkpoint.name}.")
    # backend/train/adapter_casts.py: no float32 round trip of every adapter's input under autocast
    train_with_autocast_inputs(trainer, resume_from_checkpoint=str(checkpoint) if checkpoint else None)
    if patience and not stop.stopped:
        outcome["early_stopping"] = early_stopping_record(patience, trainer.state)
        log(f"Early stopping: {outcome['early_stopping']['note']}")
    save_trained_adapter(trainer, run_dir / "adapter", ranks)
    final = {}
    if check and check.active and check.parts is None and not stop.stopped:
        check.start(trainer.model)  # a run shorter than its first check: the signature is still what "learned" reads
    if check and check.record():
        outcome["behaviour_checks"] = check.record()
    if patience and best_eval_loss(trainer.state) is not None:
        # The kept adapter is the best checkpoint, whose held-back loss is known; evaluating it again would log a
        # last point on the curve that hides the rise early stopping saw.
        final["eval_loss"] = best_eval_loss(trainer.state)
    elif eval_rows and not stop.stopped:
        final.update({k: float(v) for k, v in trainer.evaluate().items() if isinstance(v, (int, float))})
    history = [h for h in trainer.state.log_history if "loss" in h]
    if history:
        final["train_loss"] = float(history[-1]["loss"])
    final["steps"] = trainer.state.global_step
    checks = [what for what, due in ((PROBE_CHECK, config.probe), (HELDOUT_CHECK, bool(eval_rows)))
              if due and not stop.stopped and ranks.main]

    def checking(what: str):  # a phase of its own in Progress and on the command line: minutes on a CPU
        on_metrics(final["steps"], {"checking": what, "check": checks.index(what) + 1, "of_checks": len(checks)})

    probe = None
    if PROBE_CHECK in checks:
        from backend.evaluation.probe import run_probe
        checking(PROBE_CHECK)
        probe = run_probe(trainer.model, prepared.tokenizer, config.to_dict())
        log(probe["summary"])
    heldout = None
    if HELDOUT_CHECK in checks:
        from backend.evaluation.heldout import heldout_comparison
        checking(HELDOUT_CHECK)
        heldout = heldout_comparison(trainer.model, prepared.tokenizer, eval_rows,
                                     parts=check.parts if check else None,
                                     base_answers=check.base_answers if check else None)
        log(f"Held-back examples, {heldout['metric']} against the reference: base {heldout['base_mean']}, "
            f"tuned {heldout['tuned_mean']} ({heldout['count']} examples).")
        if heldout.get("behaviour"):
            log(f"Held-back examples, what the examples teach: {heldout['behaviour']['summary']}.")
            # Questions like the examples' own cannot show whether it says who it is when asked in other words.
            from backend.evaluation.reworded import reworded_check
            reworded = reworded_check(trainer.model, prepared.tokenizer, check.parts, check.train_prompts,
                                      check.train_answers, system=check.system)
            if reworded:
                heldout["behaviour"]["reworded"] = reworded
                log(f"Asked about itself in other words, it {reworded['summary']}.")
    return {"stopped": stop.stopped, "probe": probe, "heldout": heldout, "metrics": final, "outcome": outcome}


PROBE_CHECK = "the forgetting probe"  # after training: what it kept (backend/evaluation/probe.py)
HELDOUT_CHECK = "the held-back examples"  # what it learned (backend/evaluation/heldout.py)


def mixed(rows: list, seed: int) -> list:
    """The rows in a seeded random order. TRL's KTO trainer must read rows in order (train_sampling_strategy
    "sequential": each row's KL answer is taken from its neighbour), so it never shuffles: unmixed, the rehearsed
    answers (appended last) and the person's thumbs (in the order given) fill whole batches of only good or only bad
    answers, at the same steps every epoch, and a run trained so keeps fewer everyday answers than one on mixed rows."""
    rows = list(rows)
    random.Random(seed).shuffle(rows)
    return rows


def save_trained_adapter(trainer, adapter_dir: Path, ranks):
    """The trained adapter, by rank 0. Split by FSDP or DeepSpeed, every process hands in its part (the Trainer
    gathers it whole, as PEFT's FSDP guide does); whole in each process (DDP, or one process), rank 0 writes its own,
    swapped in whole (checkpoints.save_adapter)."""
    if getattr(trainer, "is_fsdp_enabled", False) or getattr(trainer, "is_deepspeed_enabled", False):
        if trainer.is_fsdp_enabled:
            trainer.accelerator.state.fsdp_plugin.set_state_dict_type("FULL_STATE_DICT")
        trainer.save_model(str(adapter_dir))
    elif ranks.main:
        save_adapter(trainer.model, adapter_dir, selected_adapters=["default"])


def _tokens_per_example(tokenizer, rows: list) -> float:
    """Average tokens in an example, from a sample: used to report tokens per second for every method."""
    sample = rows[:50]
    if not sample:
        return 0.0
    total = 0
    for row in sample:
        prompt = row.get("messages") or row.get("prompt") or []
        answers = [row[k] for k in ("chosen", "rejected", "completion") if k in row] or [[]]
        for answer in answers:  # DPO runs the prompt once with each answer
            total += len(tokenizer.apply_chat_template(prompt + answer, tokenize=True, return_dict=False))
    return total / len(sample)


# The rehearsal answered in the examples' way, kept with the run: a resumed run goes on over the rows it began with.
REHEARSAL_FILE = "rehearsal_their_way.json"


def asks_about_anything(rows: list) -> bool:
    """Whether the examples' questions are about anything (backend/evaluation/behaviour.asks_about_anything)."""
    from backend.evaluation.behaviour import asks_about_anything as about_anything
    from backend.evaluation.heldout import heldout_cases
    return about_anything([c["prompt"] for c in heldout_cases(rows)])


def rehearsed_in_their_way(prepared, rows: list, examples: list, seed: int, path: Path, resume: bool, log=print):
    """(rows, how many in the examples' way): made once per run and kept in `path` (backend/evaluation/rehearsal.py,
    in_their_way). A resumed run goes on over the rows it began with: those kept, or the plain ones for a run begun
    before they were kept."""
    import json
    from backend.evaluation.rehearsal import in_their_way
    if resume:
        try:
            kept = json.loads(path.read_text())
            return kept["rows"], kept["their_way"]
        except FileNotFoundError:
            return rows, 0
        except (ValueError, KeyError, TypeError):  # cut short or damaged: made again, as they were made (greedy)
            pass
    rows, count = in_their_way(prepared.model, prepared.tokenizer, rows, examples, seed, log=log)
    workspace.write_text_atomic(path, json.dumps({"rows": rows, "their_way": count}, ensure_ascii=False))
    return rows, count
