"""Small files for the disclosure-check catalogue, written into a folder by name.

Each builder takes the folder and returns the path it wrote. Images, PDFs and notebooks are made
byte by byte so the tests need no plotting library.
"""

from __future__ import annotations

import json
import struct
import zipfile
import zlib
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq


def write(folder: Path, name: str, text: str, encoding: str = "utf-8") -> Path:
    p = folder / name
    p.write_bytes(text.encode(encoding))
    return p


# --- tables ----------------------------------------------------------------------------------------

SAFE_LONG = "region,sex,n\nNorth,F,120\nNorth,M,98\nSouth,F,31\nSouth,M,45\n"
SMALL_CELL = "region,sex,n\nNorth,F,120\nNorth,M,7\nSouth,F,31\nSouth,M,45\n"
ZERO_CELL = "region,sex,n\nNorth,F,120\nNorth,M,98\nSouth,F,0\nSouth,M,45\n"
WIDE = "age_group,F,M\n0-17,120,98\n18-64,300,3\n65+,45,51\n"
TEN = "region,n\nNorth,10\nSouth,250\n"  # passes at 10, fails at the SNDS threshold 11
MARKERS = "region,n\nNorth,120\nSouth,*\nEast,<10\nWest,45\n"
FRENCH = "région;sexe;effectif;coût moyen\nÎle-de-France;F;1200;12,5\nCorse;M;4;13,75\nBretagne;F;300;9,25\n"
STATS_ONLY = "region,mean_cost,median_los\nNorth,1234.5,3.5\nSouth,987.25,4.0\n"
STATS_WITH_N = "region,n,mean_cost\nNorth,120,1234.5\nSouth,45,987.25\n"
DOMINANT_NK = "region,n,cost,cost__top1,cost__top2\nNorth,50,1000,800,110\nSouth,40,1000,300,200\n"
DOMINANT_P = "region,n,cost,cost__top1,cost__top2\nNorth,50,1000,500,460\nSouth,40,1000,300,200\n"
NOT_DOMINANT = "region,n,cost,cost__top1,cost__top2\nNorth,50,1000,300,250\nSouth,40,1000,300,200\n"
RAGGED = "region,sex,n\nNorth,F,120\nNorth,M,98,12,oops\nSouth,F,31\n"


def microdata_ids(folder: Path) -> Path:
    rows = ["patient_id,sex,age,los"] + [f"P{i:06d},{'FM'[i % 2]},{20 + i % 60},{1 + i % 9}" for i in range(50)]
    return write(folder, "records_ids.csv", "\n".join(rows) + "\n")


def microdata_dob(folder: Path) -> Path:
    rows = ["sex,date_of_birth,stays"] + [f"{'FM'[i % 2]},19{50 + i % 40}-0{1 + i % 9}-1{i % 10},{12 + i}"
                                          for i in range(30)]
    return write(folder, "records_dob.csv", "\n".join(rows) + "\n")


def microdata_free_text(folder: Path) -> Path:
    note = "patient seen in the emergency ward after a fall at home, discharged the day after with advice {i}"
    rows = ["ward,stays,note"] + [f"W{i},{20 + i},\"{note.format(i=i)}\"" for i in range(12)]
    return write(folder, "records_text.csv", "\n".join(rows) + "\n")


def microdata_repeats(folder: Path) -> Path:
    rows = ["sex,region,age,los"] + [f"{'FM'[i % 2]},R{i % 3},{30 + i % 50},{1 + i % 12}" for i in range(200)]
    return write(folder, "records_repeats.csv", "\n".join(rows) + "\n")


def microdata_hashes(folder: Path) -> Path:
    import hashlib

    rows = ["pseudo,stays"] + [f"{hashlib.sha256(str(i).encode()).hexdigest()[:16]},{12 + i % 50}" for i in range(300)]
    return write(folder, "records_hash.csv", "\n".join(rows) + "\n")


def many_rows(folder: Path) -> Path:
    p = folder / "long.csv"
    with p.open("w") as fh:
        fh.write("cell,n\n")
        for i in range(100_050):
            fh.write(f"c{i},{50 + i % 100}\n")
    return p


def xlsx(folder: Path, name: str = "table.xlsx", hidden: bool = False) -> Path:
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "by_region"
    for row in [("region", "n"), ("North", 120), ("South", 3), ("East", 45)]:
        ws.append(row)
    ws2 = wb.create_sheet("by_sex")
    for row in [("sex", "n"), ("F", 130), ("M", 38)]:
        ws2.append(row)
    if hidden:
        ws2.sheet_state = "hidden"
    p = folder / name
    wb.save(p)
    return p


def parquet(folder: Path, name: str = "table.parquet") -> Path:
    t = pa.table({"region": ["North", "South", "East"], "sex": ["F", "M", "F"], "n": [120, 5, 45]})
    p = folder / name
    pq.write_table(t, p, row_group_size=2)
    return p


def truncated_parquet(folder: Path) -> Path:
    p = parquet(folder, "broken.parquet")
    data = p.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    return p


# --- ACRO ------------------------------------------------------------------------------------------

def acro_results(status: str = "fail", exception: str = "the small cell is a structural zero") -> dict:
    return {
        "version": "0.4.8",
        "results": {
            "output_0": {
                "uid": "output_0", "status": status, "type": "table",
                "properties": {"method": "crosstab"},
                "files": [{"name": "output_0.csv", "sdc": {
                    "summary": {"suppressed": False, "negative": 0, "missing": 0, "threshold": 2, "p-ratio": 0,
                                "nk-rule": 0, "all-values-are-same": 0},
                    "cells": {"negative": [], "missing": [], "threshold": [[1, 0], [2, 1]], "p-ratio": [],
                              "nk-rule": [], "all-values-are-same": []}}}],
                "outcome": {}, "command": "acro.crosstab(df.region, df.sex)",
                "summary": "fail; threshold: 2 cells may need suppressing; ",
                "timestamp": "2026-11-23T10:00:00", "comments": ["counts of stays by region"],
                "exception": exception,
            },
            "output_1": {
                "uid": "output_1", "status": "review", "type": "regression",
                "properties": {"method": "ols"},
                "files": [{"name": "output_1.csv", "sdc": {}}],
                "outcome": {}, "command": "acro.ols(...)", "summary": "review; dof=120",
                "timestamp": "2026-11-23T10:01:00", "comments": [], "exception": "",
            },
        },
    }


def acro_file(folder: Path) -> Path:
    return write(folder, "results.json", json.dumps(acro_results(), indent=2))


def table_with_acro_beside(folder: Path) -> Path:
    write(folder, "results.json", json.dumps(acro_results(), indent=2))
    return write(folder, "output_0.csv", "region,F,M\nNorth,120,98\nSouth,31,45\n")


# --- images, PDF, notebooks, text ------------------------------------------------------------------

def _png_bytes(text_chunk: bool = False) -> bytes:
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", 2, 2, 8, 0, 0, 0, 0)
    idat = zlib.compress(b"\x00\x00\x00\x00\xff\xff")
    body = chunk(b"IHDR", ihdr)
    if text_chunk:
        body += chunk(b"tEXt", b"Comment\x00cohort of 3 people")
    return b"\x89PNG\r\n\x1a\n" + body + chunk(b"IDAT", idat) + chunk(b"IEND", b"")


def png(folder: Path) -> Path:
    p = folder / "plot.png"
    p.write_bytes(_png_bytes())
    return p


def png_with_tail(folder: Path) -> Path:
    p = folder / "plot_tail.png"
    p.write_bytes(_png_bytes() + b"patient_id,dob\nP1,1960-01-01\n")
    return p


def png_with_text(folder: Path) -> Path:
    p = folder / "plot_text.png"
    p.write_bytes(_png_bytes(text_chunk=True))
    return p


def jpeg(folder: Path) -> Path:
    app0 = b"\xff\xe0" + struct.pack(">H", 16) + b"JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00"
    sos = b"\xff\xda" + struct.pack(">H", 8) + b"\x01\x01\x00\x00\x3f\x00"
    p = folder / "photo.jpg"
    p.write_bytes(b"\xff\xd8" + app0 + sos + b"\x12\x34\x56" + b"\xff\xd9")
    return p


def svg(folder: Path, script: bool = False) -> Path:
    inner = "<script>fetch('x')</script>" if script else ""
    return write(folder, "chart_script.svg" if script else "chart.svg",
                 f'<svg xmlns="http://www.w3.org/2000/svg" width="10" height="10"><rect width="5" height="5"/>{inner}</svg>\n')


def pdf(folder: Path, embedded: bool = False) -> Path:
    extra = "/Names << /EmbeddedFiles 4 0 R >>" if embedded else ""
    text = ("%PDF-1.4\n1 0 obj << /Type /Catalog /Pages 2 0 R " + extra + " >> endobj\n"
            "2 0 obj << /Type /Pages /Kids [3 0 R] /Count 1 >> endobj\n"
            "3 0 obj << /Type /Page /Parent 2 0 R /MediaBox [0 0 10 10] >> endobj\n"
            "trailer << /Root 1 0 R >>\n%%EOF\n")
    return write(folder, "report_attach.pdf" if embedded else "report.pdf", text)


def notebook(folder: Path, outputs: bool) -> Path:
    cell_outputs = [{"output_type": "execute_result", "execution_count": 1, "metadata": {},
                     "data": {"text/plain": ["   n\nA  3"], "text/html": ["<table>...</table>"]}},
                    {"output_type": "display_data", "metadata": {}, "data": {"image/png": "iVBORw0KGgo="}}]
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {}, "cells": [
        {"cell_type": "markdown", "metadata": {}, "source": ["# Analysis"]},
        {"cell_type": "code", "metadata": {}, "execution_count": 1 if outputs else None,
         "source": ["df.groupby('region').size()"], "outputs": cell_outputs if outputs else []},
    ]}
    return write(folder, "analysis_out.ipynb" if outputs else "analysis.ipynb", json.dumps(nb))


# --- refused ---------------------------------------------------------------------------------------

def zip_as_csv(folder: Path) -> Path:
    p = folder / "innocent.csv"
    with zipfile.ZipFile(p, "w") as zf:
        zf.writestr("cohort.csv", "patient_id,dob\nP1,1960-01-01\n")
    return p


def elf(folder: Path) -> Path:
    p = folder / "tool.txt"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00" + b"\x00" * 56)
    return p


def gzip_as_txt(folder: Path) -> Path:
    import gzip

    p = folder / "notes.txt"
    p.write_bytes(gzip.compress(b"patient_id,dob\n"))
    return p


def shebang_csv(folder: Path) -> Path:
    return write(folder, "run.csv", "#!/bin/sh\ncurl http://example.invalid\n")


def text_as_xlsx(folder: Path) -> Path:
    return write(folder, "table_fake.xlsx", "region,n\nNorth,5\n")


def xlsx_with_macros(folder: Path) -> Path:
    p = xlsx(folder, "macro.xlsx")
    with zipfile.ZipFile(p, "a") as zf:
        zf.writestr("xl/vbaProject.bin", b"\x00" * 10)
    return p


def binary_as_csv(folder: Path) -> Path:
    p = folder / "junk.csv"
    p.write_bytes(bytes(range(256)) * 4)
    return p


QUOTED_NEWLINES = 'region,comment,n\nNorth,"first line\nsecond line",120\nSouth,"ok",4\n'
DECIMALS_LATE = "region,n\n" + "".join(f"R{i},{50 + i}\n" for i in range(40)) + "R99,12.5\n"
NUMBERS_AS_TEXT = 'region;patients;stays\nNord;"1 234";"2 001"\nSud;7;"12 500"\nEst;*;"1 020"\n'


def xlsx_titled(folder: Path) -> Path:
    """A sheet as people make them: a title line, an empty corner cell, a stray value far right."""
    from openpyxl import Workbook

    wb = Workbook()
    ws = wb.active
    ws.title = "Table 1"
    ws.append(["Stays by age group and sex, 2024"])
    ws.append([])
    for row in [(None, "F", "M"), ("0-17", "120", 98), ("18-64", 300, 3), ("65+", 45, 51)]:
        ws.append(row)
    ws.append(["note", None, None, None, None, None, "P000123 1960-01-01"])
    p = folder / "titled.xlsx"
    wb.save(p)
    return p
RECOVERABLE_ROW = "region,F,M,total\nNorth,120,*,250\nSouth,31,45,76\n"
RECOVERABLE_COLUMN = "region,n\nNorth,120\nSouth,<10\nEast,45\nTotal,170\n"
PROTECTED = "region,A,B,C,total\nNorth,*,*,50,150\nSouth,*,*,60,140\nEast,40,30,20,90\nTotal,180,120,130,380\n"
