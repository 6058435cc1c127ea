"""The catalogue of popular open instruct models (the data lives in catalogue.yaml, next to this file)."""
import functools
from dataclasses import dataclass, field
from pathlib import Path

import yaml

CATALOGUE_FILE = Path(__file__).with_name("catalogue.yaml")
SHAPE_FIELDS = ("model_type", "hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                "num_key_value_heads", "head_dim", "vocab_size", "tie_word_embeddings")


@dataclass(frozen=True)
class CatalogueEntry:
    id: str  # hub id
    name: str
    params_b: float
    licence: str
    gated: bool
    template: str  # chat template family (see catalogue.yaml)
    download_bytes: int
    config: dict = field(hash=False)  # the config.json fields the memory estimate needs
    source: str = ""
    bytes_source: str = "computed"


@functools.lru_cache(maxsize=1)
def catalogue() -> tuple[CatalogueEntry, ...]:
    data = yaml.safe_load(CATALOGUE_FILE.read_text(encoding="utf-8"))
    entries = []
    for item in data["models"]:
        missing = [name for name in SHAPE_FIELDS if name not in item["config"]]
        if missing:  # a broken data file is a programming error, not the user's
            raise ValueError(f"{CATALOGUE_FILE.name}: {item['id']} lacks {', '.join(missing)}")
        entries.append(CatalogueEntry(**item))
    return tuple(entries)


def find(model_id: str | None) -> CatalogueEntry | None:
    """The catalogue entry for a hub id (any letter case), or None."""
    wanted = (model_id or "").strip().lower()
    return next((entry for entry in catalogue() if entry.id.lower() == wanted), None)
