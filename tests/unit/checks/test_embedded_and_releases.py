"""Tables inside notebooks and text files are checked as tables; a new table is checked together with
the project's released tables (differencing)."""

from __future__ import annotations

import json

import pandas as pd

from egress_review.checks import Policy, check_file
from tests.support.project_data import policy, publish, stays
from tests.unit.checks import samples as s


def notebook(tmp_path, outputs: list[dict]):
    nb = {"cells": [{"cell_type": "code", "source": "x", "metadata": {}, "execution_count": 1,
                     "outputs": [o]} for o in outputs], "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    p = tmp_path / "analysis.ipynb"
    p.write_text(json.dumps(nb))
    return p


def test_a_notebook_printing_raw_rows_fails_on_the_data(tmp_path):
    frame = stays()
    publish(tmp_path / "data", "stays", frame)
    rows = frame.drop(columns=["pid"]).iloc[200:210]
    p = notebook(tmp_path, [{"output_type": "execute_result", "execution_count": 1,
                             "data": {"text/html": rows.to_html(), "text/plain": rows.to_string()}}])
    v = check_file(p, policy(tmp_path / "data"))
    found = {f.check: f for f in v.findings}
    assert v.status == "fail"
    assert found["records_in_disguise"].message.startswith("cell 1, table 1: 10 rows match")
    assert found["notebook_outputs"].severity == "review"  # a person still looks at every output


def test_a_printed_frame_with_a_small_count_fails_without_data(tmp_path):
    t = pd.DataFrame({"region": ["North", "South", "East"], "n": [120, 4, 45]})
    p = notebook(tmp_path, [{"output_type": "stream", "name": "stdout", "text": t.to_string() + "\n"}])
    v = check_file(p, Policy())
    found = {f.check: f for f in v.findings}
    assert found["small_cells"].cells == [("South", "n")]
    assert found["small_cells"].message.startswith("cell 1, table 1 (line 1): ")


def test_a_notebook_with_prose_outputs_only_stays_review(tmp_path):
    p = notebook(tmp_path, [{"output_type": "stream", "name": "stdout", "text": "model converged after 12 steps\n"}])
    assert check_file(p, Policy()).status == "review"


def test_tables_in_a_text_file_are_checked(tmp_path):
    t = pd.DataFrame({"region": ["North", "South", "East"], "n": [120, 4, 45]})
    p = s.write(tmp_path, "results.txt", "Stays by region\n\n" + t.to_string(index=False) + "\n\nDone.\n")
    v = check_file(p, Policy())
    found = {f.check: f for f in v.findings}
    assert v.status == "fail" and found["small_cells"].cells == [("South", "n")]
    code = s.write(tmp_path, "analysis.py", "x = 1\ny = 2\nprint(x, y)\n")
    assert check_file(code, Policy()).status == "review"


def released(tmp_path, name: str, text: str) -> tuple[str, object]:
    return (name, s.write(tmp_path, name, text))


def test_a_cell_hidden_in_a_release_and_shown_now_fails(tmp_path):
    old = released(tmp_path, "old.csv", "region,sex,n\nNorth,F,120\nNorth,M,*\nSouth,F,31\nSouth,M,45\n")
    new = s.write(tmp_path, "new.csv", "sex,region,n\nF,North,120\nM,North,12\nF,South,31\nM,South,45\n")
    v = check_file(new, Policy(released=(old,)))
    found = {f.check: f for f in v.findings}
    assert found["differencing"].cells == [("M / North", "n")]
    assert "'old.csv'" in found["differencing"].message


def test_two_populations_one_group_apart_fail(tmp_path):
    """All stays, then all stays but one hospital's: the difference is that hospital's small cells."""
    old = released(tmp_path, "all.csv", "age_group,n\n0-17,120\n18-64,300\n65+,450\n")
    new = s.write(tmp_path, "but_one.csv", "age_group,n\n0-17,117\n18-64,300\n65+,431\n")
    v = check_file(new, Policy(released=(old,)))
    found = {f.check: f for f in v.findings}
    assert found["differencing"].cells == [("0-17", "n")]  # 3 people; 19 are enough
    assert found["differencing"].severity == "review"  # or the same table on updated data
    unrelated = s.write(tmp_path, "later.csv", "age_group,n\n0-17,150\n18-64,290\n65+,470\n")
    assert "differencing" not in {f.check for f in check_file(unrelated, Policy(released=(old,))).findings}


def test_a_margin_gives_back_a_suppressed_cell_of_a_release(tmp_path):
    old = released(tmp_path, "detail.csv", "region,sex,n\nNorth,F,120\nNorth,M,*\nSouth,F,31\nSouth,M,45\n")
    new = s.write(tmp_path, "margin.csv", "region,n\nNorth,126\nSouth,76\n")
    v = check_file(new, Policy(released=(old,)))
    found = {f.check: f for f in v.findings}
    assert found["differencing"].cells == [("North", "n")]
    assert "margin" in found["differencing"].message
    safe = released(tmp_path, "detail2.csv", "region,sex,n\nNorth,F,*\nNorth,M,*\nSouth,F,31\nSouth,M,45\n")
    v = check_file(new, Policy(released=(safe,)))
    assert v.status == "pass", v.findings


def test_an_unreadable_release_does_not_stop_the_checks(tmp_path):
    broken = (("broken.csv", tmp_path / "missing.csv"),)
    new = s.write(tmp_path, "t.csv", "region,n\nNorth,126\nSouth,76\n")
    assert check_file(new, Policy(released=broken)).status == "pass"
