"""Fingerprints: an output that copies imported rows is found, one that does not is not."""

import io

import pandas as pd
import pyarrow as pa
import pytest

from enclave import fingerprints as fp
from enclave import paths


def _dataset() -> pa.Table:
    return pa.table({
        "PID": ["PAAAA", "PBBBB", "PCCCC", None, "PDDDD"],
        "age": [34, 55, None, 20, 71],
        "admitted": pa.array([pd.Timestamp("2020-01-31"), pd.Timestamp("2020-02-01 10:15"), None, None,
                              pd.Timestamp("2021-06-01")]),
        "weight": [71.5, 80.0, -0.0, 3.0, 64.25],
        "ward": ["cardio", " neuro", "", None, "icu"],
    })


@pytest.fixture
def state(tmp_path):
    t = _dataset()
    w = fp.FingerprintWriter("stays", t.column_names, ["PID"])
    for b in t.to_batches(max_chunksize=2):
        w.add(b)
    w.write(paths.fingerprints(tmp_path, "cardio"))
    return tmp_path


def test_rows_copied_through_csv_are_found_and_others_not(state):
    copied = _dataset().to_pandas()
    # a researcher's round trip: CSV, column order changed, an extra column, names in other case
    frame = pd.read_csv(io.StringIO(copied.to_csv(index=False)))
    frame = frame[["ward", "weight", "admitted", "age", "PID"]].rename(columns={"PID": "pid", "age": "Age"})
    frame.insert(0, "note", "x")
    assert fp.find_input_rows(state, "cardio", frame) == [0, 1, 2, 3, 4]
    frame["pid"] = ["Q1", "Q2", "Q3", "Q4", "Q5"]   # pseudonyms replaced: the other columns still match
    frame.loc[1, "weight"] = 80.5                    # row 1 now differs elsewhere too
    assert fp.find_input_rows(state, "cardio", frame) == [0, 2, 3, 4]
    assert fp.find_input_rows(state, "cardio", frame.drop(columns=["pid"])) == [0, 2, 3, 4]
    frame["age"] = frame["Age"].fillna(0) + 1        # every row differs from the data now
    frame = frame.drop(columns=["Age"])
    assert fp.find_input_rows(state, "cardio", frame) == []
    frame["pid"] = _dataset().column("PID").to_pylist()
    # the pseudonyms put back: rows 0, 1, 2, 4 are found through them; row 3 has none and differs
    assert fp.find_input_rows(state, "cardio", frame) == [0, 1, 2, 4]


def test_pseudonym_column_alone_singles_out_records(state):
    frame = pd.DataFrame({"pid": ["PBBBB", "PZZZZ", None, "PDDDD"], "n": [1, 2, 3, 4]})
    assert fp.find_input_rows(state, "cardio", frame) == [0, 3]


def test_partial_columns_without_pseudonyms_and_aggregates_do_not_match(state, tmp_path):
    frame = pd.DataFrame({"age": [34, 55], "weight": [71.5, 80.0], "ward": ["cardio", "neuro"]})
    assert fp.find_input_rows(state, "cardio", frame) == []
    # a narrow dataset (2 columns) is never matched on whole rows: its rows look like aggregate labels
    narrow = pa.table({"ward": ["icu", "icu"], "sex": ["F", "M"]})
    w = fp.FingerprintWriter("wards", narrow.column_names, [])
    w.add(narrow.to_batches()[0])
    w.write(paths.fingerprints(tmp_path, "p"))
    assert fp.find_input_rows(tmp_path, "p", pd.DataFrame({"ward": ["icu"], "sex": ["F"], "n": [40]})) == []
    counts = pd.DataFrame({"ward": ["cardio", "icu"], "n": [12, 40]})
    assert fp.find_input_rows(state, "cardio", counts) == []


def test_other_project_and_empty_frame(state):
    frame = _dataset().to_pandas()
    assert fp.find_input_rows(state, "other", frame) == []
    assert fp.find_input_rows(state, "cardio", frame.iloc[0:0]) == []


def test_normalisation_equalities():
    same = [
        (pa.array([3, None]), pa.array([3.0, float("nan")])),
        (pa.array([True, False]), pa.array([1, 0])),
        (pa.array(["  a b ", ""]), pa.array(["a b", None])),
        (pa.array([pd.Timestamp("2020-01-31")]), pa.array(["2020-01-31"])),
        (pa.array([pd.Timestamp("2020-01-31 10:00")]), pa.array(["2020-01-31 10:00:00"])),
        (pa.array(["xabc", "abc"]).slice(1), pa.array(["abc"])),
    ]
    for a, b in same:
        assert (fp.hash_column(a) == fp.hash_column(b)).all(), (a, b)
    different = pa.array(["ab", "ba", "a", "b", "", "1", "1.5", "abc", "abd"])
    hashes = fp.hash_column(different)
    assert len(set(hashes[:4].tolist() + hashes[5:].tolist())) == 8
    assert fp.hash_column(pa.array([1]))[0] != fp.hash_column(pa.array(["1"]))[0]
    big = fp.hash_column(pa.array([2**60, 2**60 + 1, None], pa.int64()))  # equal as float64, not as ids
    assert big[0] != big[1] and big[2] == fp.hash_column(pa.array([None], pa.int64()))[0]
