"""Code and packages coming in through the review service: what is refused outright, what the reviewer
is shown, and what an approval does (a project rule; a file in the workspace, never through a link)."""

import base64
import json
import os

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from enclave import db, packages
from enclave.models import AuditEvent

from egress_review.app import create_app
from tests.support.egress_gate import HeaderGate

P = "/services/egress"
EICAR = rb"X5O!P%@AP[4\PZX54(P^)7CC)7}$EICAR-STANDARD-ANTIVIRUS-TEST-FILE!$H+H*"
CODE = b"import pandas as pd\n\ndef cohort(df):\n    return df[df.age >= 18]\n"


@pytest.fixture
def signatures(tmp_path):
    """ClamAV signatures that know the EICAR test file (no internet: no official database here)."""
    d = tmp_path / "clamav"
    d.mkdir()
    (d / "enclave-test.ndb").write_text(f"Enclave.Test.EICAR:0:*:{b'EICAR-STANDARD-ANTIVIRUS-TEST-FILE'.hex()}\n")
    return d


@pytest.fixture
def client(egress, signatures):
    egress.settings.imports.clamav_database = str(signatures)
    return TestClient(create_app(egress.settings, gate=HeaderGate()))


def as_(name):
    return {"X-Egress-Test-User": name}


def bring(client, files, who="ann", project="cardio", why="cohort definitions for the survival model"):
    return client.post(f"{P}/api/imports/code", headers=as_(who), data={"project": project, "why": why},
                       files=[("files", (name, data)) for name, data in files])


def approve(client, rid, who="sam", override=""):
    view = client.get(f"{P}/api/requests/{rid}", headers=as_(who)).json()
    for g in view["groups"]:
        for f in g["files"]:
            r = client.post(f"{P}/api/files/{f['id']}/reviews", headers=as_(who),
                            json={"decision": "approve", "override_reason": override})
            assert r.status_code == 200, r.text
    return client.get(f"{P}/api/requests/{rid}", headers=as_(who)).json()


def test_package_ask_approved_joins_the_projects_allow_list(client, egress):
    r = client.post(f"{P}/api/imports/packages", headers=as_("ann"), json={
        "project": "cardio", "name": "Lifelines", "versions": "==0.30", "why": "Cox models"})
    assert r.status_code == 201, r.text
    item = r.json()["groups"][0]["files"][0]
    assert r.json()["direction"] == "in" and r.json()["reviewers_required"] == 1
    assert item["path"] == "lifelines==0.30" and item["kind"] == "package"
    assert "not in the repository" in item["checks"]["findings"][0]["message"]
    assert client.post(f"{P}/api/files/{item['id']}/reviews", headers=as_("ann"),
                       json={"decision": "approve"}).status_code == 403  # never the requester
    assert approve(client, r.json()["id"], who="ada")["status"] == "released"  # an admin may decide it
    with db.transaction(egress.url) as s:
        [rule] = [e for e in packages.listing(s, "cardio") if e.name == "lifelines"]
        assert rule.scope == "cardio" and rule.allowed and rule.versions == "==0.30"
        assert [e.name for e in packages.missing(s)] == ["lifelines"]  # for the next bundle
        actions = [a for (a,) in s.execute(select(AuditEvent.action).order_by(AuditEvent.seq))]
    assert actions[-3:] == ["egress.release", "packages.allow", "import.landed"]


def test_approved_code_lands_in_the_workspace_without_overwriting(client, egress):
    egress.write("imports/cohort.py", "# mine\n")
    r = bring(client, [("cohort.py", CODE), ("query.sql", b"select count(*) from stays;\n")])
    assert r.status_code == 201, r.text
    checks = {f["path"]: f["check_status"] for f in r.json()["groups"][0]["files"]}
    assert checks == {"cohort.py": "pass", "query.sql": "pass"}
    assert approve(client, r.json()["id"])["status"] == "released"
    assert (egress.ws / "imports" / "cohort.py").read_text() == "# mine\n"  # kept
    assert (egress.ws / "imports" / "cohort (2).py").read_bytes() == CODE
    st = os.stat(egress.ws / "imports" / "query.sql")
    assert (st.st_uid, st.st_gid) == (1000, 100)
    r = client.get(f"{P}/api/files/{r.json()['groups'][0]['files'][0]['id']}/download", headers=as_("ann"))
    assert r.status_code == 403  # nothing of an import is downloaded


def test_a_planted_link_is_never_followed(client, egress, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, egress.ws / "imports")
    r = bring(client, [("cohort.py", CODE)])
    approve(client, r.json()["id"])
    assert list(outside.iterdir()) == []
    with db.transaction(egress.url) as s:
        landed = json.loads(s.execute(select(AuditEvent.detail).where(AuditEvent.action == "import.landed")).scalar_one())
    assert "not_landed" in landed["items"][0]


NOTEBOOK_WITH_OUTPUT = json.dumps({"cells": [{"cell_type": "code", "source": "df.head()", "metadata": {},
                                              "execution_count": 1, "outputs": [{"output_type": "stream",
                                                                                 "name": "stdout", "text": "1840275123456 C50\n"}]}],
                                   "metadata": {}, "nbformat": 4, "nbformat_minor": 5}).encode()


@pytest.mark.parametrize("name, data, says", [
    ("cohort.csv", b"nir,dx\n1840275123456,C50\n", "is not code"),
    ("keys.parquet", b"PAR1\x00\x00", "is not code"),
    ("analysis.ipynb", NOTEBOOK_WITH_OUTPUT, "clear all outputs"),
    ("analysis.ipynb", b"{not json", "is not a Jupyter notebook"),
    ("tool.py", b"\x7fELF\x02\x01\x01\x00", "binary"),
    ("latin.py", "caf\xe9 = 1\n".encode("latin-1"), "not UTF-8"),
    ("big.py", b"x = 1\n" * 100_000, "more than the 512 KiB"),
    ("eicar.py", b"s = r'''" + EICAR + b"'''\n", "malware scan found Enclave.Test.EICAR"),
    ("../../etc/passwd.py", b"x = 1\n", None),  # only the base name is used: lands as passwd.py
])
def test_what_is_refused_outright(client, egress, name, data, says):
    r = bring(client, [(name, data)])
    if says is None:
        assert r.status_code == 201 and r.json()["groups"][0]["files"][0]["path"] == "passwd.py"
        return
    assert r.status_code == 400 and says in r.json()["message"], r.text
    assert client.get(f"{P}/api/requests", headers=as_("ann")).json()["requests"] == []  # nothing kept


def _table_in_code(n=40):
    rows = "\n".join(f"    ({1840275000000 + i}, '{1950 + i % 50}-0{1 + i % 9}-1{i % 9}', {i % 7}, {100 + i})," for i in range(n))
    return f"PATIENTS = [\n{rows}\n]\n".encode()


@pytest.mark.parametrize("data, check", [
    (b"KEY = '" + base64.b64encode(os.urandom(600)) + b"'\n", "embedded_blob"),
    (_table_in_code(), "embedded_table"),
    (("PSEUDONYMS = [\n" + "".join(f"  '{os.urandom(16).hex()}',\n" for _ in range(30)) + "]\n").encode(), "embedded_keys"),
    (("V = [" + ", ".join(str(i * 37 % 1000) for i in range(2000)) + "]\n").encode(), "embedded_numbers"),
])
def test_data_disguised_as_code_fails_the_checks(client, egress, data, check):
    r = bring(client, [("helpers.py", data)])
    assert r.status_code == 201, r.text
    f = r.json()["groups"][0]["files"][0]
    assert f["check_status"] == "fail" and check in [x["check"] for x in f["checks"]["findings"]]
    rv = client.post(f"{P}/api/files/{f['id']}/reviews", headers=as_("sam"), json={"decision": "approve"})
    assert rv.status_code == 400 and "override reason" in rv.json()["message"]


def test_without_signatures_code_is_marked_for_review(egress, tmp_path):
    empty = tmp_path / "no-signatures"
    empty.mkdir()
    egress.settings.imports.clamav_database = str(empty)
    c = TestClient(create_app(egress.settings, gate=HeaderGate()))
    r = bring(c, [("cohort.py", CODE)])
    f = r.json()["groups"][0]["files"][0]
    assert f["check_status"] == "review" and "not scanned" in json.dumps(f["checks"])


def test_roles_and_projects(client, egress):
    assert bring(client, [("a.py", CODE)], who="bob").status_code == 403  # not a member of cardio
    assert bring(client, [("a.py", CODE)], who="sam").status_code == 403  # stewards do not ask
    r = client.post(f"{P}/api/imports/packages", headers=as_("ann"), json={
        "project": "cardio", "name": "../evil", "why": "x"})
    assert r.status_code == 400 and "not a Python package name" in r.json()["message"]
    r = client.post(f"{P}/api/imports/packages", headers=as_("ann"), json={"project": "cardio", "name": "x", "why": " "})
    assert r.status_code == 400 and "say why" in r.json()["message"]


def test_an_oversized_upload_is_refused_before_it_is_read(client, egress):
    egress.settings.imports.max_files = 1
    egress.settings.imports.max_file_kib = 1
    r = bring(client, [("a.py", b"#" * (3 << 20))])
    assert r.status_code == 400 and "code imports are at most 1 files" in r.json()["message"]


@pytest.mark.parametrize("name", ["evil\nname.py", "bell\x07.py", ".hidden.py", "", "x" * 201 + ".py"])
def test_names_no_workspace_should_hold_are_refused(name):
    """Raw multipart clients can send any bytes as a file name (browsers and httpx percent-encode them)."""
    from egress_review import intake
    from enclave.errors import Invalid

    with pytest.raises(Invalid, match="not a usable file name"):
        intake.check_name(name)
