"""Plain TRL, for benchmarks/speed.py: its SFT, DPO or KTO trainer with default arguments, except what the
comparison fixes for every contender (LoRA rank and targets, batch, max length, steps, precision). Prints one
JSON line: the trainer's train_runtime, the steps done, and the real tokens TRL counted (when it counts them)."""
import argparse
import json

import torch
from datasets import Dataset
from peft import LoraConfig
from transformers import AutoModelForCausalLM, AutoTokenizer
from trl import DPOConfig, DPOTrainer, KTOConfig, KTOTrainer, SFTConfig, SFTTrainer

TRAINERS = {"sft": (SFTConfig, SFTTrainer), "dpo": (DPOConfig, DPOTrainer), "kto": (KTOConfig, KTOTrainer)}


def main():
    parser = argparse.ArgumentParser()
    for name in ("--method", "--data", "--model", "--out", "--precision"):
        parser.add_argument(name, required=True)
    for name in ("--steps", "--batch", "--max-length", "--lora-r"):
        parser.add_argument(name, type=int, required=True)
    parser.add_argument("--learning-rate", type=float, required=True)
    parser.add_argument("--beta", type=float, default=0.1)
    args = parser.parse_args()

    bf16 = args.precision == "bfloat16"
    model = AutoModelForCausalLM.from_pretrained(args.model, dtype=torch.bfloat16 if bf16 else torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(args.model)
    config_class, trainer_class = TRAINERS[args.method]
    extra = {"beta": args.beta} if args.method != "sft" else {}
    config = config_class(output_dir=args.out, max_steps=args.steps, per_device_train_batch_size=args.batch,
                          max_length=args.max_length, learning_rate=args.learning_rate, bf16=bf16,
                          use_cpu=not torch.cuda.is_available(),  # else bf16 on a CPU is refused
                          report_to="none", **extra)
    lora = LoraConfig(r=args.lora_r, lora_alpha=2 * args.lora_r, target_modules="all-linear", task_type="CAUSAL_LM")
    with open(args.data) as file:
        rows = json.load(file)
    trainer = trainer_class(model=model, args=config, train_dataset=Dataset.from_list(rows),
                            processing_class=tokenizer, peft_config=lora)
    result = trainer.train()
    counted = [entry["num_tokens"] for entry in trainer.state.log_history if "num_tokens" in entry]
    print(json.dumps({"seconds": result.metrics["train_runtime"], "steps": trainer.state.global_step,
                      "reported_tokens": counted[-1] if counted else None}))


if __name__ == "__main__":
    main()
