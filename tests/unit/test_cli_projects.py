"""`enclave project ...` and `enclave user add|list|disable`: happy paths and clear refusals."""

import pytest

from enclave import db
from enclave.models import Project

from tests.conftest import BOTH


@pytest.fixture
def data_dir(tmp_path):
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.mark.parametrize("db_url", BOTH, indirect=True)
def test_project_lifecycle(cli, data_dir):
    assert cli("user", "add", "ann", "--role", "researcher")[0] == 0
    code, out, _ = cli("project", "create", "cardio", "--data", str(data_dir), "--end", "2099-12-31",
                       "--min-cell-count", "11")
    assert code == 0, out
    assert cli("project", "add-member", "cardio", "ann")[0] == 0
    code, out, _ = cli("project", "list")
    assert "cardio" in out and "ann" in out and "11" in out
    assert cli("project", "suspend", "cardio")[0] == 0
    assert "suspended" in cli("project", "list")[1]
    assert cli("project", "remove-member", "cardio", "ann")[0] == 0
    assert cli("project", "close", "cardio")[0] == 0
    code, _, err = cli("project", "resume", "cardio")
    assert code == 2 and "closed" in err
    assert cli("audit", "verify")[0] == 0


@pytest.mark.parametrize(
    "args, message",
    [
        (["project", "create", "Bad_Name", "--data", "{data}"], "not allowed"),
        (["project", "create", "ok", "--data", "{data}/missing"], "does not exist"),
        (["project", "create", "ok", "--data", "{data}", "--end", "31/12/2030"], "YYYY-MM-DD"),
        (["project", "create", "ok", "--data", "{data}", "--start", "2030-01-02", "--end", "2030-01-01"], "before start"),
        (["project", "create", "ok", "--data", "{data}", "--min-cell-count", "0"], "at least 1"),
        (["project", "add-member", "nope", "ann"], "no project 'nope'"),
        (["user", "add", "x", "--role", "researcher"], "not allowed"),
        (["user", "add", "bob", "--role", "boss"], "unknown role"),
        (["user", "disable", "ghost"], "no user 'ghost'"),
    ],
    ids=["bad-slug", "missing-data", "bad-date", "end-before-start", "zero-min-cell", "unknown-project",
         "bad-username", "bad-role", "unknown-user"],
)
def test_bad_input_is_refused_and_nothing_written(cli, data_dir, enclave_env, args, message):
    args = [a.replace("{data}", str(data_dir)) for a in args]
    code, _, err = cli(*args)
    assert code == 2
    assert message in err
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(Project).count() == 0
    assert "0 events" in cli("audit", "verify")[1]


def test_membership_rules(cli, data_dir):
    cli("project", "create", "p1", "--data", str(data_dir))
    cli("user", "add", "stew", "--role", "steward")
    cli("user", "add", "ann", "--role", "researcher")
    code, _, err = cli("project", "add-member", "p1", "stew")
    assert code == 2 and "only researchers" in err
    assert cli("project", "add-member", "p1", "ann")[0] == 0
    code, _, err = cli("project", "add-member", "p1", "ann")
    assert code == 2 and "already a member" in err
    code, _, err = cli("project", "create", "p1", "--data", str(data_dir))
    assert code == 2 and "already exists" in err


def test_user_add_prints_enrolment_url_last(cli):
    code, out, _ = cli("user", "add", "ann", "--role", "researcher")
    assert code == 0
    last = out.strip().splitlines()[-1]
    assert last.startswith("http://127.0.0.1:8000/hub/enrol/") and len(last.rsplit("/", 1)[1]) >= 40
    assert "pending" in cli("user", "list")[1]
    assert cli("user", "disable", "ann")[0] == 0
    assert "disabled" in cli("user", "list")[1]
