"""`enclave data import`: pseudonyms per project, risk refusal and --accept-risk, bad input leaves nothing."""

import json
import re

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave import db, fingerprints, paths
from enclave.models import AuditEvent

from ingest import importer, keys
from tests.conftest import BOTH


def _write_csv(path, rows, header):
    path.write_text(",".join(header) + "\n" + "".join(",".join(str(v) for v in r) + "\n" for r in rows))
    return path


def _people(n=60, offset=0):
    """n records, 20 people (each 3 times), coarse quasi-identifiers: no one is unique."""
    return [(f"1850{(i + offset) % 20:05d}", 40 + (i % 2), "F" if i % 4 < 2 else "M", f"x{i}") for i in range(n)]


@pytest.fixture
def project(cli, tmp_path):
    """Two active projects over their own data folders."""
    out = {}
    for slug in ("cardio", "onco"):
        d = tmp_path / f"data-{slug}"
        d.mkdir()
        code, _, err = cli("project", "create", slug, "--data", str(d))
        assert code == 0, err
        out[slug] = d
    return out


def _events(enclave_env, action=None):
    with db.transaction(enclave_env.db_url) as s:
        q = s.query(AuditEvent)
        if action:
            q = q.filter(AuditEvent.action == action)
        return [(e.action, e.target, json.loads(e.detail)) for e in q.order_by(AuditEvent.seq)]


def _pseudonyms(data_dir, name, col="nir"):
    return pq.read_table(data_dir / f"{name}.parquet").column(col).to_pylist()


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_same_person_same_pseudonym_in_a_project_and_unlinkable_across_projects(cli, project, tmp_path, enclave_env):
    a = _write_csv(tmp_path / "stays.csv", _people(), ["nir", "age", "sex", "note"])
    # the second file spells the identifier differently and is Parquet with the identifier as text
    b = tmp_path / "drugs.parquet"
    pq.write_table(pa.table({"nir": [" 18500-0003 ", "185000003", "1850 00004"], "drug": ["a", "b", "c"]}), b)
    assert cli("data", "import", "cardio", str(a), "--id-columns", "nir", "--quasi-identifiers", "age,sex")[0] == 0
    code, out, err = cli("data", "import", "cardio", str(b), "--id-columns", "nir", "--name", "drugs")
    assert code == 0, err
    stays = dict(zip([r[0] for r in _people()], _pseudonyms(project["cardio"], "stays")))
    drugs = _pseudonyms(project["cardio"], "drugs")
    assert drugs[0] == drugs[1] == stays["185000003"]
    assert drugs[2] == stays["185000004"]
    assert all(re.fullmatch(r"P[A-Z2-7]{16}", p) for p in drugs)
    # the identifiers themselves are nowhere in the data folder
    blob = b"".join(p.read_bytes() for p in project["cardio"].iterdir())
    assert b"185000003" not in blob
    # another project: same file, other key, no pseudonym in common
    assert cli("data", "import", "onco", str(a), "--id-columns", "nir")[0] == 0
    onco = set(_pseudonyms(project["onco"], "stays"))
    assert len(onco) == 20 and not onco & set(stays.values())
    assert keys.read(enclave_env.state_dir, "cardio") != keys.read(enclave_env.state_dir, "onco")
    assert [e[0] for e in _events(enclave_env) if e[0].startswith("data.")] == [
        "data.key_create", "data.import", "data.import", "data.key_create", "data.import"]
    assert cli("audit", "verify")[0] == 0


def test_key_file_is_private_and_outside_the_data_folder(cli, project, tmp_path, enclave_env):
    a = _write_csv(tmp_path / "stays.csv", _people(), ["nir", "age", "sex", "note"])
    assert cli("data", "import", "cardio", str(a), "--id-columns", "nir")[0] == 0
    key = keys.key_path(enclave_env.state_dir, "cardio")
    assert key.parent == paths.project_keys(enclave_env.state_dir)
    assert key.stat().st_mode & 0o777 == 0o600 and key.parent.stat().st_mode & 0o777 == 0o700
    assert len(key.read_bytes()) == 32
    data = project["cardio"].resolve()
    assert data not in key.resolve().parents


def test_manifest_list_and_report_files(cli, project, tmp_path, enclave_env):
    a = _write_csv(tmp_path / "Stays 2023.csv", _people(), ["nir", "age", "sex", "note"])
    code, out, err = cli("data", "import", "cardio", str(a), "--id-columns", "nir", "--drop", "note",
                         "--quasi-identifiers", "age,sex")
    assert code == 0, err
    d = project["cardio"]
    assert sorted(p.name for p in d.iterdir()) == [
        "stays_2023.manifest.json", "stays_2023.parquet", "stays_2023.risk.html", "stays_2023.risk.json"]
    m = json.loads((d / "stays_2023.manifest.json").read_text())
    assert m["rows"] == 60 and m["columns"] == ["nir", "age", "sex"] and m["dropped"] == ["note"]
    assert m["pseudonymised"] == ["nir"] and m["quasi_identifiers"] == ["age", "sex"]
    assert m["imported_by"].startswith("cli:") and len(m["source"]["sha256"]) == 64
    assert m["risk"]["k"] == 15 and m["risk"]["unique_records"] == 0
    assert pq.read_table(d / "stays_2023.parquet").column_names == ["nir", "age", "sex"]
    assert "Re-identification risk" in (d / "stays_2023.risk.html").read_text()
    out = cli("data", "list", "cardio")[1]
    assert "stays_2023" in out and "60" in out


def _risky_rows():
    # classes on (age, sex): (30,F)x1 (31,M)x1 (32,F)x3 (40,M)x6 (50,F)x12 -> 23 records
    spec = [((30, "F"), 1), ((31, "M"), 1), ((32, "F"), 3), ((40, "M"), 6), ((50, "F"), 12)]
    rows, i = [], 0
    for (age, sex), n in spec:
        for _ in range(n):
            rows.append((f"ID{i:04d}", age, sex))
            i += 1
    return rows


def test_refused_above_threshold_then_accepted_with_reason(cli, project, tmp_path, enclave_env):
    src = _write_csv(tmp_path / "risky.csv", _risky_rows(), ["pid", "age", "sex"])
    before = _events(enclave_env)
    code, _, err = cli("data", "import", "cardio", str(src), "--id-columns", "pid", "--quasi-identifiers", "age,sex")
    assert code == 2
    assert "2 records (8.70%) are unique on age, sex" in err and "--accept-risk" in err
    assert list(project["cardio"].iterdir()) == []
    assert keys.read(enclave_env.state_dir, "cardio") is None  # refused first import leaves no key
    assert not paths.fingerprints(enclave_env.state_dir, "cardio").exists()
    assert _events(enclave_env) == before
    code, out, err = cli("data", "import", "cardio", str(src), "--id-columns", "pid", "--quasi-identifiers",
                         "age,sex", "--accept-risk", "cohort needs exact ages; DPIA 2026-14")
    assert code == 0, err
    assert "ABOVE THRESHOLD" in out
    accepted = _events(enclave_env, "data.accept_risk")
    assert accepted == [("data.accept_risk", "cardio", {
        "dataset": "risky", "reason": "cohort needs exact ages; DPIA 2026-14",
        "problems": ["2 records (8.70%) are unique on age, sex (allowed: 1.00%)"]})]
    m = json.loads((project["cardio"] / "risky.manifest.json").read_text())
    assert m["risk"]["accepted_reason"] == "cohort needs exact ages; DPIA 2026-14"


def test_min_k_setting_refuses_small_classes(cli, project, tmp_path, enclave_env):
    enclave_env.config.write_text(enclave_env.config.read_text().replace(
        "\n[database]", "\n[ingest]\nmin_k = 5\nmax_unique_share = 1.0\n\n[database]"))
    src = _write_csv(tmp_path / "risky.csv", _risky_rows(), ["pid", "age", "sex"])
    code, _, err = cli("data", "import", "cardio", str(src), "--quasi-identifiers", "age,sex")
    assert code == 2 and "has 1 record(s) (required k: 5)" in err


def _existing(cli, project, tmp_path):
    src = _write_csv(tmp_path / "taken.csv", _people(), ["nir", "age", "sex", "note"])
    assert cli("data", "import", "cardio", str(src), "--id-columns", "nir")[0] == 0


def _close(cli, project, tmp_path):
    assert cli("project", "close", "cardio")[0] == 0


def _suspend(cli, project, tmp_path):
    assert cli("project", "suspend", "cardio")[0] == 0


BAD = [
    ("unknown-id-column", ["--id-columns", "ssn"], None, "--id-columns: no column 'ssn'"),
    ("unknown-drop", ["--drop", "nope"], None, "--drop: no column 'nope'"),
    ("unknown-qi", ["--quasi-identifiers", "age,zip"], None, "--quasi-identifiers: no column 'zip'"),
    ("float-id", ["--id-columns", "weight"], None, "holds double values"),
    ("low-cardinality-id", ["--id-columns", "sex"], None, "'sex' has only 2 different values in 60 records"),
    ("id-and-qi", ["--id-columns", "nir", "--quasi-identifiers", "nir"], None, "not a quasi-identifier"),
    ("bad-name", ["--name", "../etc"], None, "is not allowed"),
    ("closed-project", [], _close, "project 'cardio' is closed"),
    ("suspended-project", [], _suspend, "project 'cardio' is suspended"),
    ("name-exists", ["--name", "taken"], _existing, "already has a dataset 'taken'"),
]


@pytest.mark.parametrize("args, setup, message", [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_input_is_refused_and_nothing_written(cli, project, tmp_path, enclave_env, args, setup, message):
    if setup:
        setup(cli, project, tmp_path)
    src = tmp_path / "stays.csv"
    src.write_text("nir,age,sex,weight\n" + "".join(
        f"1850{i % 20:05d},{40 + i % 2},{'FM'[i % 2]},{70.5 + i}\n" for i in range(60)))
    files = sorted(project["cardio"].iterdir())
    fps = sorted(paths.fingerprints(enclave_env.state_dir, "cardio").glob("*")) if setup else []
    key = keys.read(enclave_env.state_dir, "cardio")
    events = _events(enclave_env)
    code, _, err = cli("data", "import", "cardio", str(src), *args)
    assert code == 2, err
    assert message in err
    assert sorted(project["cardio"].iterdir()) == files
    assert sorted(paths.fingerprints(enclave_env.state_dir, "cardio").glob("*")) == fps
    assert keys.read(enclave_env.state_dir, "cardio") == key
    assert _events(enclave_env) == events


@pytest.mark.parametrize("content, message", [
    (b"\x00\x01garbage\xff\xfe" * 50, "does not parse"),
    (b"nir,age\n" + b"1,2\n" * 50 + b"3,4,5\n", "does not parse"),
    (b"", "does not parse"),
    (b"PAR1 not really parquet", "does not parse"),
], ids=["binary", "ragged-row", "empty", "fake-parquet"])
def test_unparseable_file_is_refused_and_nothing_written(cli, project, tmp_path, enclave_env, content, message):
    src = tmp_path / "bad.csv"
    src.write_bytes(content)
    code, _, err = cli("data", "import", "cardio", str(src), "--id-columns", "nir")
    assert code == 2 and message in err, err
    assert list(project["cardio"].iterdir()) == []
    assert keys.read(enclave_env.state_dir, "cardio") is None
    assert not paths.fingerprints(enclave_env.state_dir, "cardio").exists()
    assert _events(enclave_env, "data.import") == []


def test_missing_source_and_unknown_project(cli, project, tmp_path):
    code, _, err = cli("data", "import", "cardio", str(tmp_path / "nope.csv"))
    assert code == 2 and "does not exist" in err
    src = _write_csv(tmp_path / "s.csv", _people(), ["nir", "age", "sex", "note"])
    code, _, err = cli("data", "import", "ghost", str(src))
    assert code == 2 and "no project 'ghost'" in err


def test_failure_while_recording_rolls_back_files_and_new_key(cli, project, tmp_path, enclave_env, monkeypatch):
    src = _write_csv(tmp_path / "s.csv", _people(), ["nir", "age", "sex", "note"])

    real_replace = importer.os.replace

    def replace(a, b):  # the last rename (the Parquet file) fails after the others succeeded
        if str(b).endswith(".parquet"):
            raise OSError("disk full")
        return real_replace(a, b)

    monkeypatch.setattr(importer.os, "replace", replace)
    with pytest.raises(OSError):
        cli("data", "import", "cardio", str(src), "--id-columns", "nir", "--quasi-identifiers", "age,sex")
    assert list(project["cardio"].iterdir()) == []
    assert not paths.fingerprints(enclave_env.state_dir, "cardio").exists()
    assert keys.read(enclave_env.state_dir, "cardio") is None
    assert _events(enclave_env, "data.import") == []


def test_csv_column_whose_type_changes_late_is_read_as_text(cli, project, tmp_path, monkeypatch):
    monkeypatch.setattr(importer, "CSV_BLOCK", 256)
    rows = [(f"N{i:03d}", i, "F") for i in range(200)] + [("N999", "unknown", "M")]
    src = _write_csv(tmp_path / "late.csv", rows, ["nir", "code", "sex"])
    code, out, err = cli("data", "import", "cardio", str(src), "--id-columns", "nir")
    assert code == 0, err
    t = pq.read_table(project["cardio"] / "late.parquet")
    assert t.num_rows == 201 and t.schema.field("code").type == pa.string()
    assert t.column("code").to_pylist()[-1] == "unknown"


def test_imported_rows_are_found_in_an_output_frame(cli, project, tmp_path, enclave_env):
    src = _write_csv(tmp_path / "stays.csv", _people(), ["nir", "age", "sex", "note"])
    assert cli("data", "import", "cardio", str(src), "--id-columns", "nir")[0] == 0
    imported = pq.read_table(project["cardio"] / "stays.parquet").to_pandas()
    # an output that copies rows 5 and 7 (with pseudonyms), plus an aggregate row and a made-up row
    frame = pd.concat([imported.iloc[[5, 7]], pd.DataFrame({
        "nir": [None, "PAAAAAAAAAAAAAAAA"], "age": [40, 41], "sex": ["F", "M"], "note": ["total", "x999"]})])
    assert fingerprints.find_input_rows(enclave_env.state_dir, "cardio", frame) == [0, 1]
    # the pseudonym dropped or replaced: the rest of the row still gives it away
    no_id = imported.drop(columns=["nir"]).iloc[[3, 4]]
    assert fingerprints.find_input_rows(enclave_env.state_dir, "cardio", no_id) == [0, 1]
    frame.iloc[3, frame.columns.get_loc("note")] = "x3"  # the made-up row now equals row 3 but its pseudonym
    assert fingerprints.find_input_rows(enclave_env.state_dir, "cardio", frame) == [0, 1, 3]
    # fewer columns than a whole row (no pseudonym): not recognised
    assert fingerprints.find_input_rows(enclave_env.state_dir, "cardio", no_id[["age", "sex"]]) == []
    assert fingerprints.find_input_rows(enclave_env.state_dir, "onco", imported) == []


def test_destroy_key_only_for_closed_project_and_audited(cli, project, tmp_path, enclave_env):
    src = _write_csv(tmp_path / "s.csv", _people(), ["nir", "age", "sex", "note"])
    assert cli("data", "import", "cardio", str(src), "--id-columns", "nir")[0] == 0
    code, _, err = cli("data", "destroy-key", "cardio")
    assert code == 2 and "close it first" in err
    assert keys.read(enclave_env.state_dir, "cardio") is not None
    assert cli("project", "close", "cardio")[0] == 0
    code, out, err = cli("data", "destroy-key", "cardio")
    assert code == 0, err
    assert not keys.key_path(enclave_env.state_dir, "cardio").exists()
    assert [e[0] for e in _events(enclave_env, "data.destroy_key")] == ["data.destroy_key"]
    code, _, err = cli("data", "destroy-key", "cardio")
    assert code == 2 and "no pseudonym key" in err
    assert cli("audit", "verify")[0] == 0


def test_risk_command_reports_without_importing(cli, project, tmp_path):
    src = _write_csv(tmp_path / "risky.csv", _risky_rows(), ["pid", "age", "sex"])
    out_dir = tmp_path / "report"
    code, out, err = cli("data", "risk", "cardio", str(src), "--quasi-identifiers", "age,sex", "--out", str(out_dir))
    assert code == 0, err
    assert "k=1" in out and "ABOVE THRESHOLD" in out and "leave out age: k=7" in out
    assert (out_dir / "risky.risk.html").exists() and list(project["cardio"].iterdir()) == []


def test_admins_are_told_of_a_refused_import_without_its_details(cli, project, tmp_path, enclave_env):
    from enclave import notify
    from enclave.models import Notification
    from tests.support.users import enrolled_user

    for name, role in (("ada", "admin"), ("rita", "researcher")):
        enrolled_user(enclave_env.settings, name, role)
        with db.transaction(enclave_env.db_url) as s:
            notify.set_preferences(s, "test", name, email=f"{name}@localhost")
    src = _write_csv(tmp_path / "secret_cohort.csv", _people(), ["nir", "age", "sex", "note"])
    code, _, err = cli("data", "import", "cardio", str(src), "--id-columns", "diagnosis_code")
    assert code == 2 and "diagnosis_code" in err  # the person who ran it is told why
    with db.transaction(enclave_env.db_url) as s:
        notes = [(n.username, n.kind, n.subject, n.body) for n in s.query(Notification)]
    assert [(u, k) for u, k, *_ in notes] == [("ada", "data.import_refused")]
    _, _, subject, body = notes[0]
    assert "project cardio" in subject
    for detail in ("diagnosis_code", "secret_cohort", "nir", "1850"):
        assert detail not in subject + body
