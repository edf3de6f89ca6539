"""Patients' objections (`enclave optout`): an objector disappears from new imports and, after `apply`,
from data already imported in every project; the identifier is never stored; small counts are not shown."""

import json

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from enclave import db, fingerprints
from enclave.errors import Conflict
from enclave.models import AuditEvent

from ingest import optout
from ingest.models import Objection, ObjectionPseudonym
from tests.conftest import BOTH

OBJECTOR, OTHER_OBJECTOR = "185000003", "185000017"


def _stays(path, offset=0):
    """60 records of 20 people (3 each): nir 1850000000..1850000019 as text with leading zeros kept."""
    rows = [(f"1850{(i + offset) % 20:05d}", 40 + i % 2, "F" if i % 4 < 2 else "M", f"x{i}") for i in range(60)]
    path.write_text("nir,age,sex,note\n" + "".join(",".join(map(str, r)) + "\n" for r in rows))
    return path


@pytest.fixture
def two_projects(cli, tmp_path):
    out = {}
    for slug in ("cardio", "onco"):
        d = tmp_path / f"data-{slug}"
        d.mkdir()
        assert cli("project", "create", slug, "--data", str(d))[0] == 0
        code, _, err = cli("data", "import", slug, str(_stays(tmp_path / "stays.csv")), "--id-columns", "nir")
        assert code == 0, err
        out[slug] = d
    return out


def _objections_file(tmp_path, *ids, name="objections.csv"):
    p = tmp_path / name
    p.write_text("nir,received\n" + "".join(f"{i},2026-11-30\n" for i in ids))
    return p


def _audit(env, action):
    with db.transaction(env.db_url) as s:
        return [json.loads(e.detail) | {"_target": e.target}
                for e in s.query(AuditEvent).filter(AuditEvent.action == action).order_by(AuditEvent.seq)]


def _nirs_in(data_dir, name="stays"):
    return pq.read_table(data_dir / f"{name}.parquet").column("nir").to_pylist()


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_apply_removes_an_objector_from_existing_data_in_every_project(cli, two_projects, tmp_path, enclave_env):
    before = {slug: _nirs_in(d) for slug, d in two_projects.items()}
    # the register is given the identifiers spelled otherwise: spaces and dashes, no matter
    code, out, err = cli("optout", "add", "--id-column", "nir",
                         str(_objections_file(tmp_path, "1850-00003", " 185 000 017 ")))
    assert code == 0, err
    assert "2 objection(s) recorded" in out

    with db.transaction(enclave_env.db_url) as s:
        pseuds = {(p.project, p.pseudonym) for p in s.query(ObjectionPseudonym)}
    by_project = {slug: {p for proj, p in pseuds if proj == slug} for slug in two_projects}
    assert by_project["cardio"] and by_project["onco"]
    assert not by_project["cardio"] & by_project["onco"]  # pseudonyms differ per project: both were found
    for slug, mine in by_project.items():
        assert mine <= set(before[slug])

    code, out, err = cli("optout", "apply")
    assert code == 0, err
    for slug, d in two_projects.items():
        after = _nirs_in(d)
        assert len(after) == 54 and not set(after) & by_project[slug]
        manifest = json.loads((d / "stays.manifest.json").read_text())
        assert manifest["rows"] == 54 and manifest["version"] == 2
        assert manifest["objections"]["removed"] == "fewer than 10"  # 6 records: not shown exactly
        # the egress checks' fingerprints no longer know the objectors' records
        frame = pd.DataFrame({"nir": sorted(by_project[slug])})
        assert fingerprints.find_input_rows(enclave_env.state_dir, slug, frame) == []
        kept = pd.DataFrame({"nir": [after[0]]})
        assert fingerprints.find_input_rows(enclave_env.state_dir, slug, kept) == [0]
    events = _audit(enclave_env, "optout.apply")
    assert {e["_target"]: e["total"] for e in events} == {"cardio": 6, "onco": 6}  # exact in the audit log

    code, out, _ = cli("optout", "apply")  # nothing left to remove: no new version
    assert "no dataset holds" in out
    assert json.loads((two_projects["cardio"] / "stays.manifest.json").read_text())["version"] == 2


def test_an_objector_is_dropped_from_a_new_import_even_when_spelled_otherwise(cli, two_projects, tmp_path, enclave_env):
    assert cli("optout", "add", "--id-column", "nir", str(_objections_file(tmp_path, OBJECTOR)))[0] == 0
    # the new file holds the identifier as a number (leading zeros lost), the register as text
    src = tmp_path / "drugs.parquet"
    pq.write_table(pa.table({"nir": pa.array([185000003, 185000004, 185000003], pa.int64()),
                             "drug": ["a", "b", "c"]}), src)
    code, out, err = cli("data", "import", "cardio", str(src), "--id-columns", "nir", "--name", "drugs")
    assert code == 0, err
    assert "1 record(s)" not in out and "2 record(s) removed" in out
    assert len(_nirs_in(two_projects["cardio"], "drugs")) == 1
    manifest = json.loads((two_projects["cardio"] / "drugs.manifest.json").read_text())
    assert manifest["objections"] == {"register_kinds": ["nir"], "removed": "fewer than 10"}
    assert _audit(enclave_env, "data.import")[-1]["removed_for_objections"] == 2


def test_a_dropped_identifier_is_still_read_to_honour_objections(cli, two_projects, tmp_path):
    assert cli("optout", "add", "--id-column", "nir", str(_objections_file(tmp_path, OBJECTOR)))[0] == 0
    code, _, err = cli("data", "import", "onco", str(_stays(tmp_path / "again.csv")), "--drop", "nir",
                         "--name", "anonymous")
    assert code == 0, err
    table = pq.read_table(two_projects["onco"] / "anonymous.parquet")
    assert table.num_rows == 57 and "nir" not in table.column_names


def test_withdrawn_objections_no_longer_drop_records(cli, two_projects, tmp_path):
    f = _objections_file(tmp_path, OBJECTOR)
    assert cli("optout", "add", "--id-column", "nir", str(f))[0] == 0
    code, out, _ = cli("optout", "add", "--id-column", "nir", str(f))
    assert "0 objection(s) recorded, 1 already registered" in out
    code, out, _ = cli("optout", "withdraw", "--id-column", "nir", str(f))
    assert code == 0 and "1 objection(s) withdrawn" in out
    assert cli("data", "import", "cardio", str(_stays(tmp_path / "b.csv")), "--id-columns", "nir", "--name", "b")[0] == 0
    assert len(_nirs_in(two_projects["cardio"], "b")) == 60
    code, out, _ = cli("optout", "status")
    assert "objections registered: 0 (withdrawn: 1)" in out


def test_the_identifier_is_stored_nowhere(cli, two_projects, tmp_path, enclave_env, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(f"{OBJECTOR}\n{OTHER_OBJECTOR}\n"))
    assert cli("optout", "add", "--id-column", "nir", "-")[0] == 0
    assert cli("optout", "apply")[0] == 0
    places = [enclave_env.state_dir, *two_projects.values()]
    if enclave_env.db_url.startswith("sqlite"):
        places.append(db_path := __import__("pathlib").Path(enclave_env.db_url.removeprefix("sqlite:///")))
        assert db_path.exists()
    for place in places:
        files = [place] if place.is_file() else [p for p in place.rglob("*") if p.is_file()]
        for f in files:
            raw = f.read_bytes()
            for ident in (OBJECTOR, OTHER_OBJECTOR):
                assert ident.encode() not in raw, f
                assert ident.encode("utf-16-le") not in raw, f
    with db.transaction(enclave_env.db_url) as s:
        assert all(len(o.digest) == 32 for o in s.query(Objection))
    key = enclave_env.state_dir / "secrets" / optout.KEY_FILE
    assert key.stat().st_mode & 0o077 == 0


def test_refusals_say_what_is_wrong_and_record_nothing(cli, tmp_path, enclave_env):
    f = _objections_file(tmp_path, OBJECTOR)
    code, _, err = cli("optout", "add", "--id-column", "ssn", str(f))
    assert code == 2 and "not a kind of identifier" in err
    code, _, err = cli("optout", "add", "--id-column", "nir", str(tmp_path / "missing.csv"))
    assert code == 2 and "does not exist" in err
    other = tmp_path / "other.csv"
    other.write_text("patient,received\n1,2\n")
    code, _, err = cli("optout", "add", "--id-column", "nir", str(other))
    assert code == 2 and "no column 'nir'" in err
    junk = tmp_path / "junk.parquet"
    junk.write_bytes(b"PAR1 not really parquet")
    code, _, err = cli("optout", "add", "--id-column", "nir", str(junk))
    assert code == 2 and "does not parse" in err
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(Objection).count() == 0


def test_an_objection_recorded_during_an_import_stops_its_publication(cli, two_projects, tmp_path, enclave_env):
    with db.transaction(enclave_env.db_url) as s:
        f = optout.ImportFilter(enclave_env.settings, s, ["nir"])
    assert cli("optout", "add", "--id-column", "nir", str(_objections_file(tmp_path, OBJECTOR)))[0] == 0
    with db.transaction(enclave_env.db_url) as s, pytest.raises(Conflict, match="run the import again"):
        f.check_unchanged(s)


def test_erased_fingerprints_equal_those_of_the_data_that_stays(tmp_path):
    """Taking rows out of the fingerprints without re-hashing what stays gives exactly the fingerprints
    of the remaining rows, even when a kept row shares everything but the pseudonym with a removed one,
    or holds the objector's pseudonym in another column."""
    import numpy as np

    table = pa.table({
        "nir": ["PA", "PA", "PB", "PC", "PD"],
        "mother": ["PM", "PN", "PA", "PM", None],  # PA (the objector) is also a mother in a kept row
        "age": [40, 41, 40, 52, 40], "ward": ["icu", "onco", "icu", "icu", "icu"],
        "note": ["x", "y", "x", "z", "x"],  # PB's and PD's rows equal PA's first row but for the pseudonyms
    })
    cols, ids = table.column_names, ["nir", "mother"]
    full = fingerprints.FingerprintWriter("d", cols, ids)
    full.add(table.to_batches()[0])
    full.write(tmp_path / "before")
    drop = pa.array([v == "PA" for v in table.column("nir").to_pylist()])
    kept, gone = table.filter(pa.compute.invert(drop)), table.filter(drop)
    expected = fingerprints.FingerprintWriter("d", cols, ids)
    expected.add(kept.to_batches()[0])
    expected.write(tmp_path / "expected")
    fingerprints.erase(tmp_path / "before", tmp_path / "after", "d", gone, kept.column, matched=["nir"])
    for f in sorted(p.name for p in (tmp_path / "expected").iterdir()):
        if f.endswith(".npy"):
            assert np.array_equal(np.load(tmp_path / "after" / f), np.load(tmp_path / "expected" / f)), f
    meta = json.loads((tmp_path / "after" / "d.json").read_text())
    assert (meta["rows"], meta["distinct_rows"]) == (3, 3)


def test_apply_says_which_file_is_missing_and_changes_nothing_of_that_project(cli, two_projects, tmp_path):
    assert cli("optout", "add", "--id-column", "nir", str(_objections_file(tmp_path, OBJECTOR)))[0] == 0
    (two_projects["onco"] / "stays.parquet").unlink()
    manifest_before = (two_projects["onco"] / "stays.manifest.json").read_text()
    code, _, err = cli("optout", "apply")
    assert code == 2 and "restore it from backup" in err and "onco" in err
    assert (two_projects["onco"] / "stays.manifest.json").read_text() == manifest_before
    assert len(_nirs_in(two_projects["cardio"])) == 57  # the project before it was done
