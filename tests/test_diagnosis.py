"""In plain words: findings from synthetic metric rows, one per problem, and none for a clean run."""
import json
import math
import random

import pytest

from backend.evaluation.diagnosis import diagnose

QUICK = {"method": "sft", "learning_rate": 5e-4, "batch_size": 8, "grad_accum": 1, "epochs": 3.0, "max_steps": 0,
         "rehearsal": 60, "beta": 0.1}
GOOD_PROBE = {"asked": 41, "base_right": 41, "kept": 40, "lost": {"arithmetic": 1}}


def rows(train_losses, eval_losses=(), eval_every=None, steps_per_epoch=10, seed=0):
    """Metric rows as RunStore.metrics returns them: one per logged step, evaluations as their own rows."""
    out = []
    for step, loss in enumerate(train_losses, start=1):
        out.append({"step": step, "train_loss": loss, "learning_rate": 5e-4, "grad_norm": 1.0,
                    "epoch": step / steps_per_epoch})
    every = eval_every or max(1, len(train_losses) // max(1, len(eval_losses)))
    for i, loss in enumerate(eval_losses, start=1):
        out.append({"step": i * every, "eval_loss": loss, "epoch": i * every / steps_per_epoch})
    return sorted(out, key=lambda r: r["step"])


def falling(start, end, steps, noise=0.08, seed=0):
    rng = random.Random(seed)
    return [(start + (end - start) * i / (steps - 1)) * (1 + rng.uniform(-noise, noise)) for i in range(steps)]


def codes(findings):
    return [f["code"] for f in findings]


def test_a_clean_run_gives_no_finding():
    findings = diagnose(rows(falling(2.5, 0.8, 30), [1.9, 1.5, 1.3, 1.25]), GOOD_PROBE, QUICK, train_examples=80)
    assert findings == []


def test_overfitting_held_back_loss_rises_while_training_loss_falls():
    findings = diagnose(rows(falling(2.5, 0.1, 40), [1.6, 1.2, 1.1, 1.4, 1.8], eval_every=8), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["overfitting"]
    finding = findings[0]
    assert "lowest at step 24 (1.1)" in finding["detail"] and "1.8" in finding["detail"]
    assert finding["try_settings"] == {"epochs": 2.4}  # the epoch of step 24, where it was lowest
    limited = diagnose(rows(falling(2.5, 0.1, 40), [1.6, 1.2, 1.1, 1.4, 1.8], eval_every=8), GOOD_PROBE,
                       dict(QUICK, max_steps=40), 80)
    assert limited[0]["try_settings"] == {"max_steps": 24}


def test_a_held_back_loss_that_wobbles_is_not_overfitting():
    findings = diagnose(rows(falling(2.5, 0.8, 40), [1.5, 1.2, 1.15, 1.2, 1.18], eval_every=8), GOOD_PROBE, QUICK, 80)
    assert findings == []


def test_early_stopping_that_fired_counts_a_small_rise_and_says_the_best_was_kept():
    history = rows(falling(2.5, 0.5, 32), [1.5, 1.2, 1.15, 1.2, 1.18, 1.19], eval_every=5)
    assert diagnose(history, GOOD_PROBE, QUICK, 80) == []  # without early stopping: a wobble
    fired = {"fired": True, "best_step": 15, "stopped_at_step": 30, "patience": 3}
    (finding,) = diagnose(history, GOOD_PROBE, QUICK, 80, early_stopping=fired)
    assert finding["code"] == "overfitting" and "lowest at step 15" in finding["detail"]
    assert finding["next_step"].startswith("Early stopping already kept the adapter from step 15")
    assert diagnose(history, GOOD_PROBE, QUICK, 80, early_stopping=dict(fired, fired=False)) == []


def test_nan_loss_is_named_and_nothing_else_about_the_loss():
    losses = falling(2.5, 1.0, 20)
    losses[12:] = [math.nan] * 8
    findings = diagnose(rows(losses), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["nan_loss"]
    assert "step 13" in findings[0]["detail"] and findings[0]["try_settings"] == {"learning_rate": 5e-5}


def test_diverging_loss():
    findings = diagnose(rows(falling(1.8, 4.0, 25, noise=0.03)), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["diverging"]
    assert "learning rate" in findings[0]["title"]
    assert findings[0]["try_settings"] == {"learning_rate": 0.00013}


def test_spikes_mean_a_learning_rate_too_high_but_one_odd_batch_does_not():
    losses = falling(2.5, 0.8, 30, noise=0.05)
    losses[10] *= 3.5
    assert diagnose(rows(losses), GOOD_PROBE, QUICK, 80) == []
    losses[20] *= 3.0
    findings = diagnose(rows(losses), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["spikes"]
    assert "2 times" in findings[0]["detail"] and "step 11" in findings[0]["detail"]
    assert findings[0]["try_settings"] == {"learning_rate": 0.00025}


def test_gradient_norms_that_jump_mean_a_learning_rate_too_high_even_when_the_loss_looks_calm():
    metric_rows = rows(falling(2.5, 0.8, 20, noise=0.05))
    calm = [1.2, 0.9, 1.5, 0.7, 1.1, 1.8, 0.6, 1.3, 0.9, 1.6, 0.8, 1.0, 1.4, 0.7, 1.2, 0.9, 1.1, 0.8, 1.0, 0.9]
    for row, norm in zip(metric_rows, calm):
        row["grad_norm"] = norm
    assert diagnose(metric_rows, GOOD_PROBE, QUICK, 80) == []
    for row, norm in zip(metric_rows, [2.0, 2.1, 2.9, 2.6, 7.7, 19.0, 23.6, 10.8, 41.3, 26.8, 11.6, 10.2, 51.7, 5.3]):
        row["grad_norm"] = norm  # the gradient norms of a real run at 20x the quick preset's learning rate
    findings = diagnose(metric_rows, GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["spikes"]
    assert "up to 51.7 (20x) at step 13" in findings[0]["detail"] and "loss jumped" not in findings[0]["detail"]


def test_one_huge_gradient_jump_is_enough_one_moderate_one_is_not():
    metric_rows = rows(falling(2.5, 0.8, 16, noise=0.05))
    norms = [1.9, 2.2, 3.0, 2.6, 6.7, 9.4, 6.4, 5.9, 8.8, 4.4, 1.8, 1.8, 30.0, 1.6, 1.2, 0.1]
    for row, norm in zip(metric_rows, norms):
        row["grad_norm"] = norm
    assert diagnose(metric_rows, GOOD_PROBE, QUICK, 80) == []  # 30 is 11.7x the early 2.6: one jump, not huge
    metric_rows[12]["grad_norm"] = 54.3  # a real run at 20x the quick preset's learning rate: 21x
    assert codes(diagnose(metric_rows, GOOD_PROBE, QUICK, 80)) == ["spikes"]


def test_a_loss_that_barely_moved():
    findings = diagnose(rows(falling(2.0, 1.96, 20, noise=0.01)), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["learned_little"]
    # three times the quick preset's 5e-4 would be 0.0015, past the usual range that the Train tab warns about
    assert findings[0]["try_settings"] == {"learning_rate": 0.001}
    assert "raise the learning rate to 0.001 (the top of the usual range; three times this run's, 0.0015, is above " \
           "it)" in findings[0]["next_step"]


def test_a_loss_that_began_low_had_little_to_learn():
    findings = diagnose(rows(falling(0.2, 0.198, 20, noise=0.01)), GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["learned_little"]
    assert "already" in findings[0]["title"] and findings[0]["try_settings"] == {}


def test_too_few_examples_for_the_batch_size():
    findings = diagnose(rows(falling(2.5, 0.8, 6)), GOOD_PROBE, QUICK, train_examples=12)
    assert codes(findings) == ["too_few_examples"]
    assert "12 training examples" in findings[0]["detail"] and "1.5 updates per pass" in findings[0]["detail"]
    assert findings[0]["try_settings"] == {"batch_size": 4, "grad_accum": 1}
    assert diagnose(rows(falling(2.5, 0.8, 6)), GOOD_PROBE, QUICK, train_examples=24) == []


def test_forgetting_from_the_probe():
    probe = {"asked": 41, "base_right": 40, "kept": 26, "lost": {"facts": 4, "arithmetic": 10}}
    findings = diagnose(rows(falling(2.5, 0.8, 30)), probe, QUICK, 80)
    assert codes(findings) == ["forgetting"]
    assert "still answers 26 (14 lost: 4 facts, 10 arithmetic)" in findings[0]["detail"]
    one = diagnose(rows(falling(2.5, 0.8, 30)), dict(probe, lost={"facts": 1, "refusal": 13}), QUICK, 80)
    assert "(14 lost: 1 fact, 13 refusals)" in one[0]["detail"]  # named as the probe's summary names them
    assert findings[0]["try_settings"] == {"learning_rate": 0.00025, "rehearsal": 120}
    dpo = diagnose(rows(falling(0.69, 0.3, 30)), probe, dict(QUICK, method="dpo", learning_rate=2e-4, beta=0.5), 80)
    assert dpo[0]["try_settings"] == {"learning_rate": 1e-4, "beta": 1.0}


def test_several_problems_at_once_are_all_named_most_serious_first():
    probe = {"asked": 41, "base_right": 40, "kept": 20}
    findings = diagnose(rows(falling(1.8, 4.0, 25, noise=0.03)), probe, QUICK, train_examples=10)
    assert codes(findings) == ["diverging", "forgetting", "too_few_examples"]


@pytest.mark.parametrize("probe", [None, {"asked": 41, "base_right": 0, "kept": 0}])
def test_findings_are_json_and_complete(probe):
    findings = diagnose(rows(falling(1.8, 4.0, 25)), probe, QUICK, 10)
    json.dumps(findings)
    for finding in findings:
        assert set(finding) == {"code", "title", "detail", "next_step", "try_settings"}
        assert finding["next_step"].count(". ") == 0 and finding["next_step"].endswith(".")


def test_gradient_jumps_inside_the_first_steps_count_too():
    metric_rows = rows(falling(2.5, 0.2, 16, noise=0.05))
    for row, norm in zip(metric_rows, [2.047, 2.478, 3.223, 2.721, 13.963, 16.167, 3.816, 1.688, 3.601, 2.8, 1.274,
                                       0.887, 0.618, 0.705, 0.328, 0.729]):
        row["grad_norm"] = norm  # a real run at 20x the quick preset's learning rate, no rehearsal, 16 steps
    findings = diagnose(metric_rows, GOOD_PROBE, QUICK, 80)
    assert codes(findings) == ["spikes"] and "2 times, up to 16.2" in findings[0]["detail"]


def test_a_loss_jump_and_a_gradient_jump_at_the_same_step_mean_a_learning_rate_too_high():
    """A real run at 20x the quick preset's learning rate on a CPU with native bf16: one loss jump and one gradient
    jump, each alone not enough, at the same step (6)."""
    losses = [3.591, 2.503, 2.057, 0.832, 1.822, 4.967, 2.082, 0.621, 0.469, 0.514, 0.299, 0.497, 0.131, 0.324, 0.098,
              0.127]
    norms = [2.5, 2.02, 3.0, 2.59, 12.51, 32.69, 12.87, 2.02, 2.67, 11.33, 2.24, 2.56, 1.15, 1.93, 0.55, 0.88]
    metric_rows = rows(losses)
    for row, norm in zip(metric_rows, norms):
        row["grad_norm"] = norm
    findings = diagnose(metric_rows, GOOD_PROBE, QUICK, 80)
    assert "spikes" in codes(findings)
    spikes = next(f for f in findings if f["code"] == "spikes")
    assert "1 time (step 6: 2.06 -> 4.97)" in spikes["detail"] and "up to 32.7 (13x) at step 6" in spikes["detail"]
    metric_rows[5]["train_loss"] = 1.9  # the same gradient jump with a calm loss: one moderate jump, not enough
    assert "spikes" not in codes(diagnose(metric_rows, GOOD_PROBE, QUICK, 80))


# Issue 26, item 7: learning rate 0.01 (20x the quick preset's) for 8 steps, early stopping on; the held-back loss
# went 1.68 -> 2.20 -> 1.73 and the run was called memorised, with "Try this: max_steps 2".
HOT = dict(QUICK, learning_rate=0.01, max_steps=8)
EIGHT_STEPS = [2.1, 1.7, 1.5, 1.4, 1.3, 1.1, 0.9, 0.8]


def eight_steps(eval_losses):
    """8 logged steps with a falling training loss, held-back checks at steps 2, 5 and 8."""
    out = [{"step": step, "train_loss": loss, "grad_norm": 1.0, "epoch": step / 4}
           for step, loss in enumerate(EIGHT_STEPS, start=1)]
    out += [{"step": step, "eval_loss": loss, "epoch": step / 4} for step, loss in zip((2, 5, 8), eval_losses)]
    return sorted(out, key=lambda r: r["step"])


def test_a_held_back_loss_that_jumps_and_comes_back_names_the_learning_rate_not_memorising():
    fired = {"fired": True, "best_step": 2, "stopped_at_step": 8, "patience": 2}
    (finding,) = diagnose(eight_steps([1.68, 2.20, 1.73]), GOOD_PROBE, HOT, 80, early_stopping=fired)
    assert finding["code"] == "spikes" and "the learning rate looks too high" in finding["title"]
    assert "1.68 -> 2.2 at step 5 -> 1.73" in finding["detail"] and "a learning rate of 0.01" in finding["detail"]
    assert finding["try_settings"] == {"learning_rate": 0.001} and "max_steps" not in finding["next_step"]
    assert "(the top of the usual range; half of this run's, 0.005, is above it)" in finding["next_step"]


def test_a_suggested_learning_rate_stays_in_the_range_the_train_tab_does_not_warn_about():
    """'Try this' on the walk's run filled in 0.005, and the Train tab then said "0.005, above the usual range (up to
    0.001)": two screens disagreeing. Raised or lowered, the suggestion stays inside the usual range; at its edge,
    the rate is not offered as the change."""
    from backend.config import build_config, unusual_settings
    fired = {"fired": True, "best_step": 2, "stopped_at_step": 8, "patience": 2}
    for config, rows_ in [(HOT, eight_steps([1.68, 2.20, 1.73])), (QUICK, rows(falling(2.0, 1.96, 20, noise=0.01)))]:
        (finding,) = diagnose(rows_, GOOD_PROBE, config, 80, early_stopping=fired if config is HOT else None)
        tried = build_config({**config, "dataset": "d.jsonl", **finding["try_settings"]})
        assert finding["try_settings"] and unusual_settings(tried) == [], (finding, unusual_settings(tried))
    at_top = dict(QUICK, learning_rate=1e-3)
    (finding,) = diagnose(rows(falling(2.0, 1.96, 20, noise=0.01)), GOOD_PROBE, at_top, 80)
    assert finding["try_settings"] == {} and "learning rate" not in finding["next_step"], finding


def test_a_held_back_loss_that_rises_check_after_check_is_still_memorising():
    fired = {"fired": True, "best_step": 2, "stopped_at_step": 8, "patience": 2}
    (finding,) = diagnose(eight_steps([1.68, 1.95, 2.30]), GOOD_PROBE, HOT, 80, early_stopping=fired)
    assert finding["code"] == "overfitting" and finding["try_settings"] == {"max_steps": 2}
    (finding,) = diagnose(eight_steps([1.68, 1.75, 1.95]), GOOD_PROBE, HOT, 80)
    assert finding["code"] == "overfitting" and "lowest at step 2 (1.68)" in finding["detail"]
