"""Trainer callbacks: write logged metrics as they come, and stop gracefully when asked."""
import time
from pathlib import Path

from transformers import EarlyStoppingCallback, TrainerCallback

# Logged keys kept, and the names we store them under.
KEPT = {
    "loss": "train_loss", "eval_loss": "eval_loss", "learning_rate": "learning_rate", "grad_norm": "grad_norm",
    "epoch": "epoch", "num_tokens": "tokens",
    "rewards/chosen": "rewards_chosen", "rewards/rejected": "rewards_rejected",
    "rewards/margins": "rewards_margin", "rewards/accuracies": "rewards_accuracy",
    "eval_rewards/chosen": "eval_rewards_chosen", "eval_rewards/rejected": "eval_rewards_rejected",
    "eval_rewards/margins": "eval_rewards_margin", "eval_rewards/accuracies": "eval_rewards_accuracy",
    "kl": "kl", "mean_token_accuracy": "token_accuracy",
}


class MetricsCallback(TrainerCallback):
    """Turns each log event into one metrics row: step, epoch, losses, rewards, speed and time left."""

    def __init__(self, on_metrics, on_total_steps, tokens_per_example: float):
        self.on_metrics = on_metrics
        self.on_total_steps = on_total_steps
        self.tokens_per_example = tokens_per_example
        self.start = None
        self.start_step = 0
        self.start_tokens = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = time.time()
        self.start_step = state.global_step
        self.on_total_steps(state.max_steps)

    def on_log(self, args, state, control, logs=None, **kwargs):
        row = {KEPT[k]: float(v) for k, v in (logs or {}).items() if k in KEPT and v is not None}
        if not row:
            return
        elapsed = time.time() - (self.start or time.time())
        done = max(state.global_step - self.start_step, 0)
        row["elapsed"] = elapsed
        if done:
            per_step = elapsed / done
            row["eta"] = per_step * max(state.max_steps - state.global_step, 0)
            if "tokens" in row:  # SFT counts the real (unpadded) tokens it trained on
                if self.start_tokens is None:
                    self.start_tokens = row["tokens"] - row["tokens"] / max(done, 1)
                trained = row["tokens"] - self.start_tokens
            else:  # DPO/KTO: estimated from the data's average example length
                trained = (done * args.per_device_train_batch_size * args.gradient_accumulation_steps * args.world_size
                           * self.tokens_per_example)
            row["tokens_per_second"] = trained / max(elapsed, 1e-6)
        row["total_steps"] = state.max_steps
        self.on_metrics(state.global_step, row)


class StopCallback(TrainerCallback):
    """Ends training after the current step when the stop file appears, saving a checkpoint first."""

    def __init__(self, stop_file: Path):
        self.stop_file = Path(stop_file)
        self.stopped = False

    def on_step_end(self, args, state, control, **kwargs):
        if self.asked(args):
            self.stopped = True
            control.should_training_stop = True
            control.should_save = True
        return control

    def asked(self, args) -> bool:
        """Several processes must stop after the same step, or the others wait for the stopped one forever: rank 0
        reads the file (the only one that can, on another computer) and every process goes by its answer."""
        if args.world_size == 1:
            return self.stop_file.exists()
        asked = args.process_index == 0 and self.stop_file.exists()
        import torch
        import torch.distributed as dist
        flag = torch.tensor([int(asked)], device=args.device)
        dist.broadcast(flag, src=0)
        return bool(flag.item())


class PatienceCallback(EarlyStoppingCallback):
    """Transformers' early stopping on the metric the best checkpoint is chosen by, remembering the step at which it
    ended the run. When the checks score the behaviour itself (behaviour_check.SCORE in the metrics), it waits for that
    score to stop rising instead: the checkpoint metric also weighs the everyday answers and the held-back loss, and a
    loss that still falls a little would keep a run going whose answers learned all they will."""

    def __init__(self, patience: int, watch: str | None = None):
        super().__init__(early_stopping_patience=patience)
        self.watch = watch
        self.best_rising = None
        self.fired_at = None

    def on_evaluate(self, args, state, control, metrics, **kwargs):
        if self.watch and self.watch in metrics:
            value = metrics[self.watch]
            if self.best_rising is None or value > self.best_rising:
                self.best_rising, self.early_stopping_patience_counter = value, 0
            elif self.best_rising > 0:
                self.early_stopping_patience_counter += 1
            # else: nothing shown yet is no plateau. identity_zh (seed 7) showed none of it at its first three checks
            # (1.5 passes) and was stopped there; other runs began to show it at their third.
            if self.early_stopping_patience_counter >= self.early_stopping_patience:
                control.should_training_stop = True
        else:
            super().on_evaluate(args, state, control, metrics, **kwargs)
        if control.should_training_stop and self.early_stopping_patience_counter >= self.early_stopping_patience:
            self.fired_at = state.global_step


def early_stopping_record(callback: PatienceCallback, state) -> dict:
    """What the run record says about early stopping: whether it fired, where, and which checkpoint was kept."""
    best_step = state.best_global_step
    record = {"patience": callback.early_stopping_patience, "fired": callback.fired_at is not None,
              "stopped_at_step": callback.fired_at, "best_step": best_step,
              "best_eval_loss": best_eval_loss(state)}
    if callback.fired_at is not None:
        what = ("the held-back answers showed no more of what the examples teach" if callback.best_rising is not None
                else "the held-back loss did not improve")
        loss = record["best_eval_loss"]
        record["note"] = (f"{what} for {callback.early_stopping_patience} checks in a row, so training stopped at "
                          f"step {callback.fired_at} of {state.max_steps}; the adapter kept is the best checkpoint, "
                          f"from step {best_step}" + (f" (held-back loss {loss:.4g})." if loss is not None else "."))
    else:
        record["note"] = (f"on (patience {callback.early_stopping_patience}) but not needed: the run went to its end; "
                          f"the adapter kept is the best checkpoint, from step {best_step}.")
    return record


def best_eval_loss(state) -> float | None:
    """The held-back loss at the kept checkpoint (the best metric is not always that loss: behaviour_check.METRIC)."""
    losses = [h["eval_loss"] for h in state.log_history if "eval_loss" in h and h.get("step") == state.best_global_step]
    return float(losses[-1]) if losses else None
