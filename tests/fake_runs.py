"""Finished runs without training: a random LoRA adapter on the tiny model, saved where a run keeps its
adapter. Enough to test what serves, labels and compares runs; learning itself is tested elsewhere."""


def fake_run(tiny_model: str, seed: int = 0, status: str = "done", **config) -> str:
    """A finished run with a random adapter on the model in folder `tiny_model`; `config`: settings the run
    records instead of the tiny defaults (model="smollm2": the built-in model, whose folder is then `tiny_model`)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from backend import workspace
    from backend.db import connect
    from backend.runs import RunStore
    from tests.conftest import tiny_config

    store = RunStore(connect())
    run_id = store.create(tiny_config(tiny_model, "fake.jsonl", **config))
    store.set_status(run_id, status)
    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(tiny_model)
    # init_lora_weights=False: random A and B, so the adapter changes the answers (a fresh LoRA would not)
    lora = LoraConfig(r=4, lora_alpha=64, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    get_peft_model(model, lora).save_pretrained(str(workspace.run_dir(run_id) / "adapter"))
    return run_id
