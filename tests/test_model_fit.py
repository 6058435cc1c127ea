"""Fit verdicts: the first rung of the ladder (as set, 4-bit, smaller batch, shorter length) that fits, in words."""
import pytest

from backend.models.catalogue import catalogue, find
from backend.config import build_config
from backend.models.memory import GB, estimate_memory
from backend.models.fit import fit_verdict
from backend.models.loading import Hardware

GPU = Hardware("cuda", "bfloat16", "4bit")
CPU = Hardware("cpu", "bfloat16", "none")
LLAMA8 = find("meta-llama/Llama-3.1-8B-Instruct")


# The ladder tests pin gradient checkpointing off; 'auto' (the default) is a rung of its own, tested below.
PLAIN = {"rehearsal": 0, "gradient_checkpointing": "off"}


def need(entry, hardware, **settings) -> int:
    config = build_config({**PLAIN, **settings})
    return estimate_memory(config, hardware, available=1000 * GB, model_cfg=entry.config).total


def between(low: int, high: int) -> int:
    """Free memory in which `low` fits comfortably (below 85%) and `high` does not fit at all."""
    assert low / 0.85 < high
    return int(low / 0.85) + 1


def test_fits_as_set_changes_nothing():
    config = build_config({**PLAIN, "quantization": "none"})
    verdict = fit_verdict(find("Qwen/Qwen2.5-0.5B-Instruct"), config, GPU, available=80 * GB)
    assert verdict.fits and not verdict.changes and verdict.message.startswith("Fits as set: needs about")
    assert verdict.message.endswith(" of 80 GB free on the GPU.")
    assert verdict.config.model == "Qwen/Qwen2.5-0.5B-Instruct"


def test_the_words_name_what_the_figure_assumes_even_when_it_is_set_already():
    """4-bit (a GPU's 'auto') and gradient checkpointing change the figure as much as a change would: always named."""
    config = build_config({"rehearsal": 0, "gradient_checkpointing": "on"})
    verdict = fit_verdict(find("Qwen/Qwen2.5-0.5B-Instruct"), config, GPU, available=80 * GB)
    assert not verdict.changes
    assert verdict.message.startswith("Fits with 4-bit QLoRA and gradient checkpointing (about 20-30% slower): needs")
    dpo = fit_verdict(find("Qwen/Qwen2.5-0.5B-Instruct"), build_config({"method": "dpo"}), CPU, available=80 * GB)
    assert dpo.message.startswith("Fits with gradient checkpointing (for DPO on the CPU it is no slower): needs")


def test_four_bit_comes_first():
    config = build_config({**PLAIN, "quantization": "none", "max_length": 256})
    free = between(need(LLAMA8, GPU, quantization="4bit", max_length=256),
                    need(LLAMA8, GPU, quantization="none", max_length=256))
    verdict = fit_verdict(LLAMA8, config, GPU, available=free)
    assert verdict.changes == {"quantization": "4bit"} and verdict.config.quantization == "4bit"
    assert verdict.message.startswith("Fits with 4-bit QLoRA: needs about")


def test_then_a_smaller_batch_that_keeps_the_effective_batch():
    config = build_config({**PLAIN, "batch_size": 8, "grad_accum": 2, "max_length": 1024})
    free = between(need(LLAMA8, GPU, batch_size=2, max_length=1024), need(LLAMA8, GPU, batch_size=4, max_length=1024))
    verdict = fit_verdict(LLAMA8, config, GPU, available=free)  # auto is already 4-bit on a GPU
    assert verdict.changes == {"batch_size": 2, "grad_accum": 8}
    assert verdict.config.batch_size * verdict.config.grad_accum == 16
    assert verdict.message.startswith("Fits with 4-bit QLoRA and batch 2 (gradient accumulation 8 keeps the effective "
                                      "batch of 16)")


def test_then_a_shorter_max_length_with_four_bit_and_batch_one():
    config = build_config({**PLAIN, "quantization": "none", "batch_size": 4, "max_length": 2048})
    free = between(need(LLAMA8, CPU, quantization="4bit", batch_size=1, grad_accum=4, max_length=512),
                   need(LLAMA8, CPU, quantization="4bit", batch_size=1, grad_accum=4, max_length=1024))
    verdict = fit_verdict(LLAMA8, config, CPU, available=free)
    assert verdict.changes == {"quantization": "4bit", "batch_size": 1, "grad_accum": 4, "max_length": 512}
    assert verdict.message.startswith("Fits with 4-bit QLoRA, batch 1 (gradient accumulation 4 keeps the effective "
                                      "batch of 4) and max length 512 (longer examples are cut): needs about")


def test_a_rung_close_to_the_limit_is_said_so():
    config = build_config({**PLAIN, "batch_size": 1, "max_length": 128})
    total = need(LLAMA8, GPU, batch_size=1, max_length=128)
    verdict = fit_verdict(LLAMA8, config, GPU, available=int(total / 0.95))
    assert verdict.fits and verdict.tight and "close to the limit" in verdict.message


def test_cannot_fit_says_how_much_is_needed_and_free():
    verdict = fit_verdict(LLAMA8, build_config(PLAIN), GPU, available=2 * GB)
    assert not verdict.fits
    assert verdict.message.startswith("Cannot fit on this machine: needs about ")
    assert verdict.message.endswith(", 2.0 GB free on the GPU.")
    assert verdict.estimate.total <= need(LLAMA8, GPU, batch_size=1, max_length=128)  # the most frugal rung


def test_short_data_makes_a_shorter_max_length_pointless():
    config = build_config({**PLAIN, "max_length": 4096})
    verdict = fit_verdict(LLAMA8, config, GPU, available=1 * GB, seq_length=200)
    assert "max_length" not in verdict.changes or verdict.changes["max_length"] < 200


@pytest.mark.parametrize("entry", catalogue(), ids=lambda e: e.id)
def test_every_catalogue_model_gets_a_verdict_without_downloading(entry):
    verdict = fit_verdict(entry, build_config({}), GPU, available=24 * GB)
    assert verdict.message.startswith(("Fits", "Cannot fit"))


def test_a_model_can_be_named_by_id_or_folder(tiny_model):
    config = build_config(PLAIN)
    by_id = fit_verdict("qwen/qwen3-0.6b", config, GPU, available=80 * GB)
    assert by_id.config.model == "Qwen/Qwen3-0.6B" and by_id.fits
    by_folder = fit_verdict(tiny_model, config, CPU, available=8 * GB)
    assert by_folder.fits and by_folder.config.model == tiny_model


def test_free_memory_is_read_from_the_machine_by_default():
    verdict = fit_verdict(find("HuggingFaceTB/SmolLM2-360M-Instruct"), build_config({}), CPU)
    assert verdict.estimate.available > 0


def test_automatic_gradient_checkpointing_is_named_when_it_makes_a_run_fit():
    config = build_config({"rehearsal": 0, "quantization": "none", "max_length": 256})
    plain = need(LLAMA8, GPU, quantization="none", max_length=256)
    checkpointed = estimate_memory(build_config({"rehearsal": 0, "quantization": "none", "max_length": 256,
                                                 "gradient_checkpointing": "on"}), GPU, available=1000 * GB,
                                   model_cfg=LLAMA8.config).total
    verdict = fit_verdict(LLAMA8, config, GPU, available=between(checkpointed, plain))
    assert verdict.changes == {} and "gradient checkpointing" in verdict.message
