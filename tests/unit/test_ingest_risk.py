"""The risk report on a dataset with known equivalence classes gives exactly those numbers."""

import json

import pyarrow as pa
import pytest

from ingest import risk

# (age, sex, postcode) -> records.  Sizes 1, 1, 3, 6, 12, 20 -> 43 records.
CLASSES = [
    ((34, "F", "75001"), 1),
    ((37, "F", "75002"), 1),
    ((42, "M", "13001"), 3),
    ((44, "M", "13002"), 6),
    ((51, "F", "69001"), 12),
    ((58, "F", "69003"), 20),
]


def _table():
    rows = [values for values, n in CLASSES for _ in range(n)]
    return pa.table({
        "age": [r[0] for r in rows], "sex": [r[1] for r in rows], "postcode": [r[2] for r in rows],
        "diagnosis": [f"I{i % 7}" for i in range(len(rows))],
    })


@pytest.fixture
def report():
    counter = risk.ClassCounter(["age", "sex", "postcode"])
    for batch in _table().to_batches(max_chunksize=5):  # classes straddle batches
        counter.add(batch)
    return risk.report(counter)


def test_measures_are_exact(report):
    assert report.measures == {
        "records": 43, "classes": 6, "k": 1,
        "unique_records": 2, "unique_share": 2 / 43,
        "records_in_classes_under_5": 5, "share_under_5": 5 / 43,
        "records_in_classes_under_11": 11, "share_under_11": 11 / 43,
    }


def test_smallest_classes_come_first(report):
    assert [(c["values"]["age"], c["records"]) for c in report.smallest_classes] == [
        (34, 1), (37, 1), (42, 3), (44, 6), (51, 12), (58, 20)]
    assert report.smallest_classes[0]["values"] == {"age": 34, "sex": "F", "postcode": "75001"}


def test_generalisations_report_the_k_they_reach(report):
    by = {s["change"]: s for s in report.suggestions}
    # 5-year bands: 34 and 37 -> 30 and 35, still apart; 42/44 -> 40 (but different postcodes)
    assert by["age in 5-year bands"]["k"] == 1
    # 10-year bands alone: nothing merges (postcodes still differ)
    assert by["age in 10-year bands"]["k"] == 1
    # postcode to 2 characters: 75001/75002 -> 75, 13001/13002 -> 13, 69001/69003 -> 69
    assert by["postcode to its first 2 characters"]["k"] == 1  # ages 34 vs 37 still differ
    both = by["all of: age in 10-year bands; postcode to its first 2 characters"]
    # (30,F,75) 2, (40,M,13) 9, (50,F,69) 32
    assert (both["k"], both["classes"], both["unique_records"]) == (2, 3, 0)
    assert both["share_under_5"] == 2 / 43 and both["share_under_11"] == 11 / 43
    # leaving out age: (F,75001)1 (F,75002)1 ... unchanged classes since postcodes differ
    assert by["leave out age"]["k"] == 1
    # leaving out postcode: (34,F)1 (37,F)1 (42,M)3 (44,M)6 (51,F)12 (58,F)20 -> same sizes
    assert by["leave out postcode"]["unique_records"] == 2


def test_thresholds_in_words(report):
    assert report.problems(max_unique_share=0.05, min_k=1) == []
    assert report.problems(max_unique_share=0.04, min_k=1) == [
        "2 records (4.65%) are unique on age, sex, postcode (allowed: 4.00%)"]
    assert report.problems(max_unique_share=1.0, min_k=11) == [
        "the smallest group sharing the same age, sex, postcode has 1 record(s) (required k: 11)"]


def test_json_and_html_written_for_the_steward(report, tmp_path):
    paths = risk.write(report, tmp_path, "stays", dataset="stays", verdict="above threshold")
    data = json.loads((tmp_path / "stays.risk.json").read_text())
    assert data["k"] == 1 and data["unique_records"] == 2 and data["verdict"] == "above threshold"
    page = (tmp_path / "stays.risk.html").read_text()
    assert "<td>75001</td>" in page and "2 (4.65%)" in page and len(paths) == 2


def test_dates_generalise_to_month_and_year():
    import datetime as dt
    t = pa.table({"birth_date": [dt.date(1980, 1, 3), dt.date(1980, 1, 20), dt.date(1980, 7, 1)], "sex": ["F"] * 3})
    c = risk.ClassCounter(["birth_date", "sex"])
    c.add(t)
    by = {s["change"]: s for s in risk.report(c).suggestions}
    assert by["birth_date to month (YYYY-MM)"]["k"] == 1
    assert by["birth_date to year (YYYY)"]["k"] == 3


def test_many_batches_are_compacted_exactly(monkeypatch):
    monkeypatch.setattr(risk, "_COMPACT_AT", 3)
    counter = risk.ClassCounter(["age", "sex", "postcode"])
    for batch in _table().to_batches(max_chunksize=2):
        counter.add(batch)
    assert risk.measures(counter.classes())["k"] == 1
    assert sorted(counter.classes()[risk.COUNT].to_pylist()) == [1, 1, 3, 6, 12, 20]
