"""Bytes to text: UTF-8 with or without BOM, UTF-16/32, and a Windows-1252/Latin-1 fallback that says so."""
from __future__ import annotations

import codecs

from backend.errors import DataError

SUPPORTED = "JSONL, JSON, CSV, TSV, Parquet or Excel (.xlsx)"


def decode(data: bytes, name: str = "the file") -> tuple[str, str, list[str]]:
    """Bytes to text: UTF-8 (BOM or not), UTF-16/32 (BOM or clear NUL pattern), else Windows-1252/Latin-1."""
    for bom, enc in ((codecs.BOM_UTF32_LE, "utf-32"), (codecs.BOM_UTF32_BE, "utf-32"),
                     (codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16")):
        if data.startswith(bom):
            return _decode_strict(data, enc, name), enc, []
    sample = data[:4096]
    if sample.count(0):
        even, odd = sample[0::2].count(0), sample[1::2].count(0)
        half = len(sample) / 2
        if odd > 0.3 * half and even < 0.05 * half:
            return _decode_strict(data, "utf-16-le", name), "utf-16-le", []
        if even > 0.3 * half and odd < 0.05 * half:
            return _decode_strict(data, "utf-16-be", name), "utf-16-be", []
        raise DataError(f"{name} holds binary data, not text. Save the examples as {SUPPORTED}.")
    try:
        text = data.decode("utf-8")
        encoding = "utf-8"
        notices = []
    except UnicodeDecodeError as e:
        try:
            text = data.decode("cp1252")
            encoding = "cp1252"
        except UnicodeDecodeError:
            text = data.decode("latin-1")
            encoding = "latin-1"
        line = data.count(b"\n", 0, e.start) + 1
        notices = [
            f"The file is not UTF-8 (first odd byte on line {line}); it was read as Windows-1252/Latin-1. "
            "Check that accented letters look right, or save the file as UTF-8."
        ]
    controls = sum(1 for ch in text[:4096] if ord(ch) < 32 and ch not in "\t\n\r\f\v")
    if controls > 0.05 * min(len(text), 4096):
        raise DataError(f"{name} holds binary data, not text. Save the examples as {SUPPORTED}.")
    return text, encoding, notices


def _decode_strict(data: bytes, encoding: str, name: str) -> str:
    try:
        return data.decode(encoding)
    except UnicodeDecodeError as e:
        raise DataError(
            f"{name} looks like {encoding.upper()} text but has a broken character at byte {e.start}. "
            "Save it again as UTF-8."
        ) from None


def lines(text: str, keepends: bool = False):
    """The lines of a text one at a time (\\n, \\r\\n or, in a file with no \\n, \\r), without a list of them all:
    a file of millions of tiny rows stops at the row cap having held only the rows read."""
    sep = "\n" if "\n" in text or "\r" not in text else "\r"
    start, end_of_text = 0, len(text)
    while start < end_of_text:
        end = text.find(sep, start)
        end = end_of_text if end == -1 else end + 1
        line = text[start:end]
        start = end
        yield line if keepends else line.rstrip("\r\n")
