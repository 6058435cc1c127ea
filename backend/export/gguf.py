"""Write a merged Hugging Face model folder (config.json, *.safetensors, tokenizer files) as one GGUF file
for llama.cpp and Ollama, in f16, q8_0 or q4_0.

Everything GGUF-specific comes from `gguf`, llama.cpp's own Python library: the writer, the tensor names
(`get_tensor_name_map`), the vocabulary readers (`gguf.vocab`) and the quantisers (`gguf.quants`). What this
module adds is what llama.cpp's `convert_hf_to_gguf.py` does for the Llama family, written for our few
architectures:
- LLaMA (Llama, Mistral, SmolLM): q_proj and k_proj rows are permuted, because llama.cpp applies rotary
  embeddings to interleaved pairs where Hugging Face rotates the two halves of each head;
- Qwen2: no permutation (llama.cpp uses the NEOX rotation there), and its q/k/v biases are kept;
- 1-D tensors (norms, biases) stay float32; a tied output projection is not written (llama.cpp reuses the
  token embedding, and transformers reads a file without `output.weight` as tied);
- a matrix whose rows are not a multiple of the quantisation block (32 values) is written f16, the fallback
  llama.cpp makes on `QuantError`;
- in q4_0 the output projection (the embedding when tied) is written q8_0: llama-quantize keeps it at 6 bits
  (Q6_K), which gguf-py cannot write, and 4-bit logits cost the most agreement.
Tensors are quantised and written one at a time, so memory holds one tensor beyond the writer's metadata.
"""
import contextlib
import json
import math
from dataclasses import dataclass
from pathlib import Path

from backend.errors import ExportError
from backend.words import size_text

QUANTS = ("f16", "q8_0", "q4_0")

# Hugging Face architecture -> llama.cpp architecture name (gguf.MODEL_ARCH_NAMES value), and whether q/k
# rows are permuted for llama.cpp's rotary layout.
SUPPORTED = {
    "LlamaForCausalLM": ("llama", True),    # Llama 2/3, SmolLM, SmolLM2
    "MistralForCausalLM": ("llama", True),  # llama.cpp converts Mistral as LLaMA
    "Qwen2ForCausalLM": ("qwen2", False),   # Qwen2, Qwen2.5
}
SUPPORTED_TEXT = "Llama, Mistral, Qwen2/Qwen2.5 and SmolLM (LlamaForCausalLM, MistralForCausalLM, Qwen2ForCausalLM)"
_SKIPPED = (".rotary_emb.inv_freq",)


def _gguf():
    import gguf
    return gguf


@dataclass(frozen=True)
class PlannedTensor:
    source: str  # name in the safetensors file
    name: str  # GGUF name, e.g. blk.0.attn_q.weight
    shape: tuple[int, ...]  # Hugging Face (numpy) order: rows last
    qtype: object  # gguf.GGMLQuantizationType

    @property
    def nbytes(self) -> int:
        block, type_size = _gguf().GGML_QUANT_SIZES[self.qtype]
        return math.prod(self.shape) // block * type_size


@dataclass(frozen=True)
class Vocabulary:
    model: str  # "gpt2" (byte-level BPE) or "llama" (sentencepiece-style BPE)
    pre: str  # llama.cpp pre-tokenizer name
    tokens: list
    types: list
    scores: list | None
    add_bos: bool
    add_eos: bool


@dataclass(frozen=True)
class ModelFolder:
    path: Path
    config: dict
    hf_arch: str
    arch: str
    permute_qk: bool
    files: tuple[Path, ...]


def read_folder(folder) -> ModelFolder:
    """Check that `folder` is a merged model of an architecture we can write, and read its config."""
    path = Path(folder)
    config_file = path / "config.json"
    if not config_file.exists():
        raise ExportError(f"'{path}' has no config.json: give the folder of a merged (full) model.")
    config = json.loads(config_file.read_text())
    hf_arch = (config.get("architectures") or ["(none)"])[0]
    if hf_arch not in SUPPORTED:
        raise ExportError(f"GGUF export supports {SUPPORTED_TEXT}; this model is {hf_arch}. "
                          f"Export it as a safetensors folder instead.")
    rope = config.get("rope_parameters") or config.get("rope_scaling") or {}
    rope_type = rope.get("rope_type") or rope.get("type") or "default"
    if rope_type != "default":
        raise ExportError(f"This model uses '{rope_type}' rope scaling, which the GGUF export cannot check "
                          f"against the original yet. Export it as a safetensors folder instead.")
    files = tuple(sorted(path.glob("*.safetensors")))
    if not files:
        raise ExportError(f"'{path}' has no .safetensors weights: give the folder of a merged model.")
    arch, permute = SUPPORTED[hf_arch]
    return ModelFolder(path, config, hf_arch, arch, permute, files)


def _tensor_shapes(model: ModelFolder) -> dict[str, tuple[tuple[int, ...], Path]]:
    from safetensors import safe_open
    shapes = {}
    for file in model.files:
        with safe_open(str(file), framework="pt") as f:
            for key in f.keys():
                shapes[key] = (tuple(f.get_slice(key).get_shape()), file)
    return shapes


def _choose_qtype(name: str, shape: tuple[int, ...], quant: str, output_projection: bool):
    gguf = _gguf()
    Q = gguf.GGMLQuantizationType
    if len(shape) <= 1 or name.endswith("_norm.weight"):
        return Q.F32
    wanted = {"f16": Q.F16, "q8_0": Q.Q8_0, "q4_0": Q.Q4_0}[quant]
    if quant == "q4_0" and output_projection:
        wanted = Q.Q8_0
    block, _ = gguf.GGML_QUANT_SIZES[wanted]
    return wanted if shape[-1] % block == 0 else Q.F16


def plan_tensors(model: ModelFolder, quant: str) -> list[PlannedTensor]:
    """Which tensors go into the file, under which GGUF names, in which precision."""
    if quant not in QUANTS:
        raise ExportError(f"Unknown GGUF format '{quant}': choose one of {', '.join(QUANTS)}.")
    gguf = _gguf()
    arch = next(k for k, v in gguf.MODEL_ARCH_NAMES.items() if v == model.arch)
    names = gguf.get_tensor_name_map(arch, model.config["num_hidden_layers"])
    tied = bool(model.config.get("tie_word_embeddings", False))
    shapes = _tensor_shapes(model)
    has_output = not tied and "lm_head.weight" in shapes
    plan = []
    for source, (shape, _) in shapes.items():
        if source.endswith(_SKIPPED) or (tied and source == "lm_head.weight"):
            continue
        name = names.get_name(source, try_suffixes=(".weight", ".bias"))
        if name is None:
            raise ExportError(f"The weight '{source}' has no place in a GGUF {model.arch} file; this model is not a "
                              f"plain {model.hf_arch}. Export it as a safetensors folder instead.")
        is_output = name == "output.weight" or (name == "token_embd.weight" and not has_output)
        plan.append(PlannedTensor(source, name, shape, _choose_qtype(name, shape, quant, is_output)))
    return plan


# ---------------------------------------------------------------------------------------------- vocabulary

def _pre_tokenizer_name(tokenizer_json: dict) -> str:
    """llama.cpp's name for how this byte-level BPE splits text before merging. llama.cpp's converter
    recognises a tokenizer by hashing its output on a test string; we read the splitting rules instead,
    so a tokenizer that transformers rebuilt from a GGUF (the built-in model's) is recognised too."""
    pre = tokenizer_json.get("pre_tokenizer") or {}
    steps = pre.get("pretokenizers", []) if pre.get("type") == "Sequence" else [pre]
    kinds = [step.get("type") for step in steps]
    if kinds == ["ByteLevel"] and steps[0].get("use_regex", True):
        return "gpt-2"
    if kinds == ["Digits", "ByteLevel"] and steps[0].get("individual_digits") and steps[1].get("use_regex", True):
        return "smollm"
    splits = [step for step in steps if step.get("type") == "Split"]
    if len(splits) == 1 and kinds[-1] == "ByteLevel":
        pattern = (splits[0].get("pattern") or {}).get("Regex")
        from transformers.integrations.gguf.gguf_tokenizer_mapping import GGUF_PRE_TOKENIZER_SPLITS as known
        preferred = ["llama-bpe", "qwen2"] + sorted(known)
        for name in preferred:
            if known.get(name) == pattern:
                return name
    raise ExportError("The tokenizer splits text in a way llama.cpp has no name for, so a GGUF of it would "
                      "tokenize differently. Export it as a safetensors folder instead.")


def tokenizer_adds_special(tokenizer) -> tuple[bool, bool]:
    """Whether encoding text adds the BOS, and the EOS, measured rather than read from config files."""
    ids = tokenizer("a")["input_ids"]
    bos, eos = tokenizer.bos_token_id, tokenizer.eos_token_id
    return (bos is not None and ids[:1] == [bos]), (eos is not None and ids[-1:] == [eos] and len(ids) > 1)


def read_vocabulary(model: ModelFolder) -> Vocabulary:
    """Tokens, token types and merges the way llama.cpp expects them, read with gguf.vocab."""
    gguf = _gguf()
    from transformers import AutoTokenizer

    tokenizer_file = model.path / "tokenizer.json"
    if not tokenizer_file.exists():
        raise ExportError(f"'{model.path}' has no tokenizer.json; a GGUF needs the model's fast tokenizer.")
    tokenizer_json = json.loads(tokenizer_file.read_text())
    tokenizer = AutoTokenizer.from_pretrained(model.path)
    add_bos, add_eos = tokenizer_adds_special(tokenizer)
    n_vocab = int(model.config["vocab_size"])
    try:
        vocab = gguf.LlamaHfVocab(model.path)  # sentencepiece-style BPE with byte fallback: Mistral, Llama 2
        model_kind, pre = "llama", "default"
    except (FileNotFoundError, TypeError):  # byte-level BPE: Llama 3, Qwen2, SmolLM
        vocab = gguf.BpeVocab(model.path)
        model_kind, pre = "gpt2", _pre_tokenizer_name(tokenizer_json)
    tokens, scores, types = [], [], []
    for text, score, kind in vocab.all_tokens():
        tokens.append(text.decode("utf-8") if isinstance(text, bytes) else text)
        scores.append(score)
        types.append(int(kind))
    if model_kind == "gpt2":
        # BpeVocab calls every token of the base vocabulary NORMAL, but added tokens that live inside it
        # (SmolLM's <|im_start|>, Qwen's <|im_end|>) must be CONTROL, or llama.cpp and transformers would
        # spell them out letter by letter. llama.cpp's converter does the same from the tokenizer.
        for added in tokenizer_json.get("added_tokens", []):
            if added["id"] < len(types):
                kind = gguf.TokenType.CONTROL if added.get("special") else gguf.TokenType.USER_DEFINED
                types[added["id"]] = int(kind)
        scores = None
    if len(tokens) > n_vocab:
        raise ExportError(f"The tokenizer has {len(tokens)} tokens but the model only {n_vocab} embeddings.")
    for i in range(len(tokens), n_vocab):  # embeddings padded past the tokenizer (Qwen2.5 does this)
        tokens.append(f"[PAD{i}]")
        types.append(int(gguf.TokenType.UNUSED))
        if scores is not None:
            scores.append(-1000.0)
    return Vocabulary(model_kind, pre, tokens, types, scores, add_bos, add_eos)


# ------------------------------------------------------------------------------------------------ writing

def _file_type(quant: str):
    F = _gguf().LlamaFileType
    return {"f16": F.MOSTLY_F16, "q8_0": F.MOSTLY_Q8_0, "q4_0": F.MOSTLY_Q4_0}[quant]


def _rope_theta(config: dict) -> float | None:
    rope = config.get("rope_parameters") or {}
    return rope.get("rope_theta", config.get("rope_theta"))


def _add_metadata(writer, model: ModelFolder, vocab: Vocabulary, quant: str, name: str, description: str):
    gguf = _gguf()
    c = model.config
    writer.add_type(gguf.GGUFType.MODEL)
    writer.add_name(name)
    if description:
        writer.add_description(description)
    writer.add_block_count(c["num_hidden_layers"])
    writer.add_context_length(c["max_position_embeddings"])
    writer.add_embedding_length(c["hidden_size"])
    writer.add_feed_forward_length(c["intermediate_size"])
    writer.add_head_count(c["num_attention_heads"])
    writer.add_head_count_kv(c.get("num_key_value_heads") or c["num_attention_heads"])
    if (theta := _rope_theta(c)) is not None:
        writer.add_rope_freq_base(float(theta))
    writer.add_layer_norm_rms_eps(float(c["rms_norm_eps"]))
    head_dim = c.get("head_dim") or c["hidden_size"] // c["num_attention_heads"]
    if c.get("head_dim") is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)
    if model.arch == "llama":
        writer.add_vocab_size(c["vocab_size"])
        writer.add_rope_dimension_count(head_dim)
    writer.add_file_type(_file_type(quant))
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)

    writer.add_tokenizer_model(vocab.model)
    writer.add_tokenizer_pre(vocab.pre)
    writer.add_token_list(vocab.tokens)
    writer.add_token_types(vocab.types)
    if vocab.scores is not None:
        writer.add_token_scores(vocab.scores)
    special = gguf.SpecialVocab(model.path, load_merges=vocab.model == "gpt2", n_vocab=len(vocab.tokens))
    special.add_special_token = {}  # measured below instead of guessed from the post-processor
    if "pad" not in special.special_token_ids and "eos" in special.special_token_ids:
        special.special_token_ids["pad"] = special.special_token_ids["eos"]
    special.add_to_gguf(writer, quiet=True)
    writer.add_add_bos_token(vocab.add_bos)
    writer.add_add_eos_token(vocab.add_eos)


def _permute(weights, n_head: int, n_head_kv: int | None = None):
    """llama.cpp's q/k row order: for each head, interleave the two rotary halves."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    return (weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
            .swapaxes(1, 2).reshape(weights.shape))


def _tensor_data(model: ModelFolder, tensor: PlannedTensor, handle):
    import numpy as np
    data = handle.get_tensor(tensor.source).float().numpy()
    if model.permute_qk:
        heads = model.config["num_attention_heads"]
        if ".attn_q." in tensor.name:
            data = _permute(data, heads, heads)
        elif ".attn_k." in tensor.name:
            data = _permute(data, heads, model.config.get("num_key_value_heads") or heads)
    return np.ascontiguousarray(data)


def write_gguf(folder, target, quant: str, name: str, description: str = "",
               progress=lambda fraction, message: None) -> Path:
    """Write `folder` (a merged model) to the file `target` in `quant` (f16, q8_0 or q4_0)."""
    gguf = _gguf()
    import numpy as np
    from safetensors import safe_open

    model = read_folder(folder)
    plan = plan_tensors(model, quant)
    progress(0.0, "Reading the tokenizer")
    vocab = read_vocabulary(model)
    target = Path(target)
    writer = gguf.GGUFWriter(path=None, arch=model.arch)
    _add_metadata(writer, model, vocab, quant, name, description)
    for t in plan:  # declared up front so the tensors can then be written one at a time
        writer.add_tensor_info(t.name, t.shape, np.float32, t.nbytes, raw_dtype=t.qtype)
    writer.write_header_to_file(path=target)
    writer.write_kv_data_to_file()
    writer.write_ti_data_to_file()
    total = sum(t.nbytes for t in plan) or 1
    done = 0
    shapes = _tensor_shapes(model)
    with contextlib.ExitStack() as stack:
        stack.callback(writer.close)
        handles = {file: stack.enter_context(safe_open(str(file), framework="pt")) for file in model.files}
        for t in plan:
            data = _tensor_data(model, t, handles[shapes[t.source][1]])
            try:
                packed = gguf.quants.quantize(data, t.qtype)
            except gguf.QuantError:  # planned away above; kept as llama.cpp's own safety net
                raise ExportError(f"Could not quantize '{t.source}' to {quant}.") from None
            writer.write_tensor_data(packed)
            done += t.nbytes
            progress(done / total, f"Writing {quant} tensors ({size_text(done)} of {size_text(total)})")
    return target


# ------------------------------------------------------------------------------------------------- sizes

def _metadata_bytes(vocab: Vocabulary, merges: int, merge_chars: int, template: str) -> int:
    strings = sum(8 + len(t.encode("utf-8")) for t in vocab.tokens)
    arrays = 4 * len(vocab.types) + (4 * len(vocab.scores) if vocab.scores else 0)
    return strings + arrays + 8 * merges + merge_chars + len(template.encode("utf-8")) + 2048


def estimate_sizes(folder, quants=QUANTS) -> dict[str, int]:
    """Expected size in bytes of the GGUF file for each format, before writing anything."""
    gguf = _gguf()
    model = read_folder(folder)
    vocab = read_vocabulary(model)
    special = gguf.SpecialVocab(model.path, load_merges=vocab.model == "gpt2", n_vocab=len(vocab.tokens))
    template = special.chat_template if isinstance(special.chat_template, str) else ""
    merge_chars = sum(len(m.encode("utf-8")) for m in special.merges)
    meta = _metadata_bytes(vocab, len(special.merges), merge_chars, template or "")
    sizes = {}
    for quant in quants:
        plan = plan_tensors(model, quant)
        info = sum(8 + len(t.name) + 4 + 8 * len(t.shape) + 4 + 8 for t in plan)
        data = sum(gguf.GGUFWriter.ggml_pad(t.nbytes, gguf.GGUF_DEFAULT_ALIGNMENT) for t in plan)
        sizes[quant] = meta + info + data
    return sizes
