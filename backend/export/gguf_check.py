"""Check a GGUF file before it is offered: load it back with transformers' GGUF loader (weights and
tokenizer) and compare it with the merged model it was written from, on five everyday questions (PROMPTS).

What passes (measured figures: docs/benchmarks.md, "GGUF export"):
- f16: every logit, over each prompt and the merged model's answer to it, within F16_RELATIVE_TOLERANCE of
  the merged model's largest logit, and the same greedy answer (first ANSWER_TOKENS tokens) on 5 of 5
  prompts. One exception: an answer may part from the merged model's at a step where the merged model's
  own two best tokens were within that tolerance of each other, a practical tie that f16 rounding can
  break either way; such answers are counted apart ("near_ties") and the model card shows them.
- q8_0: the same first ANSWER_TOKENS greedy tokens on at least Q8_MIN_AGREEING of the 5 prompts ("most"), where an
  answer that parts at a step where the file's own rounding moved the two tokens' logits by more than the merged
  model's gap between them counts as a near-tie; and no logit off by more than Q8_RELATIVE_LIMIT of the largest
  (a wrong conversion moves them by more than the largest logit itself).
- q4_0: the answer agreement and logit difference are measured and reported, not required.
Every format must also load, and its tokenizer must turn each prompt into exactly the merged model's tokens.
"""
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from backend.answers import GREEDY
from backend.models.pool import generate_ids

# The questions the file and the merged model both answer, kept as they are: the tolerances below were measured on
# them. None is a question of the forgetting probe; what is compared is the answers' tokens, not whether they are right.
PROMPTS = ["What is the capital of France?", "What is 2 + 2?", "What color is the sky on a clear day?",
           "How many days are there in a week?", "What is the opposite of hot?"]
ANSWER_TOKENS = 20
# Largest |logit difference| an f16 file may show against the float32 merged model, as a fraction of the
# merged model's largest |logit| on the same text. 1% passes every f16 file measured, the tiny random test models'
# (whose large random weights are harsher than trained ones) included, and fails a converter bug (q/k rows left
# unpermuted) by two orders of magnitude (docs/benchmarks.md, "GGUF export").
F16_RELATIVE_TOLERANCE = 0.01
Q8_MIN_AGREEING = 4
Q8_RELATIVE_LIMIT = 0.10


@dataclass
class FormatCheck:
    quant: str
    prompts: int
    agreeing: int  # prompts whose greedy answers (first ANSWER_TOKENS tokens) are identical
    max_logit_diff: float | None
    passed: bool
    reason: str
    near_ties: int = 0  # answers that part only where the merged model's two best tokens were within tolerance
    tolerance: float | None = None  # the absolute logit tolerance applied (f16)
    answers: list = field(default_factory=list)  # (prompt, merged answer, gguf answer) for the model card

    def to_dict(self) -> dict:
        return asdict(self)

    def summary(self) -> str:
        diff = "" if self.max_logit_diff is None else f", largest logit difference {self.max_logit_diff:.4f}"
        diff += f", {self.near_ties} parted at a near-tie" if self.near_ties else ""
        verdict = "passed" if self.passed else "FAILED"
        return f"{self.quant}: {self.agreeing} of {self.prompts} greedy answers identical{diff}; {verdict}: {self.reason}"


@dataclass
class Reference:
    """What the merged model does on the check prompts; computed once and shared by every format."""
    prompt_ids: list  # token ids per prompt, from the merged model's tokenizer and chat template
    answers: list  # greedy answer token ids per prompt
    logits: list  # float32 logits over prompt + answer, per prompt
    texts: list
    logit_scale: float  # the largest |logit| the merged model produced on this text
    eos_token_id: int | None
    pad_token_id: int | None


def _prompt_ids(tokenizer, question: str) -> list[int]:
    messages = [{"role": "user", "content": question}]
    return list(tokenizer.apply_chat_template(messages, add_generation_prompt=True, tokenize=True,
                                              return_dict=True)["input_ids"])


def _greedy(model, ids: list[int], eos, pad) -> list[int]:
    """A model's greedy answer to the prompt `ids` as token ids, from the one engine's generate_ids. Ids, not the text
    generate_texts gives: the check compares the GGUF file's logits with these token by token, and an answer that
    comes back as text is not always re-tokenised into the same ids (a word split differently shifts every logit
    after it). Both models stop at the merged model's end-of-text token (`eos`)."""
    import torch
    inputs = torch.tensor([ids])
    out = generate_ids(model, {"input_ids": inputs, "attention_mask": torch.ones_like(inputs)},
                       replace(GREEDY, max_new_tokens=ANSWER_TOKENS), eos_token_id=eos, pad_token_id=pad)
    return out[0, len(ids):].tolist()


def _logits(model, ids: list[int]):
    import torch
    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0].float()


def reference(merged_folder, progress=lambda fraction, message: None) -> Reference:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    progress(0.0, "Loading the merged model for the check")
    tokenizer = AutoTokenizer.from_pretrained(merged_folder)
    model = AutoModelForCausalLM.from_pretrained(merged_folder, dtype=torch.float32, use_safetensors=True).eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    prompt_ids, answers, logits = [], [], []
    for i, question in enumerate(PROMPTS):
        ids = _prompt_ids(tokenizer, question)
        answer = _greedy(model, ids, eos, pad)
        prompt_ids.append(ids)
        answers.append(answer)
        logits.append(_logits(model, ids + answer))
        progress((i + 1) / len(PROMPTS), "Answering the check questions with the merged model")
    texts = [tokenizer.decode(a, skip_special_tokens=True).strip() for a in answers]
    scale = max(l.abs().max().item() for l in logits)
    return Reference(prompt_ids, answers, logits, texts, scale, eos, pad)


def _failed(quant: str, reason: str) -> FormatCheck:
    return FormatCheck(quant, len(PROMPTS), 0, None, False, reason)


def check_gguf(gguf_path, quant: str, ref: Reference, progress=lambda fraction, message: None) -> FormatCheck:
    """Load `gguf_path` back with transformers and compare it with `ref` (from `reference`)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    path = Path(gguf_path)
    progress(0.0, f"Loading the {quant} file back to check it")
    try:
        tokenizer = AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name)
        model = AutoModelForCausalLM.from_pretrained(path.parent, gguf_file=path.name, dtype=torch.float32).eval()
    except Exception as exc:  # any failure to load is the verdict, reported in one sentence
        return _failed(quant, f"transformers could not load the file back ({type(exc).__name__}: "
                              f"{str(exc).splitlines()[0][:160]})")
    for question, ids in zip(PROMPTS, ref.prompt_ids):
        if _prompt_ids(tokenizer, question) != ids:
            return _failed(quant, f"the tokenizer read back from the file turns '{question}' into different tokens "
                                  f"than the model's own tokenizer")
    agreeing, ties, max_diff, answers = 0, 0, 0.0, []
    tolerance = F16_RELATIVE_TOLERANCE * ref.logit_scale
    for i, (question, ids, answer, logits) in enumerate(zip(PROMPTS, ref.prompt_ids, ref.answers, ref.logits)):
        mine = _greedy(model, ids, ref.eos_token_id, ref.pad_token_id)
        own = _logits(model, ids + answer)
        if mine == answer:
            agreeing += 1
        elif quant == "f16" and _parts_at_near_tie(answer, mine, logits[len(ids) - 1:], tolerance):
            ties += 1
        elif quant != "f16" and _parts_within_rounding(answer, mine, logits[len(ids) - 1:], own[len(ids) - 1:]):
            ties += 1
        max_diff = max(max_diff, (own - logits).abs().max().item())
        answers.append((question, ref.texts[i], tokenizer.decode(mine, skip_special_tokens=True).strip()))
        progress((i + 1) / len(PROMPTS), f"Comparing the {quant} file with the merged model")
    passed, reason = _verdict(quant, agreeing, ties, max_diff, tolerance)
    return FormatCheck(quant, len(PROMPTS), agreeing, round(max_diff, 6), passed, reason, near_ties=ties,
                       tolerance=round(tolerance, 6) if quant == "f16" else None, answers=answers)


def _parts_at_near_tie(answer: list[int], mine: list[int], next_logits, tolerance: float) -> bool:
    """Whether `mine` first differs from `answer` where the merged model rated both tokens within
    `tolerance` of each other. `next_logits[k]` are the merged model's logits for answer token k."""
    k = next((k for k, (a, b) in enumerate(zip(answer, mine)) if a != b), None)
    if k is None:  # one answer stopped early: the other's next token was chosen over the end of text
        return False
    row = next_logits[k]
    return (row[answer[k]] - row[mine[k]]).item() <= tolerance


def _parts_within_rounding(answer: list[int], mine: list[int], next_logits, own_logits) -> bool:
    """Whether `mine` first differs from `answer` at a step where the file's rounding moved the two tokens'
    logits (`own_logits`, on the same prefix) by more than the merged model's gap between them."""
    k = next((k for k, (a, b) in enumerate(zip(answer, mine)) if a != b), None)
    if k is None:
        return False
    a, b = answer[k], mine[k]
    gap = (next_logits[k][a] - next_logits[k][b]).item()
    moved = abs((own_logits[k][a] - next_logits[k][a]).item()) + abs((own_logits[k][b] - next_logits[k][b]).item())
    return gap <= moved


def _verdict(quant: str, agreeing: int, ties: int, max_diff: float, tolerance: float) -> tuple[bool, str]:
    n = len(PROMPTS)
    if quant == "f16":
        if max_diff > tolerance:
            return False, (f"f16 logits differ from the merged model's by up to {max_diff:.3g}, more than the "
                           f"{tolerance:.3g} that f16 rounding explains")
        if agreeing + ties < n:
            return False, f"f16 must give the merged model's greedy answers on all {n} prompts; it did on {agreeing}"
        tie_note = f" ({ties} parting only at a near-tie)" if ties else ""
        return True, f"same greedy answers on {agreeing + ties} of {n} prompts{tie_note}, logits within {tolerance:.3g}"
    if quant == "q8_0":
        limit = Q8_RELATIVE_LIMIT * tolerance / F16_RELATIVE_TOLERANCE
        if max_diff > limit:
            return False, (f"q8_0 logits differ from the merged model's by up to {max_diff:.3g}, more than the "
                           f"{limit:.3g} that 8-bit rounding can explain")
        if agreeing + ties < Q8_MIN_AGREEING:
            return False, (f"q8_0 must give the merged model's first {ANSWER_TOKENS} greedy tokens on at least "
                           f"{Q8_MIN_AGREEING} of {n} prompts; it did on {agreeing}"
                           + (f" (and {ties} more parted where rounding explains it)" if ties else ""))
        tie_note = f" ({ties} parting only where 8-bit rounding outweighed the gap)" if ties else ""
        return True, (f"same first {ANSWER_TOKENS} greedy tokens on {agreeing + ties} of {n} prompts{tie_note}, "
                      f"at least {Q8_MIN_AGREEING} required")
    return True, f"loads and tokenizes like the merged model; 4-bit answers agree on {agreeing} of {n} (reported, not required)"


def markdown(checks: list[FormatCheck]) -> str:
    """A model-card section with the check results."""
    lines = ["## GGUF check", "",
             f"Each file was loaded back with transformers and compared with the merged model on {len(PROMPTS)} "
             f"everyday questions (greedy, first {ANSWER_TOKENS} tokens).", "",
             "| format | identical answers | largest logit difference | verdict |", "|---|---|---|---|"]
    for c in checks:
        diff = "-" if c.max_logit_diff is None else f"{c.max_logit_diff:.4f}"
        ties = f" (+{c.near_ties} at a near-tie)" if c.near_ties else ""
        lines.append(f"| {c.quant} | {c.agreeing} / {c.prompts}{ties} | {diff} | {'passed' if c.passed else 'failed'}: {c.reason} |")
    return "\n".join(lines) + "\n"
