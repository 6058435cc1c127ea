"""Tables: CSV/TSV (delimiter sniffed, huge cells allowed), Parquet (pyarrow) and the first sheet of an .xlsx (openpyxl).

Each is read as a stream, row by row, under the row cap (caps.py): Parquet one batch at a time, and a sheet up to
its last real row whatever size it claims to be.
"""
from __future__ import annotations

import csv
import math
import sys
import zipfile
from pathlib import Path
from typing import Any

from backend.errors import DataError

from .caps import DecodedCap, RowCap, check_unpacked
from .encodings import lines
from .report import RowError
from .result import ReadResult

PARQUET_BATCH = 1024


def _pick_delimiter(header: str) -> str:
    counts = {d: header.count(d) for d in ",;\t|"}
    best = max(counts, key=counts.get)
    return best if counts[best] else ","


def _unique(headers: list[str]) -> list[str]:
    while headers and not (headers[-1] or "").strip():
        headers = headers[:-1]
    seen: dict[str, int] = {}
    out = []
    for i, h in enumerate(headers, start=1):
        h = (h or "").strip().lstrip("\ufeff") or f"column_{i}"
        if h in seen:
            seen[h] += 1
            h = f"{h}_{seen[h]}"
        else:
            seen[h] = 1
        out.append(h)
    return out


def read_csv(text: str, path: Path, fmt: str) -> ReadResult:
    result = ReadResult(path, fmt)
    csv.field_size_limit(min(sys.maxsize, 2**31 - 1))  # one huge cell must not stop the file
    first = text.lstrip("\r\n").split("\n", 1)[0]
    delimiter = "\t" if fmt == "tsv" else _pick_delimiter(first)
    if fmt == "csv" and delimiter == "\t":
        result.file_format = "tsv"
    elif delimiter not in ",\t":
        result.notices.append(f"Columns are separated by '{delimiter}'.")
    reader = csv.reader(lines(text, keepends=True), delimiter=delimiter)
    cap = RowCap(path.name)
    number = 0
    try:
        header = None
        for row in reader:
            if any(cell.strip() for cell in row):
                header = _unique(row)
                break
        if header is None:
            raise DataError(f"{path.name} holds no header row and no data.")
        result.columns = header
        for row in reader:
            number += 1
            if not any(cell.strip() for cell in row):
                continue
            cap(number)
            if len(row) > len(header) and any(c.strip() for c in row[len(header):]):
                result.errors.append(RowError(
                    number,
                    f"has {len(row)} values but the header has {len(header)} columns "
                    "(a comma inside a text that is not in quotes?)", "bad_columns"))
                continue
            result.records.append((number, {h: (row[i] if i < len(row) else None) for i, h in enumerate(header)}))
    except csv.Error as e:
        raise DataError(f"{path.name} could not be read as {fmt.upper()} near data row {number + 1}: {e}. Check the quotes there.") from None
    if not result.records and not result.errors:
        cols = ", ".join(f"'{c}'" for c in header[:8])
        raise DataError(f"{path.name} has a header ({cols}) but no data rows.")
    return result


# ---------------------------------------------------------------- Parquet / Excel

def _clean_cell(value: Any) -> Any:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "isoformat") and not isinstance(value, str):
        return value.isoformat()
    return value


def _parquet_failed(path: Path, e: Exception) -> DataError:
    return DataError(f"{path.name} could not be read as Parquet ({(str(e).splitlines() or [type(e).__name__])[0][:200]}). "
                     "Export it again.")


def read_parquet(path: Path) -> ReadResult:
    """Batch by batch: the row count the file declares is checked against the cap before anything is unpacked
    (a few kilobytes of repeated values can stand for a million rows), and the size its columns decode to as each
    batch is decoded, before its rows become records (DecodedCap)."""
    try:
        import pyarrow.parquet as pq
        parquet = pq.ParquetFile(path)
        total = parquet.metadata.num_rows
        columns = [str(c) for c in parquet.schema_arrow.names]
    except Exception as e:  # pyarrow raises many kinds
        raise _parquet_failed(path, e) from None
    result = ReadResult(path, "parquet", columns=columns)
    if total == 0:
        raise DataError(f"{path.name} has columns ({', '.join(result.columns[:8])}) but no rows.")
    cap = RowCap(path.name)
    cap.check_total(total)
    decoded = DecodedCap(path.name, path.stat().st_size)
    number = 0
    try:
        metadata = parquet.metadata
        decoded.check_declared(sum(metadata.row_group(g).column(c).total_uncompressed_size
                                   for g in range(metadata.num_row_groups) for c in range(metadata.num_columns)))
        for batch in parquet.iter_batches(batch_size=PARQUET_BATCH):
            decoded(number + batch.num_rows, _decoded_bytes(batch))
            for row in batch.to_pylist():
                number += 1
                cap(number)
                result.records.append((number, {str(k): _clean_cell(v) for k, v in row.items()}))
    except (DataError, MemoryError):
        raise
    except Exception as e:
        raise _parquet_failed(path, e) from None
    finally:
        parquet.close()
    return result


def _decoded_bytes(batch) -> int:
    """What a batch's columns hold once decoded: a dictionary column counts each row's value, not the dictionary
    once (which is all Arrow's nbytes counts)."""
    import pyarrow as pa
    import pyarrow.compute as pc
    size = 0
    for column in batch.columns:
        if pa.types.is_dictionary(column.type) and (pa.types.is_string(column.dictionary.type)
                                                    or pa.types.is_large_string(column.dictionary.type)
                                                    or pa.types.is_binary(column.dictionary.type)):
            lengths = pc.take(pc.binary_length(column.dictionary), column.indices)
            size += (pc.sum(lengths).as_py() or 0) + column.indices.nbytes
        elif pa.types.is_dictionary(column.type):
            size += column.cast(column.type.value_type).nbytes
        else:
            size += column.nbytes
    return size


def unpacked_size(path: Path) -> int:
    """What a ZIP file's members unpack to, from its directory (no member is read)."""
    try:
        with zipfile.ZipFile(path) as archive:
            return sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError) as e:
        raise DataError(f"{path.name} could not be opened as an Excel workbook ({str(e)[:200]}). "
                        "Save it again as .xlsx or CSV.") from None


def read_xlsx(path: Path) -> ReadResult:
    """The first sheet, row by row. The size a sheet declares (its 'dimension', e.g. A1:XFD1048576) is ignored:
    rows are read as they are stored and padded to the header's width, so a claimed million rows of 16,384 columns
    costs nothing, and the reading ends at the last real row."""
    check_unpacked(path.name, path.stat().st_size, unpacked_size(path))
    try:
        import openpyxl
        book = openpyxl.load_workbook(path, read_only=True, data_only=True)
    except Exception as e:
        raise DataError(f"{path.name} could not be opened as an Excel workbook ({str(e)[:200]}). Save it again as .xlsx or CSV.") from None
    try:
        sheet = book.worksheets[0]
        result = ReadResult(path, "xlsx")
        if len(book.worksheets) > 1:
            result.notices.append(f"Read the first sheet ('{sheet.title}'); the other {len(book.worksheets) - 1} sheet(s) were not used.")
        if hasattr(sheet, "reset_dimensions"):  # read-only sheets: forget the declared size
            sheet.reset_dimensions()
        rows = sheet.iter_rows(values_only=True)
        header = None
        for row in rows:
            if any(c is not None and str(c).strip() for c in row):
                header = _unique([("" if c is None else str(c)) for c in row])
                break
        if header is None:
            raise DataError(f"The first sheet of {path.name} is empty. Put the examples there, one per row, under a header row.")
        result.columns = header
        cap = RowCap(path.name)
        number = 0
        for row in rows:
            number += 1
            if not any(c is not None and str(c).strip() for c in row):
                continue
            cap(number)
            result.records.append((number, {h: _clean_cell(row[i]) if i < len(row) else None for i, h in enumerate(header)}))
    finally:
        book.close()
    if not result.records:
        raise DataError(f"The first sheet of {path.name} has a header ({', '.join(header[:8])}) but no data rows.")
    return result
