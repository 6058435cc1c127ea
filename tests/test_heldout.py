"""Learned? Held-back examples answered by the base and the tuned model, scored with chrF against the reference."""
import pytest

from backend.evaluation.heldout import HELDOUT_LIMIT, heldout_cases, heldout_comparison, score_answers


def user(text):
    return [{"role": "user", "content": text}]


def assistant(text):
    return [{"role": "assistant", "content": text}]


def test_the_reference_is_the_last_assistant_message_the_chosen_answer_or_a_good_completion():
    rows = [
        {"messages": [{"role": "system", "content": "Be brief."}, *user("Hi"), *assistant("Hello"), *user("Name?"),
                      *assistant("I am Quill.")]},
        {"prompt": user("Greet me."), "chosen": assistant("Hello there!"), "rejected": assistant("Go away.")},
        {"prompt": user("Thank me."), "completion": assistant("Thank you!"), "label": True},
        {"prompt": user("Insult me."), "completion": assistant("No."), "label": False},
        {"messages": user("Nobody answered.")},
    ]
    cases = heldout_cases(rows)
    assert [(c["prompt"], c["reference"]) for c in cases] == [
        ("Name?", "I am Quill."), ("Greet me.", "Hello there!"), ("Thank me.", "Thank you!")]
    assert cases[0]["messages"][-1] == {"role": "user", "content": "Name?"}  # the conversation up to the answer
    assert cases[0]["messages"][0]["role"] == "system"


def test_scores_come_from_chrf_and_closer_answers_score_higher():
    cases = [{"prompt": "Name?", "reference": "I am Quill, your assistant."},
             {"prompt": "Capital?", "reference": "Paris is the capital of France."}]
    result = score_answers(cases, base=["I am SmolLM.", "The capital of France is Paris."],
                           tuned=["I am Quill, your assistant.", "Bananas."], limit=32)
    first, second = result["examples"]
    assert first["tuned_score"] == 100.0 and first["base_score"] < 50
    assert second["base_score"] > second["tuned_score"]
    assert result["metric"] == "chrF" and "n-grams up to 6" in result["metric_detail"]
    assert result["base_mean"] == pytest.approx((first["base_score"] + second["base_score"]) / 2, abs=0.01)
    assert (result["tuned_better"], result["tuned_worse"], result["count"], result["limit"]) == (1, 1, 2, 32)


def test_no_held_back_examples_gives_an_empty_result():
    result = score_answers([], [], [])
    assert result["examples"] == [] and result["base_mean"] is None and result["tuned_mean"] is None


def test_heldout_comparison_answers_twice_within_the_cap(tiny_model, monkeypatch):
    import json

    from peft import LoraConfig, get_peft_model

    from backend.evaluation import heldout
    from backend.models.loading import load_model, load_tokenizer

    tokenizer = load_tokenizer(tiny_model)
    model = get_peft_model(load_model(tiny_model), LoraConfig(r=4, lora_alpha=8, task_type="CAUSAL_LM",
                                                              target_modules=["q_proj", "v_proj"]))
    rows = [{"messages": user(f"Say {i}.") + assistant(f"The number {i}" + " and more" * (i % 3))} for i in range(6)]
    calls = []
    real = heldout.generate_texts
    monkeypatch.setattr(heldout, "generate_texts", lambda *a, **k: calls.append(a[3].max_new_tokens) or real(*a, **k))
    result = heldout_comparison(model, tokenizer, rows, limit=4, max_new_tokens=20)
    assert result["count"] == 4 and result["available"] == 6 and result["limit"] == 4
    assert [e["prompt"] for e in result["examples"]] == [f"Say {i}." for i in range(4)]
    assert all(budget <= 20 for budget in calls) and len(calls) == 2  # one batch for each side
    # an untrained adapter answers like the base model, so both sides score the same
    assert all(e["base"] == e["tuned"] and e["base_score"] == e["tuned_score"] for e in result["examples"])
    json.dumps(result)
    assert HELDOUT_LIMIT == 32
