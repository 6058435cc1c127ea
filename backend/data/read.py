"""Reading a data file into records: size limit, encodings, JSON/JSONL/CSV/TSV/Parquet/XLSX.

Every record carries the row number the user sees: the line number in JSONL, the element
number in a JSON list, the data row number (header not counted) in CSV/TSV/XLSX/Parquet.
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from backend.errors import DataError
from backend.limits import max_upload_bytes
from backend.words import size_text

from .caps import RowCap
from .encodings import SUPPORTED, decode, lines
from .report import RowError
from .result import ReadResult
from .tables import read_csv, read_parquet, read_xlsx

LIST_KEYS = ("data", "rows", "examples", "train", "records", "items", "instances", "samples", "dataset")
EXTENSIONS = {
    ".jsonl": "jsonl", ".ndjson": "jsonl", ".jsonlines": "jsonl", ".json": "json",
    ".csv": "csv", ".tsv": "tsv", ".tab": "tsv", ".parquet": "parquet", ".pq": "parquet",
    ".xlsx": "xlsx", ".xlsm": "xlsx",
}
TEXT_EXTENSIONS = (".txt", ".text")  # JSON Lines or tab-separated columns, never prose read as a CSV
# Magic numbers of files people upload by mistake: (prefix, what it is, what to do).
MAGIC = [
    (b"\x1f\x8b", "a gzip-compressed file", "Unpack it first"),
    (b"%PDF", "a PDF document", f"Export the examples as {SUPPORTED}"),
    (b"\x89PNG", "a PNG image", f"Upload the examples as {SUPPORTED}"),
    (b"\xff\xd8\xff", "a JPEG image", f"Upload the examples as {SUPPORTED}"),
    (b"SQLite format 3\x00", "an SQLite database", f"Export the table as {SUPPORTED}"),
    (b"\xd0\xcf\x11\xe0", "an old Excel (.xls) or Word file", "Save it as .xlsx or CSV"),
    (b"BZh", "a bzip2-compressed file", "Unpack it first"),
    (b"7z\xbc\xaf", "a 7-Zip archive", "Unpack it first"),
]


def read_file(path: str | Path, max_bytes: int | None = None) -> ReadResult:
    path = Path(path)
    name = path.name
    if not path.exists():
        raise DataError(f"No file at {path}. Check the path and try again.")
    if path.is_dir():
        raise DataError(f"{path} is a folder, not a file. Pick one data file ({SUPPORTED}).")
    limit = max_upload_bytes() if max_bytes is None else max_bytes
    size = path.stat().st_size
    if size > limit:
        raise DataError(
            f"{name} is {size_text(size)}, over the {size_text(limit)} limit. Split it into smaller files, "
            "or raise the limit with the TUNELOOP_MAX_UPLOAD_MB setting."
        )
    if size == 0:
        raise DataError(f"{name} is empty (0 bytes). Pick the file that holds your examples.")
    with open(path, "rb") as f:
        head = f.read(8192)
    ext = path.suffix.lower()
    fmt = EXTENSIONS.get(ext)
    if head.startswith(b"PAR1"):
        fmt = "parquet"
    elif head.startswith(b"PK\x03\x04"):
        if fmt != "xlsx" and b"xl/" not in head and ext not in (".xlsx", ".xlsm"):
            raise DataError(f"{name} is a ZIP archive, not a data file. Unpack it and pick the data file inside ({SUPPORTED}).")
        fmt = "xlsx"
    elif ext == ".xls":
        raise DataError(f"{name} is an old Excel .xls file. Save it as .xlsx or CSV and try again.")
    elif fmt in ("parquet", "xlsx"):
        raise DataError(f"{name} is named {ext} but is not a {fmt} file. Check that the file was saved in that format.")
    if fmt == "parquet":
        return read_parquet(path)
    if fmt == "xlsx":
        return read_xlsx(path)
    for magic, what, todo in MAGIC:
        if head.startswith(magic):
            raise DataError(f"{name} is {what}, not a text data file. {todo}.")
    with open(path, "rb") as f:
        text, encoding, notices = decode(f.read(), name)  # the bytes are let go as soon as they are text
    if not text.strip():
        raise DataError(f"{name} holds only blank lines, no examples. Pick the file that holds your examples.")
    if ext in TEXT_EXTENSIONS:
        fmt = _text_file_format(text, name)
    elif fmt is None:
        fmt = _sniff(text)
    if fmt == "json":
        result = _read_json(text, path)
    elif fmt == "jsonl":
        result = _read_jsonl(text, path)
    else:
        result = read_csv(text, path, fmt)
    result.encoding = encoding
    result.notices[:0] = notices
    return result


def _text_file_format(text: str, name: str) -> str:
    """A .txt file holds plain lines of text unless it shows otherwise: JSON Lines or JSON (it starts with { or [), or
    tab-separated columns (Excel's "Text (Tab delimited)" saves those as .txt). Read as a CSV, a line of prose became
    a column named after the file's first line, and its commas cut the others into cells."""
    fmt = _sniff(text)
    if fmt in ("json", "jsonl", "tsv"):
        return fmt
    raise DataError(
        f"{name} holds plain lines of text, not examples with a question and an answer. A .txt file is read when it "
        "holds JSON Lines (one {\"prompt\": ..., \"completion\": ...} per line) or tab-separated columns under a header "
        f"row; name a comma-separated file .csv. Files read: {SUPPORTED}.")


def _sniff(text: str) -> str:
    start = text.lstrip()[:1]
    if start == "[":
        return "json"
    if start == "{":
        first = text.lstrip().split("\n", 1)[0].strip()
        try:
            json.loads(first)
            return "jsonl"
        except ValueError:
            return "json"
    line = text.split("\n", 1)[0]
    return "tsv" if line.count("\t") > line.count(",") else "csv"


# ---------------------------------------------------------------- JSON and JSONL

def _json_error(e: json.JSONDecodeError) -> str:
    return f"not valid JSON ({e.msg} at column {e.colno})"


def _what(value: Any) -> str:
    return {list: "a list", str: "a text string", int: "a number", float: "a number", bool: "true/false"}.get(type(value), "nothing (null)")


def _not_object(value: Any) -> str:
    return f"is {_what(value)}, not an example with named fields (an object like {{\"prompt\": ..., \"completion\": ...}})"


def _read_jsonl(text: str, path: Path) -> ReadResult:
    result = ReadResult(path, "jsonl")
    keys: dict[str, None] = {}
    cap = RowCap(path.name)
    for number, line in enumerate(lines(text), start=1):
        if not line.strip():
            continue
        cap(number)
        try:
            value = json.loads(line)
        except json.JSONDecodeError as e:
            result.errors.append(RowError(number, _json_error(e), "invalid_json"))
            continue
        except RecursionError:
            result.errors.append(RowError(number, "not valid JSON (nested too deeply)", "invalid_json"))
            continue
        if not isinstance(value, dict):
            result.errors.append(RowError(number, _not_object(value), "not_object"))
            continue
        if len(keys) < 200:
            keys.update(dict.fromkeys(value))
        result.records.append((number, value))
    result.columns = list(keys)
    if not result.records and result.errors and all(e.code == "invalid_json" for e in result.errors):
        try:  # a pretty-printed JSON document saved as .jsonl
            alt = _read_json(text, path)
            alt.notices.append("The file is named .jsonl but holds one JSON document; it was read as JSON.")
            return alt
        except DataError:
            pass
    return result


def _read_json(text: str, path: Path) -> ReadResult:
    name = path.name
    try:
        value = json.loads(text)
    except RecursionError:
        raise DataError(f"{name} is not usable JSON: it is nested too deeply.") from None
    except json.JSONDecodeError as e:
        if e.msg == "Extra data":  # JSON Lines saved as .json
            result = _read_jsonl(text, path)
            if result.records:
                result.notices.append("The file is named .json but holds one example per line (JSON Lines); it was read that way.")
                return result
        raise DataError(
            f"{name} is not valid JSON: {e.msg} at line {e.lineno}, column {e.colno}. "
            "Fix the file there (a missing comma, quote or bracket is common)."
        ) from None
    result = ReadResult(path, "json")
    if isinstance(value, dict):
        value = _list_in_object(value, result, name)
    if not isinstance(value, list):
        raise DataError(f"{name} holds {_what(value)}, not a list of examples. Put the examples in a JSON list.")
    if not value:
        raise DataError(f"{name} holds an empty list: no examples. Pick the file that holds your examples.")
    cap = RowCap(name)
    cap.check_total(len(value))
    keys: dict[str, None] = {}
    for i, item in enumerate(value, start=1):
        if isinstance(item, dict):
            if len(keys) < 200:
                keys.update(dict.fromkeys(item))
            result.records.append((i, item))
        else:
            result.errors.append(RowError(i, _not_object(item), "not_object"))
    result.columns = list(keys)
    return result


def _list_in_object(obj: dict, result: ReadResult, name: str) -> Any:
    lowered = {str(k).lower(): k for k in obj}
    for key in LIST_KEYS:
        if key in lowered and isinstance(obj[lowered[key]], list):
            result.notices.append(f"Read the examples from the '{lowered[key]}' list in the JSON object.")
            return obj[lowered[key]]
    lists = [k for k, v in obj.items() if isinstance(v, list) and v and all(isinstance(x, dict) for x in v[:50])]
    nested = [k for k in lists if not all(("role" in x or "from" in x) for x in obj[k][:50])]
    if len(nested) == 1:
        result.notices.append(f"Read the examples from the '{nested[0]}' list in the JSON object.")
        return obj[nested[0]]
    values = list(obj.values())
    if values and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1 and not lists:
        result.notices.append("The JSON object holds one list per column; each position was read as one example.")
        keys = list(obj)
        return [dict(zip(keys, row)) for row in zip(*values)]
    if any(str(k).lower() in ("messages", "conversations", "instruction", "prompt", "chosen") for k in obj):
        result.notices.append("The JSON object holds a single example.")
        return [obj]
    shown = ", ".join(f"'{k}'" for k in list(obj)[:8])
    raise DataError(
        f"{name} holds a JSON object with keys {shown} but no list of examples. "
        "Put the examples in a list, or under a key named 'data'."
    )
