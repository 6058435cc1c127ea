"""Batched generation from a base model or a base model plus a run's adapter."""
from backend.models import load_model, load_tokenizer


def chat_prompt(tokenizer, prompt, system: str | None = None) -> str:
    messages = prompt if isinstance(prompt, list) else [{"role": "user", "content": prompt}]
    if system:
        messages = [{"role": "system", "content": system}] + [m for m in messages if m["role"] != "system"]
    return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def generate(model, tokenizer, prompts, max_new_tokens: int = 96, batch_size: int = 16,
             temperature: float = 0.0, system: str | None = None) -> list[str]:
    """Answers to `prompts` (strings or message lists), greedy unless temperature > 0, in order."""
    return [text for text, _ in generate_with_ends(model, tokenizer, prompts, max_new_tokens, batch_size,
                                                   temperature, system)]


def generate_with_ends(model, tokenizer, prompts, max_new_tokens: int = 96, batch_size: int = 16,
                       temperature: float = 0.0, system: str | None = None) -> list[tuple[str, bool]]:
    """Like `generate`, with whether each answer ended by itself (False: cut at max_new_tokens)."""
    import torch

    texts = [chat_prompt(tokenizer, p, system) for p in prompts]
    old_side = tokenizer.padding_side
    tokenizer.padding_side = "left"
    outputs = []
    was_training = model.training
    model.eval()
    try:
        for start in range(0, len(texts), batch_size):
            batch = tokenizer(texts[start:start + batch_size], return_tensors="pt", padding=True,
                              add_special_tokens=False).to(model.device)
            sampling = {"do_sample": True, "temperature": temperature} if temperature > 0 else {"do_sample": False}
            with torch.no_grad():
                out = model.generate(**batch, max_new_tokens=max_new_tokens, pad_token_id=tokenizer.pad_token_id,
                                     **sampling)
            eos = model.generation_config.eos_token_id
            eos_ids = set(eos if isinstance(eos, list) else [eos, tokenizer.eos_token_id])
            for row in out[:, batch["input_ids"].shape[1]:]:
                ended = any(int(t) in eos_ids for t in row)
                outputs.append((tokenizer.decode(row, skip_special_tokens=True).strip(), ended))
    finally:
        tokenizer.padding_side = old_side
        model.train(was_training)
    return outputs


def load_for_generation(model_name: str | None, adapter_dir=None):
    """Base model (fp/bf16, no quantization) with the run's adapter attached when given."""
    tokenizer = load_tokenizer(model_name)
    model = load_model(model_name)
    if adapter_dir is not None:
        from peft import PeftModel
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    return model, tokenizer
