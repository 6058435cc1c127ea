"""How likely a model finds an answer: the sum of its tokens' log-probabilities after the prompt.
Used to measure preference learning (chosen over rejected) on held-out pairs."""


def answer_logprob(model, tokenizer, prompt_messages: list[dict], answer: str) -> float:
    import torch

    prompt = tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
    prompt_ids = tokenizer(prompt, add_special_tokens=False)["input_ids"]
    answer_ids = tokenizer(answer + tokenizer.eos_token, add_special_tokens=False)["input_ids"]
    ids = torch.tensor([prompt_ids + answer_ids], device=model.device)
    with torch.no_grad():
        logits = model(input_ids=ids).logits.float()
    logprobs = torch.log_softmax(logits[0, len(prompt_ids) - 1:-1], dim=-1)
    return float(logprobs.gather(1, ids[0, len(prompt_ids):, None]).sum())


def preference_margins(model, tokenizer, pairs: list[dict]) -> list[float]:
    """Per pair, log p(chosen) - log p(rejected). Compare a tuned model's margins with its base's: raw
    margins favour short answers, so it is the change that shows what was learned."""
    margins = []
    for pair in pairs:
        chosen = answer_logprob(model, tokenizer, pair["prompt"], pair["chosen"])
        rejected = answer_logprob(model, tokenizer, pair["prompt"], pair["rejected"])
        margins.append(chosen - rejected)
    return margins
