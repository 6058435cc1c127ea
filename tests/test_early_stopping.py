"""Early stopping on the held-back loss: declared once, on in the presets, wired into the Trainer, recorded."""
from transformers import TrainerControl, TrainerState, TrainingArguments

from backend.config import build_config, declaration
from backend.models.loading import Hardware
from backend.presets import list_presets, preset_values
from backend.train.callbacks import PatienceCallback, early_stopping_record
from backend.train.common import trainer_arguments

CPU = Hardware(device="cpu", dtype_name="float32", default_quantization="none")


def test_patience_is_declared_once_off_by_default_and_on_in_every_preset_that_holds_examples_back():
    patience = declaration("patience")
    assert patience.default == 0 and patience.meta["min"] == 0 and "held-back" in patience.meta["label"]
    for preset in list_presets():
        for method in ("sft", "dpo", "kto"):
            values = preset_values(preset["name"], method)
            if values.get("validation_split", declaration("validation_split").default) > 0:
                assert values.get("patience", 0) > 0, (preset["name"], method)


def test_with_patience_the_trainer_checks_often_saves_at_each_check_and_loads_the_best(tmp_path):
    config = build_config({"dataset": "x.jsonl", "patience": 3, "max_steps": 40})
    args = trainer_arguments(config, tmp_path, CPU, has_eval=True, train_rows=100)
    assert args["eval_steps"] == args["save_steps"] == 4
    assert (args["load_best_model_at_end"], args["metric_for_best_model"], args["greater_is_better"]) == \
        (True, "eval_loss", False)
    TrainingArguments(**{k: v for k, v in args.items() if k != "max_length"})  # transformers accepts the combination
    nothing_held_back = trainer_arguments(config, tmp_path, CPU, has_eval=False, train_rows=100)
    assert "load_best_model_at_end" not in nothing_held_back
    off = trainer_arguments(build_config({"dataset": "x.jsonl", "max_steps": 40}), tmp_path, CPU, True, 100)
    assert "load_best_model_at_end" not in off and off["eval_steps"] == 10


def evaluate(callback, state, losses, args):
    """Feed evaluations as the Trainer does: logged, the callback, then the best metric updated."""
    control = TrainerControl()
    for step, loss in losses:
        state.global_step = step
        state.log_history.append({"eval_loss": loss, "step": step})
        callback.on_evaluate(args, state, control, metrics={"eval_loss": loss})
        if state.best_metric is None or loss < state.best_metric:
            state.best_metric, state.best_global_step = loss, step
        if control.should_training_stop:
            break
    return control


def test_the_callback_stops_after_patience_checks_without_improvement_and_the_record_says_so(tmp_path):
    args = TrainingArguments(output_dir=str(tmp_path), eval_strategy="steps", save_strategy="steps",
                             load_best_model_at_end=True, metric_for_best_model="eval_loss", greater_is_better=False,
                             report_to="none", use_cpu=True)
    callback, state = PatienceCallback(2), TrainerState(max_steps=40)
    control = evaluate(callback, state, [(4, 2.0), (8, 1.5), (12, 1.6), (16, 1.4), (20, 1.45), (24, 1.5),
                                         (28, 1.3)], args)
    assert control.should_training_stop and callback.fired_at == 24
    record = early_stopping_record(callback, state)
    assert record["fired"] and (record["stopped_at_step"], record["best_step"], record["best_eval_loss"]) == (24, 16, 1.4)
    assert "stopped at step 24 of 40" in record["note"] and "best checkpoint, from step 16" in record["note"]
    calm, state = PatienceCallback(2), TrainerState(max_steps=12)
    assert not evaluate(calm, state, [(4, 2.0), (8, 1.5), (12, 1.4)], args).should_training_stop
    assert not early_stopping_record(calm, state)["fired"]
