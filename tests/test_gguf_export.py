"""GGUF export: tiny random models of each supported architecture are written in f16, q8_0 and q4_0,
loaded back with transformers' GGUF loader and compared with the original; a file that fails its check
is not kept; unsupported architectures are refused with a sentence."""
import json

import pytest
import torch

from backend.errors import ExportCheckFailed, ExportError
from backend.gguf_bundle import PARTIAL_DIR, export_gguf
from backend.gguf_check import F16_RELATIVE_TOLERANCE, PROMPTS, Q8_MIN_AGREEING, reference
from backend.gguf_export import estimate_sizes, read_folder

SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512)


ANSWERS = ["The capital of France is Paris.", "2 + 2 is 4.", "The sky is blue on a clear day.",
           "There are seven days in a week.", "The opposite of hot is cold."]


def _build(folder, arch: str, **overrides):
    """A tiny model with the built-in tokenizer (real vocabulary and chat template), trained for a few
    seconds to answer the five check questions. Untrained random weights make a poor stand-in here: their
    best tokens are nearly tied at every step, so 8-bit rounding changes greedy answers that a trained
    model's are sure of."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from backend.everyday import PROBE
    from backend.models import load_tokenizer

    if (folder / "model.safetensors").exists():
        return folder
    tokenizer = load_tokenizer()
    config_cls, model_cls = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
                             "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[arch]
    values = dict(SHAPE, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  tie_word_embeddings=arch != "mistral")
    values.update(overrides)
    torch.manual_seed(0)
    model = model_cls(config_cls(**values))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):  # Qwen2's q/k/v biases start at zero; make them count
                p.normal_(0, 0.3)
    texts = [tokenizer.apply_chat_template([{"role": "user", "content": q}, {"role": "assistant", "content": a}],
                                           tokenize=False) for (q, _), a in zip(PROBE, ANSWERS)]
    batch = tokenizer(texts, return_tensors="pt", padding=True)
    labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-2)
    model.train()
    for _ in range(200):
        loss = model(**batch, labels=labels).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
    model.eval()
    model.save_pretrained(folder, safe_serialization=True)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tiny(model_cache):
    made = {}

    def get(arch, **overrides):
        key = (arch, tuple(sorted(overrides.items())))
        if key not in made:
            suffix = "".join(f"-{k}{v}" for k, v in sorted(overrides.items()))
            made[key] = _build(model_cache / f"tiny-gguf-{arch}{suffix}", arch, **overrides)
        return made[key]
    return get


def _reader(path):
    import gguf
    return gguf.GGUFReader(str(path))


def _field(reader, key):
    return reader.fields[key].contents()


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
def test_round_trip_in_every_format(arch, tiny, tmp_path):
    import gguf
    folder = tiny(arch)
    ref = reference(folder)
    # the tiny model learned (most of) its answers: confident, distinct answers make agreement a real test
    assert len(set(ref.texts)) == len(PROMPTS) and sum(t == a for t, a in zip(ref.texts, ANSWERS)) >= 3
    sizes = estimate_sizes(folder)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    results = {}
    for quant in ("f16", "q8_0", "q4_0"):
        seen = []
        result = export_gguf(folder, tmp_path / quant, quant, f"Tiny {arch}", description="A tiny test model.",
                             ref=ref, progress=lambda fraction, message: seen.append(fraction))
        results[quant] = result
        assert result.path.name == f"tiny-{arch}-{quant}.gguf" and result.path.exists()
        assert not (tmp_path / quant / PARTIAL_DIR).exists()
        assert (tmp_path / quant / "Modelfile").read_text().count(f"FROM ./{result.path.name}") == 1
        assert seen == sorted(seen) and 0 <= seen[0] and seen[-1] == 1.0
        assert abs(result.size_bytes - sizes[quant]) / sizes[quant] < 0.005  # the estimate shown before starting

        reader = _reader(result.path)
        assert _field(reader, "general.name") == f"Tiny {arch}"
        assert _field(reader, "general.description") == "A tiny test model."
        assert _field(reader, "general.architecture") == ("qwen2" if arch == "qwen2" else "llama")
        assert _field(reader, "tokenizer.chat_template") == (folder / "chat_template.jinja").read_text()
        tokens = _field(reader, "tokenizer.ggml.tokens")
        assert tokens[_field(reader, "tokenizer.ggml.bos_token_id")] == tokenizer_config["bos_token"]
        assert tokens[_field(reader, "tokenizer.ggml.eos_token_id")] == tokenizer_config["eos_token"]
        assert tokens[_field(reader, "tokenizer.ggml.padding_token_id")] == tokenizer_config["pad_token"]
        assert _field(reader, "tokenizer.ggml.add_bos_token") is False
        types = {t.name: t.tensor_type for t in reader.tensors}
        Q = gguf.GGMLQuantizationType
        assert types["blk.0.attn_norm.weight"] == Q.F32
        assert types["blk.0.ffn_up.weight"] == {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[quant]
        output = "output.weight" if arch == "mistral" else "token_embd.weight"
        assert ("output.weight" in types) == (arch == "mistral")  # tied models reuse the embedding
        assert types[output] == {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q8_0}[quant]
        if arch == "qwen2":
            assert types["blk.0.attn_q.bias"] == Q.F32

    f16, q8, q4 = results["f16"].check, results["q8_0"].check, results["q4_0"].check
    assert f16.passed and f16.agreeing + f16.near_ties == len(PROMPTS) and f16.agreeing >= len(PROMPTS) - 1
    assert f16.max_logit_diff <= f16.tolerance == pytest.approx(F16_RELATIVE_TOLERANCE * ref.logit_scale, rel=1e-4)
    assert q8.passed and q8.agreeing >= Q8_MIN_AGREEING
    assert q4.passed and 0 <= q4.agreeing <= len(PROMPTS) and q4.max_logit_diff is not None  # reported only
    assert f16.max_logit_diff < q8.max_logit_diff < q4.max_logit_diff
    print(f"\n{arch}: " + " | ".join(r.check.summary() for r in results.values()))


def test_rows_that_are_not_a_multiple_of_the_block_stay_f16(tiny, tmp_path):
    import gguf
    folder = tiny("llama", intermediate_size=80)  # ffn_down rows hold 80 values: not a multiple of 32
    result = export_gguf(folder, tmp_path, "q8_0", "odd rows")
    types = {t.name: t.tensor_type for t in _reader(result.path).tensors}
    assert types["blk.0.ffn_down.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q8_0  # rows of 64
    assert result.check.passed and result.check.agreeing >= Q8_MIN_AGREEING


def test_a_file_that_fails_its_check_is_not_kept(tiny, tmp_path, monkeypatch):
    import backend.gguf_export as gguf_export
    monkeypatch.setattr(gguf_export, "_permute", lambda weights, n_head, n_head_kv=None: weights)  # a converter bug
    with pytest.raises(ExportCheckFailed, match=r"^The f16 GGUF file was not kept: f16 ") as caught:
        export_gguf(tiny("llama"), tmp_path, "f16", "broken")
    assert caught.value.result.passed is False
    assert caught.value.result.max_logit_diff > 10 * caught.value.result.tolerance
    print(f"\nunpermuted q/k: largest logit difference {caught.value.result.max_logit_diff:.3f}, "
          f"tolerance {caught.value.result.tolerance:.3f}")
    assert list(tmp_path.rglob("*.gguf")) == [] and not (tmp_path / PARTIAL_DIR).exists()
    assert not (tmp_path / "Modelfile").exists()


@pytest.mark.parametrize("config_name", ["GPT2Config", "PhiConfig"])
def test_unsupported_architectures_are_refused_with_a_sentence(config_name, tmp_path):
    import transformers
    config = getattr(transformers, config_name)(n_embd=64, n_layer=1, n_head=2, hidden_size=64, num_hidden_layers=1,
                                                num_attention_heads=2)
    config.architectures = [config_name.replace("Config", "LMHeadModel" if config_name == "GPT2Config" else "ForCausalLM")]
    config.save_pretrained(tmp_path)
    for attempt in (lambda: read_folder(tmp_path), lambda: estimate_sizes(tmp_path),
                    lambda: export_gguf(tmp_path, tmp_path / "out", "q8_0", "x")):
        with pytest.raises(ExportError) as caught:
            attempt()
        message = str(caught.value)
        assert message.startswith("GGUF export supports Llama, Mistral, Qwen2/Qwen2.5 and SmolLM")
        assert config.architectures[0] in message and "\n" not in message
    assert not (tmp_path / "out").exists() or not list((tmp_path / "out").rglob("*.gguf"))


def test_unknown_format_is_refused(tiny, tmp_path):
    with pytest.raises(ExportError, match="Unknown GGUF format 'q5_k'"):
        export_gguf(tiny("llama"), tmp_path, "q5_k", "x")
