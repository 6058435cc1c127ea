"""Hostile and unlucky data files, made on the spot: each builder writes one into a folder and returns its path."""
import gzip
import json
import zipfile
from pathlib import Path

QA = [{"prompt": f"What is {i} plus one?", "completion": f"It is {i + 1}."} for i in range(30)]


def normal_jsonl(folder: Path, name: str = "normal.jsonl") -> Path:
    path = Path(folder) / name
    path.write_text("".join(json.dumps(row) + "\n" for row in QA))
    return path


def xlsx_dimension_bomb(folder: Path) -> Path:
    """A small real workbook (a header and three rows) whose sheet claims the dimension A1:XFD1048576: every cell
    Excel allows. Read as declared, that is 17 billion cells."""
    import openpyxl
    plain = Path(folder) / "plain.xlsx"
    book = openpyxl.Workbook()
    sheet = book.active
    sheet.append(["prompt", "completion"])
    for row in QA[:3]:
        sheet.append([row["prompt"], row["completion"]])
    book.save(plain)
    bomb = Path(folder) / "dimension_bomb.xlsx"
    with zipfile.ZipFile(plain) as src, zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as dst:
        for item in src.infolist():
            data = src.read(item.filename)
            if item.filename == "xl/worksheets/sheet1.xml":
                text = data.decode()
                start = text.index('<dimension ref="')
                end = text.index('"', start + len('<dimension ref="'))
                data = (text[:start] + '<dimension ref="A1:XFD1048576' + text[end:]).encode()
            dst.writestr(item, data)
    plain.unlink()
    return bomb


def xlsx_zip_bomb(folder: Path, unpacked_mb: int = 96) -> Path:
    """A workbook whose sheet is `unpacked_mb` MB of XML rows (a few hundred kB packed)."""
    bomb = Path(folder) / "zip_bomb.xlsx"
    row = '<row r="{0}"><c r="A{0}" t="inlineStr"><is><t>' + "x" * 40 + "</t></is></c></row>"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
        z.writestr("[Content_Types].xml", CONTENT_TYPES)
        z.writestr("_rels/.rels", RELS)
        z.writestr("xl/workbook.xml", WORKBOOK)
        z.writestr("xl/_rels/workbook.xml.rels", WORKBOOK_RELS)
        with z.open("xl/worksheets/sheet1.xml", "w", force_zip64=True) as sheet:
            sheet.write(b'<?xml version="1.0" encoding="UTF-8"?><worksheet xmlns="http://schemas.openxmlformats.org/'
                        b'spreadsheetml/2006/main"><sheetData>')
            written, number = 0, 1
            chunk_rows = 2000
            while written < unpacked_mb * 1024 * 1024:
                chunk = "".join(row.format(number + i) for i in range(chunk_rows)).encode()
                sheet.write(chunk)
                written += len(chunk)
                number += chunk_rows
            sheet.write(b"</sheetData></worksheet>")
    return bomb


def parquet_repeat_bomb(folder: Path, rows: int = 1_000_000, text: str = "Hello.") -> Path:
    """`rows` rows of the same two values: dictionary- and run-length-encoded into a few kilobytes."""
    import pyarrow as pa
    import pyarrow.parquet as pq
    path = Path(folder) / f"repeat_bomb_{rows}.parquet"
    prompt = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array(["Say hello."]))
    completion = pa.DictionaryArray.from_arrays(pa.array([0] * rows, pa.int32()), pa.array([text]))
    pq.write_table(pa.table({"prompt": prompt, "completion": completion}), path, compression="zstd")
    return path


def tiny_rows_jsonl(folder: Path, megabytes: int = 199) -> Path:
    """`megabytes` MB of the shortest JSONL rows (under the 200 MB upload limit): about 6 million of them."""
    path = Path(folder) / "tiny_rows.jsonl"
    line = b'{"prompt":"q","completion":"a"}\n'
    block = line * (1024 * 1024 // len(line))
    with open(path, "wb") as f:
        for _ in range(megabytes):
            f.write(block)
    return path


def deeply_nested_json(folder: Path, depth: int = 200_000) -> Path:
    path = Path(folder) / "nested.json"
    path.write_text("[" * depth + "]" * depth)
    return path


def empty(folder: Path) -> Path:
    path = Path(folder) / "empty.jsonl"
    path.write_bytes(b"")
    return path


def binary(folder: Path) -> Path:
    import random
    path = Path(folder) / "data.jsonl"
    rng = random.Random(0)
    path.write_bytes(bytes(rng.randrange(256) for _ in range(20_000)))
    return path


def gzipped(folder: Path) -> Path:
    path = Path(folder) / "chats.jsonl"
    path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in QA).encode()))
    return path


def pdf(folder: Path) -> Path:
    path = Path(folder) / "examples.csv"
    path.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog >> endobj\ntrailer << /Root 1 0 R >>\n%%EOF\n")
    return path


def utf16(folder: Path) -> Path:
    path = Path(folder) / "utf16.csv"
    text = "prompt,completion\n" + "".join(f"Où est {i}?,Là-bas {i}.\n" for i in range(30))
    path.write_bytes(text.encode("utf-16"))
    return path


def cp1252(folder: Path) -> Path:
    path = Path(folder) / "cp1252.csv"
    text = "prompt,completion\n" + "".join(f"Café {i}?,Crème brûlée {i} – ok.\n" for i in range(30))
    path.write_bytes(text.encode("cp1252"))
    return path


CONTENT_TYPES = ('<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/'
                 'content-types"><Default Extension="rels" ContentType="application/vnd.openxmlformats-package.'
                 'relationships+xml"/><Default Extension="xml" ContentType="application/xml"/><Override PartName="/xl/'
                 'workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"'
                 '/><Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-'
                 'officedocument.spreadsheetml.worksheet+xml"/></Types>')
RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/'
        'relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/'
        'relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>')
WORKBOOK = ('<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/'
            '2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet '
            'name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>')
WORKBOOK_RELS = ('<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/'
                 'package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats.org/'
                 'officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>')
