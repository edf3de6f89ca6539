"""What a table's own numbers give back: percentages with their denominators, residual degrees of
freedom, totals found by value, every common suppression marker, formula cells, spreadsheet notes and
hidden sheets, and workbooks checked as the review service stores them (no extension)."""

from __future__ import annotations

import shutil

import pytest

from egress_review.checks import Policy, check_file
from tests.unit.checks import samples as s


def verdict_of(tmp_path, name: str, text: str, **policy):
    v = check_file(s.write(tmp_path, name, text), Policy(**policy))
    return v, {f.check: f for f in reversed(v.findings)}


def test_percentages_next_to_their_n_are_counts(tmp_path):
    v, found = verdict_of(tmp_path, "pct.csv", "ward,n,pct_readmitted\nA,30,0.0\nB,60,3.3\nC,200,45.5\nD,150,20.0\n")
    assert v.status == "fail"
    assert found["small_percentages"].cells == [("A", "pct_readmitted"), ("B", "pct_readmitted")]
    # 40.0% of 300 is 120, 33.3% of 600 about 200: nothing small
    v, found = verdict_of(tmp_path, "pct_ok.csv", "ward,n,pct\nA,300,40.0\nB,600,33.3\nC,450,12.4\n")
    assert v.status == "pass", found
    # with zeros allowed by the policy, 0.0% only says zero: no small count
    v, found = verdict_of(tmp_path, "pct_zero.csv", "ward,n,pct\nA,30,0.0\nB,600,33.3\nC,450,12.4\n",
                          zeros_are_disclosive=False)
    assert "small_percentages" not in found


def test_a_percentage_that_is_not_of_the_n_beside_it_is_left_alone(tmp_path):
    """The share of all stays, next to the ward's count: pct x n / 100 is no whole number."""
    v, found = verdict_of(tmp_path, "share.csv", "ward,n,pct_of_all\nA,45,12.3\nB,120,32.9\nC,200,54.8\n")
    assert "small_percentages" not in found


@pytest.mark.parametrize("n_obs,status", [(12, "fail"), (500, "pass")])
def test_residual_degrees_of_freedom_from_observations_and_terms(tmp_path, n_obs, status):
    text = f"term,coef,se\nIntercept,1.2,0.3\nage,0.05,0.01\nsex,0.3,0.1\nn_obs,{n_obs},\n"
    v, found = verdict_of(tmp_path, "model.csv", text)
    assert ("residual_df" in found) == (status == "fail")
    if status == "fail":
        assert "9 residual degrees of freedom" in found["residual_df"].message
    v, found = verdict_of(tmp_path, "model2.csv", "model,df_resid,r2\nm1,7,0.3\n")
    assert found["residual_df"].severity == "fail"


def test_a_persons_column_equal_to_males_plus_females_is_a_total(tmp_path):
    text = "area,Males,Females,Persons\nNorth,120,[c],130\nSouth,45,51,96\nEast,60,70,130\nWest,80,81,161\n"
    v, found = verdict_of(tmp_path, "persons.csv", text)
    assert v.status == "fail"
    assert ("North", "Females") in found["recoverable_suppression"].cells
    assert "found by its values" in found["recoverable_suppression"].message


def test_a_row_equal_to_the_sum_of_the_others_is_a_total(tmp_path):
    text = "area,y2023,y2024\nNorth,120,130\nSouth,c,40\nEast,45,50\nWest,60,70\nEngland,240,290\n"
    v, found = verdict_of(tmp_path, "england.csv", text)
    assert found["recoverable_suppression"].cells == [("South", "y2023")]
    # two hidden cells in the column: nothing recovered
    text = "area,y2023,y2024\nNorth,120,130\nSouth,c,40\nEast,c,50\nWest,60,70\nEngland,240,290\n"
    v, found = verdict_of(tmp_path, "england2.csv", text)
    assert "recoverable_suppression" not in found


@pytest.mark.parametrize("marker", ["[c]", "[x]", "[low]", ":", "..", "x", "c", "s", "-", "<5", "*"])
def test_every_common_suppression_marker_is_a_hidden_cell(tmp_path, marker):
    text = f"region,sex,n\nNorth,F,120\nNorth,M,{marker}\nSouth,F,31\nSouth,M,45\n"
    v, found = verdict_of(tmp_path, "m.csv", text)
    assert v.status == "pass", (marker, found)
    assert "small_cells" not in found


def test_formula_cells_warn_and_previews_show_them_as_text(tmp_path):
    text = 'region,n,label\nNorth,120,"=HYPERLINK(""http://x"",""y"")"\nSouth,45,@SUM(A1)\nEast,60,-5 days\n'
    v, found = verdict_of(tmp_path, "formula.csv", text)
    assert found["formula_cells"].severity == "warn"
    assert [c for c, _ in found["formula_cells"].cells] == ["row 1", "row 2"]
    import pandas as pd

    from egress_review.preview import table_html

    html = table_html(pd.DataFrame({"region": ["North"], "label": ["=HYPERLINK(1)"]}), v.to_dict())
    assert "&#x27;=HYPERLINK(1)" in html  # shown with a leading quote


def _sheet(ws, rows):
    for r in rows:
        ws.append(r)


def test_a_note_under_a_spreadsheet_table_is_a_note_not_hidden_cells(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    _sheet(wb.active, [("Table 1: stays by region",), ("region", "n"), ("North", 120), ("South", 45),
                       (None, None), ("Source: hospital stays 2024, figures rounded to 5",),
                       ("Note: [c] = confidential",)])
    p = tmp_path / "noted.xlsx"
    wb.save(p)
    v = check_file(p, Policy())
    assert v.status == "pass", v.findings
    assert any("read as notes: Source: hospital stays" in f.message for f in v.findings)


def test_workbooks_are_checked_from_a_stored_copy_without_extension(tmp_path):
    """The review service keeps a content-addressed copy: no .xlsx in its name."""
    blob = tmp_path / ("ab" * 32)
    shutil.copy(s.xlsx(tmp_path, hidden=True), blob)
    v = check_file(blob, Policy(), display_name="results/table.xlsx")
    found = {f.check: f for f in v.findings}
    assert "malformed" not in found
    assert found["small_cells"].severity == "fail"
    assert any(f.check == "reading" and f.severity == "review" and "'by_sex' is hidden" in f.message
               for f in v.findings)


def test_a_very_hidden_sheet_is_looked_at(tmp_path):
    from openpyxl import Workbook

    wb = Workbook()
    _sheet(wb.active, [("region", "n"), ("North", 120), ("South", 45)])
    secret = wb.create_sheet("raw")
    _sheet(secret, [("patient_id", "age"), *[(f"P{i:08d}", 30 + i) for i in range(20)]])
    secret.sheet_state = "veryHidden"
    p = tmp_path / "vh.xlsx"
    wb.save(p)
    v = check_file(p, Policy())
    assert v.status == "fail"  # the records in it
    assert any("very hidden" in f.message and f.severity == "review" for f in v.findings)


def test_names_alone_never_fail_a_table(tmp_path):
    v, found = verdict_of(tmp_path, "yob.csv", "year_of_birth,n\n1940,120\n1950,340\n1960,410\n1970,220\n")
    assert v.status == "review", found
    assert found["record_level"].severity == "review"
    v, found = verdict_of(tmp_path, "yob2.csv", "sex,year_of_birth,n\n" + "".join(
        f"{'FM'[i % 2]},{1931 + i},{20 + i}\n" for i in range(30)))
    assert found["record_level"].severity == "fail"
