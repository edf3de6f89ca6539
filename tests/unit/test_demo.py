"""`enclave demo`: a newcomer's ready-made enclave, with pseudonymised data and enrolment links."""

import csv

import pyarrow.parquet as pq

from enclave.cli import demo


def test_demo_creates_people_project_and_pseudonymised_data(cli, enclave_env, tmp_path):
    code, out, err = cli("demo")
    assert code == 0, err
    links = [line.split() for line in out.splitlines() if "/hub/enrol/" in line]
    assert [(p[0], p[1]) for p in links] == [(n, r.value) for n, r in demo.DEMO_PEOPLE]
    assert "alice" in cli("project", "list")[1]
    table = pq.read_table(enclave_env.state_dir / "data" / "demo" / "hospital_stays.parquet")
    assert "birth_year" not in table.column_names
    # the original identifiers never reach the project's data folder
    raw = tmp_path / "raw.csv"
    demo.write_stays(raw)
    with raw.open() as fh:
        nirs = {row["patient_nir"] for row in csv.DictReader(fh)}
    assert not nirs & set(table.column("patient_nir").to_pylist())
    assert table.num_rows == sum(1 for _ in raw.open()) - 1
    assert not (enclave_env.state_dir / "demo" / "hospital_stays.csv").exists()


def test_demo_only_on_empty_database_unless_reset(cli, enclave_env):
    assert cli("demo")[0] == 0
    fresh = cli("audit", "verify")[1]
    code, _, err = cli("demo")
    assert code == 2 and "--reset" in err
    code, out, _ = cli("demo", "--if-empty")
    assert code == 0 and "not created" in out
    code, out, _ = cli("demo", "--reset")
    assert code == 0 and "/hub/enrol/" in out
    assert "alice" in cli("user", "list")[1]
    code, out, _ = cli("audit", "verify")
    assert code == 0 and out == fresh  # started over: same number of events as a fresh demo
