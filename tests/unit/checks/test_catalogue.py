"""The disclosure checks on a catalogue of small files, disclosive and safe: the verdict a steward sees,
the findings that explain it, and the cells they point at."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import pytest

from egress_review.checks import Policy, check_file
from tests.unit.checks import samples as s


@dataclass
class Case:
    id: str
    build: Callable[[Path], Path]
    status: str
    kind: str = "table"
    checks: dict[str, str] = field(default_factory=dict)  # check -> severity expected among the findings
    cells: dict[str, list[tuple[str, str]]] = field(default_factory=dict)  # check -> exactly these cells
    policy: dict = field(default_factory=dict)
    absent: tuple[str, ...] = ()  # checks that must not be reported


def text(name: str, content: str, encoding: str = "utf-8"):
    return lambda d: s.write(d, name, content, encoding)


CATALOGUE = [
    # tables of counts
    Case("safe-aggregate", text("safe.csv", s.SAFE_LONG), "pass", checks={"table": "pass"}),
    Case("small-cell", text("small.csv", s.SMALL_CELL), "fail", checks={"small_cells": "fail"},
         cells={"small_cells": [("North / M", "n")]}),
    Case("zero-cell-disclosive", text("zero.csv", s.ZERO_CELL), "fail", checks={"zeros": "fail"},
         cells={"zeros": [("South / F", "n")]}),
    Case("zero-cell-allowed-by-policy", text("zero.csv", s.ZERO_CELL), "warn", checks={"zeros": "warn"},
         policy={"zeros_are_disclosive": False}),
    Case("wide-table", text("wide.csv", s.WIDE), "fail", checks={"small_cells": "fail"},
         cells={"small_cells": [("18-64", "M")]}),
    Case("tsv", text("small.tsv", s.SMALL_CELL.replace(",", "\t")), "fail",
         cells={"small_cells": [("North / M", "n")]}),
    Case("threshold-10-passes-10", text("ten.csv", s.TEN), "pass"),
    Case("snds-threshold-11-fails-10", text("ten.csv", s.TEN), "fail", policy={"min_cell_count": 11},
         cells={"small_cells": [("North", "n")]}),
    Case("suppression-markers", text("markers.csv", s.MARKERS), "pass", checks={"reading": "pass"}),
    Case("suppressed-cell-recoverable-from-row-total", text("rt.csv", s.RECOVERABLE_ROW), "fail",
         cells={"recoverable_suppression": [("North", "M")]}),
    Case("suppressed-cell-recoverable-from-total-row", text("ct.csv", s.RECOVERABLE_COLUMN), "fail",
         cells={"recoverable_suppression": [("South", "n")]}),
    Case("secondary-suppression", text("prot.csv", s.PROTECTED), "pass", absent=("recoverable_suppression",)),
    Case("french-latin1-decimal-comma", text("fr.csv", s.FRENCH, "latin-1"), "fail",
         cells={"small_cells": [("Corse / M", "effectif")]}, checks={"reading": "pass"}),
    Case("numbers-written-as-text", text("fr_text.csv", s.NUMBERS_AS_TEXT), "fail",
         cells={"small_cells": [("Sud", "patients")]}),
    Case("statistics-without-counts", text("means.csv", s.STATS_ONLY), "review", checks={"statistics": "review"}),
    Case("statistics-with-counts", text("means_n.csv", s.STATS_WITH_N), "review",
         checks={"dominance_unchecked": "review"}),  # a mean cost: one stay may dominate, nothing tells
    Case("medians-with-counts", text("medians.csv", "region,n,median_los\nNorth,120,4.5\nSouth,45,3.0\n"),
         "pass"),  # a median is no sum: one long stay does not move it
    Case("same-count-everywhere", text("fake_n.csv", "age,sex,ward,n\n" + "".join(
        f"{30 + i},{'FM'[i % 2]},W{i % 3},12\n" for i in range(8))), "review", checks={"constant_counts": "review"}),
    Case("minimum-and-maximum", text("minmax.csv", "region,n,min_age,max_age\nNorth,120,18,97\nSouth,45,21,88\n"),
         "review", checks={"extremes": "review"}),
    # magnitudes with contributions
    Case("dominance-nk", text("nk.csv", s.DOMINANT_NK), "fail",
         checks={"dominance_nk": "fail", "contributions": "review"}, cells={"dominance_nk": [("North", "cost")]},
         absent=("dominance_p",)),
    Case("dominance-p-percent", text("p.csv", s.DOMINANT_P), "fail",
         checks={"dominance_p": "fail", "dominance_nk": "fail"}, cells={"dominance_p": [("North", "cost")]}),
    Case("no-dominance", text("nodom.csv", s.NOT_DOMINANT), "review", checks={"contributions": "review"},
         absent=("dominance_p", "dominance_nk")),
    # record-level data
    Case("microdata-identifier", s.microdata_ids, "fail", checks={"record_level": "fail"}, absent=("small_cells",)),
    Case("microdata-date-of-birth", s.microdata_dob, "fail", checks={"record_level": "fail"}),
    Case("microdata-free-text", s.microdata_free_text, "fail", checks={"record_level": "fail"}),
    Case("microdata-repeated-labels", s.microdata_repeats, "fail", checks={"record_level": "fail"}),
    Case("microdata-hashed-ids", s.microdata_hashes, "fail", checks={"record_level": "fail"}),
    Case("too-many-rows", s.many_rows, "fail", checks={"record_level": "fail"}),
    # other table formats
    Case("xlsx-two-sheets", s.xlsx, "fail", cells={"small_cells": [("South", "by_region!n")]}),
    Case("xlsx-hidden-sheet", lambda d: s.xlsx(d, hidden=True), "fail", checks={"reading": "review"}),
    Case("xlsx-title-line-and-stray-value", s.xlsx_titled, "fail",
         checks={"small_cells": "fail", "reading": "pass", "text_columns": "review"},
         cells={"small_cells": [("18-64", "Table 1!M")]}),
    Case("parquet-row-groups", s.parquet, "fail", cells={"small_cells": [("South / M", "n")]}),
    # ACRO
    Case("acro-results", s.acro_file, "fail", kind="acro",
         checks={"acro": "fail", "acro_threshold": "fail", "acro_exception": "review", "acro_comment": "pass"},
         cells={"acro_threshold": [("1", "0"), ("2", "1")]}),
    Case("table-with-acro-results-beside", s.table_with_acro_beside, "fail",
         checks={"table": "pass", "acro": "fail", "acro_exception": "review"}),
    # images, PDF, notebooks, text
    Case("png", s.png, "review", kind="image", checks={"human_review": "review"}),
    Case("png-bytes-after-end", s.png_with_tail, "fail", kind="image", checks={"hidden_data": "fail"}),
    Case("png-text-metadata", s.png_with_text, "review", kind="image", checks={"image_metadata": "warn"}),
    Case("jpeg", s.jpeg, "review", kind="image"),
    Case("svg", s.svg, "review", kind="image"),
    Case("svg-with-script", lambda d: s.svg(d, script=True), "fail", kind="image", checks={"active_content": "fail"}),
    Case("pdf", s.pdf, "review", kind="pdf"),
    Case("pdf-with-attachment", lambda d: s.pdf(d, embedded=True), "fail", kind="pdf",
         checks={"active_content": "fail"}),
    Case("notebook-with-outputs", lambda d: s.notebook(d, outputs=True), "review", kind="notebook",
         checks={"notebook_outputs": "review"}, cells={"notebook_outputs": [("cell 2", "table/html"), ("cell 2", "image")]}),
    Case("notebook-without-outputs", lambda d: s.notebook(d, outputs=False), "pass", kind="notebook"),
    Case("markdown", text("README.md", "# Results\nThe cohort has 1,234 people.\n"), "review", kind="text"),
    Case("plain-json", text("params.json", '{"alpha": 0.05}'), "review", kind="text"),
    # refused
    Case("zip-disguised-as-csv", s.zip_as_csv, "fail", kind="refused", checks={"file_type": "fail"}),
    Case("elf-executable", s.elf, "fail", kind="refused", checks={"file_type": "fail"}),
    Case("gzip-as-txt", s.gzip_as_txt, "fail", kind="refused"),
    Case("shebang-script-as-csv", s.shebang_csv, "fail", kind="refused"),
    Case("unknown-extension", text("data.sav", "x"), "fail", kind="refused", checks={"file_type": "fail"}),
    Case("text-renamed-xlsx", s.text_as_xlsx, "fail", kind="refused"),
    Case("xlsx-with-macros", s.xlsx_with_macros, "fail", kind="refused"),
    Case("binary-as-csv", s.binary_as_csv, "fail", kind="refused"),
    Case("utf16-text", text("unicode.txt", "\ufeffregion\tn\nNorth\t5\n", "utf-16"), "fail", kind="refused"),
    Case("oversize", text("big.csv", s.SAFE_LONG), "fail", kind="refused", checks={"size": "fail"},
         policy={"max_file_bytes": 20}),
    # malformed
    Case("ragged-csv", text("ragged.csv", s.RAGGED), "fail", checks={"malformed": "fail"}),
    Case("truncated-parquet", s.truncated_parquet, "fail", checks={"malformed": "fail"}),
    Case("empty-csv", text("empty.csv", ""), "warn", checks={"empty": "warn"}),
    Case("header-only-csv", text("header.csv", "region,n\n"), "warn", checks={"empty": "warn"}),
    Case("broken-notebook", text("broken.ipynb", '{"cells": 3}'), "fail", kind="notebook", checks={"malformed": "fail"}),
    Case("truncated-png", lambda d: s.write(d, "cut.png", "") or _cut_png(d), "fail", kind="image",
         checks={"malformed": "fail"}),
]


def _cut_png(d: Path) -> Path:
    p = d / "cut.png"
    p.write_bytes(s._png_bytes()[:30])
    return p


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_catalogue(case: Case, tmp_path):
    path = case.build(tmp_path)
    verdict = check_file(path, Policy(**case.policy))
    found = {f.check: f for f in reversed(verdict.findings)}  # the first finding of each check
    explain = "\n".join(f"{f.severity} {f.check}: {f.message} {f.cells}" for f in verdict.findings)
    assert verdict.status == case.status, explain
    assert verdict.kind == case.kind, explain
    for check, severity in case.checks.items():
        assert check in found, explain
        assert found[check].severity == severity, explain
    for check, cells in case.cells.items():
        assert found[check].cells == cells, explain
    for check in case.absent:
        assert check not in found, explain
    assert all(f.message for f in verdict.findings)
    d = verdict.to_dict()
    assert d["file"] == path.name and d["status"] == case.status
    assert {"check", "severity", "message", "cells"} <= set(d["findings"][0])


def test_blob_without_extension_uses_display_name(tmp_path):
    """The review service checks content-addressed blobs: the researcher's file name gives the type."""
    blob = tmp_path / "ab12cd"
    blob.write_text(s.SMALL_CELL)
    verdict = check_file(blob, Policy(), display_name="results/by_region.csv")
    assert (verdict.file, verdict.kind, verdict.status) == ("results/by_region.csv", "table", "fail")


def test_column_turning_to_text_late_is_read_again(tmp_path, monkeypatch):
    """A column numeric in the first block but with text further down is re-read as text, not a crash."""
    from egress_review.checks import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 64)
    rows = ["region,code,n"] + [f"R{i},{i},{50 + i}" for i in range(40)] + ["R99,X12,3"]
    p = s.write(tmp_path, "late.csv", "\n".join(rows) + "\n")
    verdict = check_file(p, Policy())
    assert verdict.status == "fail"
    small = next(f for f in verdict.findings if f.check == "small_cells")
    assert small.cells == [("R99 / X12", "n")]


def test_many_flagged_cells_are_counted_and_listed_up_to_a_limit(tmp_path):
    rows = ["cell,n"] + [f"c{i},{1 + i % 9}" for i in range(500)]
    p = s.write(tmp_path, "many.csv", "\n".join(rows) + "\n")
    small = next(f for f in check_file(p, Policy()).findings if f.check == "small_cells")
    assert "500 cells under 10" in small.message and "first 50 listed" in small.message
    assert len(small.cells) == 50 and small.cells[0] == ("c0", "n")


def test_input_rows_of_the_project_fail(tmp_path):
    """An output holding rows of the project's imported data fails, naming the rows."""
    import pyarrow as pa

    from enclave import paths
    from enclave.fingerprints import FingerprintWriter

    state = tmp_path / "state"
    w = FingerprintWriter("stays", ["region", "sex", "age_group", "n"], id_columns=[])
    w.add(pa.record_batch({"region": ["North", "South"], "sex": ["M", "F"], "age_group": ["18-64", "65+"],
                           "n": [98, 31]}))
    w.write(paths.fingerprints(state, "cardio"))
    table = "region,sex,age_group,n\nNorth,F,18-64,120\nNorth,M,18-64,98\nSouth,F,65+,31\nSouth,M,65+,45\n"
    p = s.write(tmp_path, "copy.csv", table)
    policy = Policy(project="cardio", state_dir=state)
    verdict = check_file(p, policy)
    found = {f.check: f for f in verdict.findings}
    assert verdict.status == "fail", verdict.findings
    assert found["input_rows"].cells == [("row 2", "(whole row)"), ("row 3", "(whole row)")]
    other = s.write(tmp_path, "other.csv", table.replace(",98\n", ",99\n").replace(",31\n", ",32\n"))
    assert {f.check: f.severity for f in check_file(other, policy).findings}["input_rows"] == "pass"
    # no project named: that comparison is skipped
    assert "input_rows" not in {f.check for f in check_file(p, Policy()).findings}


def test_a_missing_file_is_a_verdict_not_a_crash(tmp_path):
    verdict = check_file(tmp_path / "gone.csv", Policy())
    assert verdict.status == "fail" and "cannot read" in verdict.findings[0].message


def test_quoted_line_breaks_are_followed(tmp_path):
    p = s.write(tmp_path, "comments.csv", s.QUOTED_NEWLINES)
    verdict = check_file(p, Policy())
    small = next(f for f in verdict.findings if f.check == "small_cells")
    assert small.cells == [("South / ok", "n")]


def test_decimals_late_in_a_count_column_make_it_a_statistic(tmp_path, monkeypatch):
    from egress_review.checks import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 64)
    verdict = check_file(s.write(tmp_path, "late_decimal.csv", s.DECIMALS_LATE), Policy())
    assert verdict.status == "review"
    assert [f.check for f in verdict.findings] == ["statistics"]


def test_daily_counts_with_date_labels_are_not_identifiers(tmp_path):
    rows = ["day,admissions"] + [f"2025-{1 + i // 28:02d}-{1 + i % 28:02d},{40 + i % 30}" for i in range(300)]
    verdict = check_file(s.write(tmp_path, "daily.csv", "\n".join(rows) + "\n"), Policy())
    assert verdict.status == "pass", verdict.findings


def test_label_columns_right_of_the_counts_are_not_counts(tmp_path):
    verdict = check_file(s.write(tmp_path, "t.csv", "region,n,year\nNorth,120,2021\nSouth,45,2022\n"), Policy())
    assert verdict.status == "pass", verdict.findings


@pytest.mark.parametrize("bad", [{"min_cell_count": 0}, {"p_ratio": 1.5}, {"nk_k": 0}, {"max_file_bytes": 0}],
                         ids=["zero-threshold", "p-over-1", "k-zero", "no-size"])
def test_a_policy_that_checks_nothing_is_refused(bad):
    with pytest.raises(ValueError):
        Policy(**bad)


def test_text_codes_with_leading_zeros_stay_labels(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    p = tmp_path / "by_dept.parquet"
    pq.write_table(pa.table({"region": ["IDF", "IDF", "PACA"], "dept": ["075", "093", "013"], "n": [120, 45, 300]}), p)
    verdict = check_file(p, Policy())
    assert verdict.status == "pass", verdict.findings


@pytest.mark.parametrize("content", [
    {"results": {"o": {"status": "fail", "files": [{"name": "x", "sdc": {"cells": {"threshold": [[1], "x"]}}}]}}},
    {"results": {"o": {"status": "fail", "files": [{"name": "x", "sdc": {"cells": [1, 2]}}], "version": 1}}},
    {"version": "0.4", "results": {"o": {"status": "weird", "files": "x", "properties": [], "comments": "c"}}},
], ids=["bad-cells", "cells-not-a-dict", "odd-fields"])
def test_odd_acro_results_give_a_verdict(tmp_path, content):
    import json

    verdict = check_file(s.write(tmp_path, "results.json", json.dumps(content)), Policy())
    assert verdict.kind == "acro" and verdict.status in ("fail", "review")
    assert all(f.check != "checks_error" for f in verdict.findings)


def test_a_single_column_of_counts(tmp_path):
    verdict = check_file(s.write(tmp_path, "counts.csv", "n\n5\n50\n"), Policy())
    assert verdict.status == "fail" and verdict.findings[0].cells == [("row 1", "n")]


def test_csv_is_read_in_bounded_chunks(tmp_path, monkeypatch):
    """Memory stays bounded: the reader never holds more than about one chunk of the file."""
    from egress_review.checks import readers

    monkeypatch.setattr(readers, "CSV_BLOCK_BYTES", 64 * 1024)
    p = tmp_path / "big.csv"
    with p.open("w") as fh:
        fh.write("cell,n\n")
        for i in range(150_000):
            fh.write(f"cell number {i},{50 + i % 1000}\n")
    (stream,) = readers.open_tables(p, p.name)
    sizes = [b.nbytes for b in stream.open()]
    assert sum(b for b in sizes) > 2 * 2**20 and len(sizes) > 30
    assert max(sizes) < 256 * 1024


_MAGIC = {".parquet": b"PAR1", ".png": b"\x89PNG\r\n\x1a\n", ".jpg": b"\xff\xd8\xff", ".pdf": b"%PDF-1.7\n",
          ".xlsx": b"PK\x03\x04", ".csv": b"region,n\n", ".ipynb": b'{"cells": [', ".svg": b"<svg ", ".json": b'{"results": '}


@pytest.mark.parametrize("ext", sorted(_MAGIC), ids=lambda e: e.lstrip("."))
def test_damaged_files_give_a_readable_verdict_never_a_crash(tmp_path, ext):
    import random

    rng = random.Random(ext)
    for i in range(20):
        junk = bytes(rng.randrange(256) for _ in range(rng.randrange(1, 400)))
        for n, data in enumerate((junk, _MAGIC[ext] + junk, _MAGIC[ext] + junk.replace(b"\x00", b"a"))):
            p = tmp_path / f"f{i}_{n}{ext}"
            p.write_bytes(data)
            verdict = check_file(p, Policy())
            assert verdict.status in ("fail", "review", "warn", "pass")
            assert all(f.check != "checks_error" for f in verdict.findings), (data, verdict.findings)


@pytest.mark.parametrize("ext", [".csv", ".tsv"], ids=["csv", "tsv"])
def test_garbled_text_tables_give_a_verdict_never_a_crash(tmp_path, ext):
    import random

    rng = random.Random(ext)
    alphabet = 'ab1290,;\t"\n *<>.-éx'
    for i in range(150):
        body = "".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 300)))
        p = s.write(tmp_path, f"g{i}{ext}", "region,n\n" + body if i % 2 else body)
        verdict = check_file(p, Policy())
        assert all(f.check != "checks_error" for f in verdict.findings), (body, verdict.findings)
