"""`enclave check FILE... [--json] [--project SLUG]` as a researcher runs it before submitting."""

from __future__ import annotations

import json

from tests.unit.checks import samples as s


def test_human_output_names_the_flagged_cells_and_exit_1_on_fail(cli, tmp_path):
    small = s.write(tmp_path, "by_region.csv", s.SMALL_CELL)
    safe = s.write(tmp_path, "safe.csv", s.SAFE_LONG)
    code, out, err = cli("check", str(small), str(safe))
    assert code == 1, err
    assert f"FAIL    {small}" in out and f"PASS    {safe}" in out
    assert "1 cell under 10" in out and "row 'North / M', column 'n'" in out


def test_exit_0_when_nothing_fails_even_with_review(cli, tmp_path):
    safe = s.write(tmp_path, "safe.csv", s.SAFE_LONG)
    notes = s.write(tmp_path, "notes.md", "# what the table shows\n")
    code, out, _ = cli("check", str(safe), str(notes))
    assert code == 0
    assert "REVIEW" in out and "a person must read it" in out


def test_json_is_a_list_with_one_object_per_file(cli, tmp_path):
    small = s.write(tmp_path, "by_region.csv", s.SMALL_CELL)
    fake = s.zip_as_csv(tmp_path)
    code, out, _ = cli("check", "--json", str(small), str(fake))
    assert code == 1
    data = json.loads(out)
    assert [d["file"] for d in data] == [str(small), str(fake)]
    assert [d["status"] for d in data] == ["fail", "fail"]
    flagged = next(f for f in data[0]["findings"] if f["check"] == "small_cells")
    assert flagged["severity"] == "fail" and flagged["cells"] == [["North / M", "n"]]
    assert data[1]["kind"] == "refused" and "ZIP archive" in data[1]["findings"][0]["message"]


def test_project_threshold_11_changes_the_verdict(cli, tmp_path):
    """A cell of 10 passes ACRO's default but not an SNDS project's threshold of 11."""
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    assert cli("project", "create", "snds-cardio", "--data", str(data_dir), "--min-cell-count", "11")[0] == 0
    assert cli("project", "create", "acro-default", "--data", str(data_dir))[0] == 0
    table = s.write(tmp_path, "ten.csv", s.TEN)
    code, out, _ = cli("check", "--json", str(table))
    assert code == 0 and json.loads(out)[0]["status"] == "pass"
    code, out, _ = cli("check", "--json", "--project", "acro-default", str(table))
    assert code == 0 and json.loads(out)[0]["status"] == "pass"
    code, out, _ = cli("check", "--json", "--project", "snds-cardio", str(table))
    assert code == 1
    verdict = json.loads(out)[0]
    assert verdict["status"] == "fail"
    small = next(f for f in verdict["findings"] if f["check"] == "small_cells")
    assert "under 11" in small["message"] and small["cells"] == [["North", "n"]]
    code, out, _ = cli("check", "--project", "snds-cardio", str(table))
    assert "no cell under 11" in out


def test_usage_errors_exit_2_with_a_clear_message(cli, tmp_path):
    table = s.write(tmp_path, "t.csv", s.SAFE_LONG)
    code, _, err = cli("check", "--project", "nope", str(table))
    assert code == 2 and "no project 'nope'" in err
    code, _, err = cli("check", str(tmp_path / "missing.csv"))
    assert code == 2 and "missing.csv: no such file" in err
    code, _, err = cli("check", str(tmp_path))
    assert code == 2 and "is a folder" in err
    code, _, err = cli("check")
    assert code == 2


def test_site_thresholds_come_from_the_disclosure_settings(cli, enclave_env, tmp_path):
    """[disclosure] zeros_are_disclosive = false turns a zero cell from fail into warn."""
    table = s.write(tmp_path, "zero.csv", s.ZERO_CELL)
    code, out, _ = cli("check", "--json", str(table))
    assert code == 1 and json.loads(out)[0]["status"] == "fail"
    with enclave_env.config.open("a") as fh:
        fh.write("\n[disclosure]\nzeros_are_disclosive = false\n")
    code, out, _ = cli("check", "--json", str(table))
    assert code == 0 and json.loads(out)[0]["status"] == "warn"


def test_bad_disclosure_settings_stop_with_a_message(cli, enclave_env, tmp_path):
    with enclave_env.config.open("a") as fh:
        fh.write("\n[disclosure]\np_ratio = 10\n")
    code, _, err = cli("check", str(s.write(tmp_path, "t.csv", s.SAFE_LONG)))
    assert code == 2 and "p_ratio" in err and "between 0 and 1" in err


def test_project_checks_use_its_imported_data(cli, tmp_path):
    """`--project` applies the review service's policy: the project's data is evidence."""
    from tests.support.project_data import publish, stays

    frame = stays()
    data_dir = publish(tmp_path / "registry", "stays", frame)
    assert cli("project", "create", "registry", "--data", str(data_dir))[0] == 0
    means = frame.groupby(["region", "diagnosis"]).agg(mean_los=("los_days", "mean")).reset_index().round(2)
    table = tmp_path / "means.csv"
    means.to_csv(table, index=False)
    code, out, _ = cli("check", "--json", str(table))
    assert code == 0  # the file alone: statistics without counts, a person looks
    code, out, _ = cli("check", "--json", "--project", "registry", str(table))
    assert code == 1
    [verdict] = json.loads(out)
    found = {f["check"]: f for f in verdict["findings"]}
    assert found["data_small_cells"]["severity"] == "fail"
    assert "compared with dataset 'stays'" in found["data_evidence"]["message"]
