"""The checks with the project's data as evidence: tables computed from the data, honest and disguised,
and what the checks recompute for each cell."""

from __future__ import annotations

import pandas as pd
import pytest

from egress_review.checks import check_file
from tests.support.project_data import policy, publish, stays


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    folder = tmp_path_factory.mktemp("project") / "data"
    frame = stays()
    publish(folder, "stays", frame)
    return frame, folder


def run(tmp_path, folder, name: str, table: pd.DataFrame, **kw):
    path = tmp_path / name
    if name.endswith(".xlsx"):
        table.to_excel(path, index=False)
    else:
        table.to_csv(path, index=False)
    verdict = check_file(path, policy(folder, **kw))
    return verdict, {f.check: f for f in reversed(verdict.findings)}


def _bands(age):
    return pd.cut(age, [0, 30, 40, 50, 60, 70, 80, 200], right=False,
                  labels=["<30", "30-39", "40-49", "50-59", "60-69", "70-79", "80+"])


def test_an_honest_table_passes_and_says_what_was_recomputed(data, tmp_path):
    frame, folder = data
    t = (frame.assign(age_band=_bands(frame.age)).groupby(["age_band", "sex"], observed=True)
         .agg(n=("pid", "size"), mean_los=("los_days", "mean")).reset_index().round(1))
    verdict, found = run(tmp_path, folder, "by_age.csv", t)
    assert verdict.status == "pass", found
    msg = found["data_evidence"].message
    assert "'age_band' = 'age' (bands" in msg and "'sex' = 'sex'" in msg
    assert "'mean_los' = mean of 'los_days'" in msg and "'n' = records" in msg
    assert "14 of 14 rows matched" in msg


def test_a_mean_over_three_people_fails_without_any_count_in_the_file(data, tmp_path):
    frame, folder = data
    t = frame.groupby(["region", "diagnosis"]).agg(mean_los=("los_days", "mean")).reset_index().round(2)
    verdict, found = run(tmp_path, folder, "means.csv", t)
    assert verdict.status == "fail"
    assert found["data_small_cells"].severity == "fail"
    rare = frame[frame.diagnosis == "Z99"].region.unique()
    assert sorted(found["data_small_cells"].cells) == sorted((f"{r} / Z99", "mean_los") for r in rare)


def test_dominance_is_found_from_the_data_without_contribution_columns(data, tmp_path):
    frame, folder = data
    rich = frame.copy()
    rich.loc[5, "cost"] = 50_000_000.0  # one stay is nearly all of its region's cost
    publish(tmp_path / "rich", "stays", rich)
    region = rich.loc[5, "region"]
    t = rich.groupby("region").agg(n=("pid", "size"), total_cost=("cost", "sum")).reset_index().round(0)
    verdict, found = run(tmp_path, tmp_path / "rich", "cost.csv", t)
    assert found["data_dominance"].severity == "fail"
    assert found["data_dominance"].cells == [(region, "total_cost")]
    mean = rich.groupby("region").agg(n=("pid", "size"), mean_cost=("cost", "mean")).reset_index().round(2)
    _, found = run(tmp_path, tmp_path / "rich", "mean_cost.csv", mean)
    assert found["data_dominance"].cells == [(region, "mean_cost")]
    honest = frame.groupby("region").agg(n=("pid", "size"), total_cost=("cost", "sum")).reset_index().round(0)
    verdict, found = run(tmp_path, folder, "honest_cost.csv", honest)
    assert verdict.status == "pass" and "data_dominance" not in found
    assert "'total_cost' = sum of 'cost'" in found["data_evidence"].message


def test_records_with_a_made_up_count_fail(data, tmp_path):
    """The attack that got 400 records out: each record as a one-row stratum with a count of 12."""
    frame, folder = data
    records = frame.iloc[100:140][["age", "sex", "admission_date", "diagnosis", "los_days"]].assign(n=12)
    verdict, found = run(tmp_path, folder, "strata.csv", records)
    assert verdict.status == "fail"
    assert found["records_in_disguise"].severity == "fail"
    assert len(found["records_in_disguise"].cells) == 40
    assert found["data_count_mismatch"].severity == "fail"
    # the same with the count first and a made-up stratum name in front: still records
    disguised = records.assign(stratum=[f"S{i}" for i in range(40)])[["stratum", "n", "age", "sex", "diagnosis",
                                                                     "admission_date"]]
    verdict, found = run(tmp_path, folder, "strata2.csv", disguised)
    assert verdict.status == "fail" and found["records_in_disguise"].severity == "fail"


def test_a_top_five_of_stays_is_records(data, tmp_path):
    frame, folder = data
    top = frame.sort_values(["los_days", "cost"], ascending=False).head(5)[["los_days", "age", "sex", "region"]]
    top.insert(0, "rank", range(1, 6))
    verdict, found = run(tmp_path, folder, "top5.csv", top)
    assert verdict.status == "fail"
    assert len(found["records_in_disguise"].cells) == 5


def test_describe_min_and_max_are_one_persons_values(data, tmp_path):
    frame, folder = data
    d = frame[["age", "los_days"]].describe().reset_index()
    verdict, found = run(tmp_path, folder, "describe.csv", d)
    assert verdict.status == "fail"
    assert ("max / 104", "age") in found["data_extremes"].cells  # the one man aged 104
    assert all(col != "los_days" for _, col in found["data_extremes"].cells)  # many stays last 1 or 20 days


def test_a_maximum_column_is_recognised_and_fails_only_when_few_share_it(data, tmp_path):
    frame, folder = data
    t = frame.groupby("region").agg(n=("pid", "size"), max_age=("age", "max"), max_los=("los_days", "max"))
    verdict, found = run(tmp_path, folder, "max.csv", t.reset_index())
    assert verdict.status == "fail"
    assert {c for _, c in found["data_extremes"].cells} == {"max_age"}


def test_derived_labels_year_of_a_date_and_french_sex(data, tmp_path):
    frame, folder = data
    t = (frame.assign(annee=pd.to_datetime(frame.admission_date).dt.year,
                      sexe=frame.sex.map({"F": "Femme", "M": "Homme"}))
         .groupby(["annee", "sexe"]).size().reset_index(name="effectif"))
    verdict, found = run(tmp_path, folder, "fr.csv", t)
    assert verdict.status == "pass", found
    assert "the year of a date" in found["data_evidence"].message
    assert "sex, English or French labels" in found["data_evidence"].message
    t.loc[0, "effectif"] += 40  # a count the data does not hold
    verdict, found = run(tmp_path, folder, "fr_wrong.csv", t)
    assert found["data_count_mismatch"].cells == [(f"{t.annee[0]} / Femme", "effectif")]


def test_unmatched_labels_with_statistics_go_to_review_never_pass(data, tmp_path):
    _, folder = data
    t = pd.DataFrame({"ward": ["W1", "W2", "W3"], "mean_cost": [1234.5, 987.1, 1500.2]})
    verdict, found = run(tmp_path, folder, "wards.csv", t)
    assert verdict.status == "review"
    assert found["data_unmatched"].severity == "review"


def test_a_numeric_grouping_column_is_a_label_not_records(data, tmp_path):
    """`los_days` 1..20 with counts beside it: a grouping, told by the data (and by its grid of values)."""
    frame, folder = data
    t = frame.groupby("los_days").size().reset_index(name="stays")
    t["persons"] = frame.groupby("los_days").pid.nunique().values
    verdict, found = run(tmp_path, folder, "los.csv", t)
    assert verdict.status == "pass", found
    assert "'los_days' = 'los_days'" in found["data_evidence"].message
    assert "'persons' = persons" in found["data_evidence"].message


def test_a_workbook_is_checked_against_the_data_too(data, tmp_path):
    frame, folder = data
    t = frame.groupby(["region", "diagnosis"]).size().reset_index(name="n")
    verdict, found = run(tmp_path, folder, "t.xlsx", t)
    assert {row for row, _ in found["data_small_cells"].cells} == {
        f"{r} / Z99" for r in frame[frame.diagnosis == "Z99"].region.unique()}


def test_no_published_data_means_no_evidence_findings(tmp_path):
    frame = stays()
    t = frame.groupby("region").size().reset_index(name="n")
    t.to_csv(tmp_path / "t.csv", index=False)
    verdict = check_file(tmp_path / "t.csv", policy(tmp_path / "nothing-here"))
    assert verdict.status == "pass"
    assert not any(f.check.startswith("data_") for f in verdict.findings)


def test_a_data_folder_with_a_stray_manifest_is_read_safely(data, tmp_path):
    """A manifest naming another file, a link in place of the Parquet file: not a dataset."""
    frame, _ = data
    folder = tmp_path / "odd"
    publish(folder, "stays", frame)
    (folder / "evil.manifest.json").write_text('{"file": "../../etc/passwd"}')
    (folder / "loop.manifest.json").write_text('{"file": "loop.parquet"}')
    (folder / "loop.parquet").symlink_to(folder / "stays.parquet")
    (folder / "broken.manifest.json").write_text("{not json")
    from enclave.datasets import published

    assert [d.name for d in published(folder)] == ["stays"]


def test_contributions_are_per_person_not_per_stay(data, tmp_path):
    """One person with 40 modest stays holds most of a region's cost: no stay dominates, the person does."""
    frame, _ = data
    heavy = frame.copy()
    who = heavy.pid[0]
    region = heavy.region[0]
    extra = heavy[heavy.region == region].head(40).assign(pid=who, sex=heavy.sex[0], cost=2_000_000.0)
    heavy = pd.concat([heavy, extra], ignore_index=True)
    publish(tmp_path / "heavy", "stays", heavy)
    t = heavy.groupby("region").agg(n=("pid", "size"), total_cost=("cost", "sum")).reset_index().round(0)
    verdict, found = run(tmp_path, tmp_path / "heavy", "heavy.csv", t)
    assert found["data_dominance"].cells == [(region, "total_cost")]
    # without a pseudonym column the stays are the contributors, and none of them dominates
    publish(tmp_path / "anon", "stays", heavy.drop(columns=["pid"]), pseudonyms=())
    verdict, found = run(tmp_path, tmp_path / "anon", "anon.csv", t)
    assert "data_dominance" not in found


def test_medians_and_totals_rows_are_recomputed(data, tmp_path):
    frame, folder = data
    t = frame.groupby("sex").agg(n=("pid", "size"), median_age=("age", "median")).reset_index()
    total = pd.DataFrame({"sex": ["Total"], "n": [len(frame)], "median_age": [frame.age.median()]})
    t = pd.concat([t, total], ignore_index=True)
    verdict, found = run(tmp_path, folder, "medians.csv", t)
    assert verdict.status == "pass", found
    msg = found["data_evidence"].message
    assert "3 of 3 rows matched" in msg and "'median_age' = median of 'age'" in msg


def test_the_dataset_a_table_came_from_is_the_one_whose_numbers_agree(data, tmp_path):
    """Stays and prescriptions share their labels: a count of prescriptions is judged on prescriptions."""
    frame, _ = data
    folder = tmp_path / "two"
    publish(folder, "a_stays", frame)
    scripts = pd.concat([frame[["pid", "sex", "region"]]] * 3, ignore_index=True).assign(drug="B01")
    publish(folder, "prescriptions", scripts)
    t = scripts.groupby(["region", "sex"]).size().reset_index(name="n")
    verdict, found = run(tmp_path, folder, "scripts.csv", t)
    assert verdict.status == "pass", found
    assert "dataset 'prescriptions'" in found["data_evidence"].message


def test_odd_dataset_columns_and_an_unreadable_dataset_never_crash_the_checks(data, tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    frame, _ = data
    folder = tmp_path / "odd"
    publish(folder, "stays", frame)
    table = pa.Table.from_pandas(frame[["region", "sex"]], preserve_index=False).append_column(
        "codes", pa.array([[1, 2]] * len(frame), pa.list_(pa.int64())))
    pq.write_table(table, folder / "stays.parquet")  # a nested column: labels nothing
    t = frame.groupby("region").agg(n=("pid", "size"), mean_age=("age", "mean")).reset_index().round(1)
    verdict, found = run(tmp_path, folder, "t.csv", t)
    assert "checks_error" not in found and "data_evidence" in found
    (folder / "stays.parquet").write_bytes(b"PAR1 not really")
    verdict, found = run(tmp_path, folder, "t2.csv", t)
    assert "checks_error" not in found
    assert found["data_unmatched"].severity == "review" and "could not be read" in found["data_unmatched"].message


def test_counts_rounded_up_to_base_10_or_5_are_still_the_datas_counts(data, tmp_path):
    frame, folder = data
    t = frame.groupby(["region", "sex"]).size().reset_index(name="n")
    up10 = t.assign(n=((t.n + 9) // 10) * 10)  # random rounding may go up by as much as 9
    verdict, found = run(tmp_path, folder, "r10.csv", up10)
    assert "data_count_mismatch" not in found, found
    up5 = t.assign(n=((t.n + 4) // 5) * 5)
    verdict, found = run(tmp_path, folder, "r5.csv", up5)
    assert "data_count_mismatch" not in found, found
    inflated = t.copy()
    inflated.loc[2, "n"] += 7  # the others are the data's counts; no rounding explains 7 more here
    if inflated.loc[2, "n"] % 5 == 0:
        inflated.loc[2, "n"] += 1
    verdict, found = run(tmp_path, folder, "inflated.csv", inflated)
    assert found["data_count_mismatch"].cells == [(f"{t.region[2]} / {t.sex[2]}", "n")]
