"""GGUF export: tiny random models of each supported architecture are written in f16, q8_0 and q4_0,
loaded back with transformers' GGUF loader and compared with the original; a file that fails its check
is not kept; unsupported architectures are refused with a sentence."""
import json

import pytest
import torch

from backend.errors import ExportCheckFailed, ExportError
from backend.export.bundle import PARTIAL_DIR, export_gguf
from backend.export.gguf_check import F16_RELATIVE_TOLERANCE, PROMPTS, check_gguf, reference
from backend.export.gguf import estimate_sizes, read_folder, write_gguf

SHAPE = dict(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
             num_key_value_heads=2, max_position_embeddings=512)


def _build(folder, arch: str, **overrides):
    """A tiny random model with the built-in tokenizer (real vocabulary and chat template). The larger
    initialiser makes its greedy answers vary from token to token; with the default one it repeats a
    single token, which would make any comparison pass."""
    from transformers import LlamaConfig, LlamaForCausalLM, MistralConfig, MistralForCausalLM, Qwen2Config, Qwen2ForCausalLM
    from backend.models.loading import load_tokenizer

    if (folder / "model.safetensors").exists():
        return folder
    tokenizer = load_tokenizer()
    config_cls, model_cls = {"llama": (LlamaConfig, LlamaForCausalLM), "mistral": (MistralConfig, MistralForCausalLM),
                             "qwen2": (Qwen2Config, Qwen2ForCausalLM)}[arch]
    values = dict(SHAPE, vocab_size=len(tokenizer), bos_token_id=tokenizer.bos_token_id, initializer_range=0.3,
                  eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
                  tie_word_embeddings=arch != "mistral")
    values.update(overrides)
    torch.manual_seed(0)
    model = model_cls(config_cls(**values))
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name.endswith("bias"):  # Qwen2's q/k/v biases start at zero; make them count
                p.normal_(0, 0.3)
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


def _assert_metadata(path, arch, folder, quant):
    import gguf
    reader = _reader(path)
    tokenizer_config = json.loads((folder / "tokenizer_config.json").read_text())
    assert _field(reader, "general.name") == f"Tiny {arch}"
    assert _field(reader, "general.description") == "A tiny test model."
    assert _field(reader, "general.architecture") == ("qwen2" if arch == "qwen2" else "llama")
    assert _field(reader, "tokenizer.chat_template") == (folder / "chat_template.jinja").read_text()
    tokens = _field(reader, "tokenizer.ggml.tokens")
    assert tokens[_field(reader, "tokenizer.ggml.bos_token_id")] == tokenizer_config["bos_token"]
    assert tokens[_field(reader, "tokenizer.ggml.eos_token_id")] == tokenizer_config["eos_token"]
    assert tokens[_field(reader, "tokenizer.ggml.padding_token_id")] == tokenizer_config["pad_token"]
    assert _field(reader, "tokenizer.ggml.add_bos_token") is False  # SmolLM2's BOS is <|im_start|>: never added
    types = {t.name: t.tensor_type for t in reader.tensors}
    Q = gguf.GGMLQuantizationType
    assert types["blk.0.attn_norm.weight"] == Q.F32
    assert types["blk.0.ffn_up.weight"] == {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[quant]
    assert ("output.weight" in types) == (arch == "mistral")  # tied models reuse the embedding
    output = "output.weight" if arch == "mistral" else "token_embd.weight"
    assert types[output] == {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q8_0}[quant]
    if arch == "qwen2":
        assert types["blk.0.attn_q.bias"] == Q.F32


@pytest.mark.parametrize("arch", ["llama", "mistral", "qwen2"])
def test_round_trip_in_every_format(arch, tiny, tmp_path):
    folder = tiny(arch)
    ref = reference(folder)
    assert len({tuple(a) for a in ref.answers}) == len(PROMPTS) and all(len(a) == 20 for a in ref.answers)
    sizes = estimate_sizes(folder)

    # f16 through the whole export: written, checked strictly, moved into place, Modelfile beside it
    seen = []
    f16 = export_gguf(folder, tmp_path / "f16", "f16", f"Tiny {arch}", description="A tiny test model.", ref=ref,
                      progress=lambda fraction, message: seen.append(fraction))
    assert f16.path.name == f"tiny-{arch}-f16.gguf" and f16.path.exists() and not (tmp_path / "f16" / PARTIAL_DIR).exists()
    assert (tmp_path / "f16" / "Modelfile").read_text().count(f"FROM ./{f16.path.name}") == 1
    assert seen == sorted(seen) and seen[0] >= 0 and seen[-1] == 1.0
    check = f16.check
    assert check.passed and check.agreeing + check.near_ties == len(PROMPTS) and check.agreeing >= 1
    assert check.max_logit_diff <= check.tolerance == pytest.approx(F16_RELATIVE_TOLERANCE * ref.logit_scale, rel=1e-4)
    _assert_metadata(f16.path, arch, folder, "f16")
    results = {"f16": check}

    # q8_0 and q4_0: written and loaded back; agreement measured and reported. Untrained random weights
    # have near-tied best tokens at every step, so 8- and 4-bit rounding changes their answers; the 4-of-5
    # q8_0 rule is exercised on the built-in model (the slow test and benchmarks/export_formats.py).
    for quant in ("q8_0", "q4_0"):
        path = write_gguf(folder, tmp_path / f"{quant}.gguf", quant, f"Tiny {arch}", "A tiny test model.")
        _assert_metadata(path, arch, folder, quant)
        results[quant] = check_gguf(path, quant, ref)
        assert results[quant].max_logit_diff is not None  # it loaded and tokenized like the original
    for quant, result in results.items():
        assert abs((tmp_path / f"{quant}.gguf" if quant != "f16" else f16.path).stat().st_size - sizes[quant]) < 0.005 * sizes[quant]
    assert results["f16"].max_logit_diff < results["q8_0"].max_logit_diff
    assert results["f16"].max_logit_diff < results["q4_0"].max_logit_diff
    print(f"\n{arch}: " + " | ".join(r.summary() for r in results.values()))


def test_rows_that_are_not_a_multiple_of_the_block_stay_f16(tiny, tmp_path):
    import gguf
    folder = tiny("llama", intermediate_size=80)  # ffn_down rows hold 80 values: not a multiple of 32
    path = write_gguf(folder, tmp_path / "odd.gguf", "q4_0", "odd rows")
    types = {t.name: t.tensor_type for t in _reader(path).tensors}
    assert types["blk.0.ffn_down.weight"] == gguf.GGMLQuantizationType.F16
    assert types["blk.0.ffn_up.weight"] == gguf.GGMLQuantizationType.Q4_0  # rows of 64
    assert abs(path.stat().st_size - estimate_sizes(folder, ["q4_0"])["q4_0"]) < 0.005 * path.stat().st_size
    result = check_gguf(path, "q4_0", reference(folder))
    assert result.passed and result.max_logit_diff is not None  # loads back, f16 rows and all


def test_a_file_that_fails_its_check_is_not_kept(tiny, tmp_path, monkeypatch):
    import backend.export.gguf as gguf_export
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


@pytest.mark.slow
def test_builtin_model_round_trips_in_q8_0(embedded_model, tmp_path):
    """The built-in SmolLM2-135M (the base folder: what an untrained adapter merges into) in q8_0 gives the
    merged model's greedy answer to the first check question."""
    result = export_gguf(embedded_model, tmp_path, "q8_0", "SmolLM2-135M-Instruct")
    question, merged, loaded = result.check.answers[0]
    assert question == "What is the capital of France?"
    assert loaded == merged and "Paris" in loaded
    assert result.check.passed and result.path.exists() and (tmp_path / "Modelfile").exists()


def _split(regex):
    return {"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": regex}, "behavior": "Isolated"},
                                                  {"type": "ByteLevel", "add_prefix_space": False, "use_regex": False}]}


def test_pre_tokenizer_names_llama_cpp_knows():
    from transformers.integrations.gguf.gguf_tokenizer_mapping import _LLAMA3_SPLIT
    from transformers.models.qwen2.tokenization_qwen2 import PRETOKENIZE_REGEX
    from backend.export.gguf import _pre_tokenizer_name
    byte_level = {"type": "ByteLevel", "add_prefix_space": False, "use_regex": True}
    assert _pre_tokenizer_name({"pre_tokenizer": byte_level}) == "gpt-2"  # the built-in tokenizer as rebuilt
    assert _pre_tokenizer_name({"pre_tokenizer": {"type": "Sequence", "pretokenizers": [
        {"type": "Digits", "individual_digits": True}, byte_level]}}) == "smollm"  # SmolLM2's own tokenizer.json
    assert _pre_tokenizer_name({"pre_tokenizer": _split(_LLAMA3_SPLIT)}) == "llama-bpe"
    assert _pre_tokenizer_name({"pre_tokenizer": _split(PRETOKENIZE_REGEX)}) == "qwen2"
    with pytest.raises(ExportError, match="llama.cpp has no name for"):
        _pre_tokenizer_name({"pre_tokenizer": _split(r"\w+")})


def test_a_near_tie_is_told_apart_from_a_real_difference():
    from backend.export.gguf_check import _parts_at_near_tie
    logits = torch.zeros(3, 10)
    logits[0, 5], logits[1, 6], logits[1, 7], logits[2, 1] = 9.0, 4.00, 3.98, 2.0
    assert _parts_at_near_tie([5, 6, 1], [5, 7, 1], logits, tolerance=0.05)  # 4.00 vs 3.98 at the second token
    assert not _parts_at_near_tie([5, 6, 1], [5, 2, 1], logits, tolerance=0.05)  # 4.00 vs 0: a real change
    assert not _parts_at_near_tie([5, 6, 1], [5, 6], logits, tolerance=0.05)  # stopped early: not a tie


def test_a_q8_parting_counts_only_where_rounding_outweighs_the_gap_and_gross_errors_fail():
    import torch
    from backend.export.gguf_check import _parts_within_rounding, _verdict

    merged = torch.zeros(3, 8)
    merged[1, 6], merged[1, 7], merged[1, 2] = 4.0, 3.9, 1.0  # at the second token: 6 leads 7 by 0.1, 2 by 3.0
    moved = merged.clone()
    moved[1, 6], moved[1, 7] = 3.94, 3.96  # the file moved both by 0.06: more than the 0.1 gap together
    assert _parts_within_rounding([5, 6, 1], [5, 7, 1], merged, moved)
    assert not _parts_within_rounding([5, 6, 1], [5, 2, 1], merged, moved)  # a 3.0 gap: a real change
    assert not _parts_within_rounding([5, 6, 1], [5, 7, 1], merged, merged)  # nothing moved: no excuse
    tolerance = 0.4  # 1% of a largest logit of 40
    assert _verdict("q8_0", 3, 1, 1.0, tolerance)[0]
    assert not _verdict("q8_0", 3, 0, 1.0, tolerance)[0]
    passed, reason = _verdict("q8_0", 5, 0, 41.0, tolerance)  # logits off by more than the largest one
    assert not passed and "8-bit rounding" in reason
