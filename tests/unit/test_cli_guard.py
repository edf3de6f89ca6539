"""`enclave project limits` and `enclave volume list|raise`: an operator's and a steward's view of the
host guard's bounds and record."""

from __future__ import annotations

import re

from enclave import clock, db, volumes
from enclave.models import AuditEvent


def _rows(out: str) -> dict[str, list[str]]:
    """The printed table as {first column: other columns} (columns are two or more spaces apart)."""
    return {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", ln.strip()) for ln in out.splitlines()[1:])}


def test_project_limits_show_set_and_go_back_to_the_site(cli, enclave_env, tmp_path):
    assert cli("project", "create", "cardio", "--data", str(tmp_path))[0] == 0
    code, out, _ = cli("project", "limits", "cardio")
    assert code == 0 and _rows(out)["burst"] == ["48 MiB", "site"] and _rows(out)["terminals"] == ["on", "site"]
    code, out, _ = cli("project", "limits", "cardio", "--daily-mib", "20", "--terminals", "off")
    assert code == 0 and _rows(out)["daily cap"] == ["20 MiB", "project"] and _rows(out)["terminals"] == ["off", "project"]
    code, out, _ = cli("project", "limits", "cardio", "--daily-mib", "site")
    assert code == 0 and _rows(out)["daily cap"] == ["256 MiB", "site"]
    code, _, err = cli("project", "limits", "cardio", "--burst-mib", "lots")
    assert code == 2 and "neither a whole number nor 'site'" in err
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="project.guard_bounds").count() == 2


def test_project_container_limits_set_refused_and_back_to_the_site(cli, enclave_env, tmp_path):
    assert cli("project", "create", "cardio", "--data", str(tmp_path))[0] == 0
    code, out, _ = cli("project", "limits", "cardio", "--mem", "8G", "--cpus", "2")
    assert code == 0 and _rows(out)["memory"] == ["8G", "project"] and _rows(out)["cpus"] == ["2", "project"]
    for flags, says in ((("--mem", "lots"), "not a memory size"), (("--mem", "1M"), "below 256 MiB"),
                        (("--cpus", "0"), "above 0"), (("--cpus", "many"), "neither a number")):
        code, _, err = cli("project", "limits", "cardio", *flags)
        assert code == 2 and says in err, err
    code, out, _ = cli("project", "limits", "cardio", "--mem", "site", "--cpus", "site")
    assert _rows(out)["memory"] == ["4G", "site"] and _rows(out)["cpus"] == ["1", "site"]
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(AuditEvent).filter_by(action="project.container_limits").count() == 2


def test_volume_list_and_raise(cli, enclave_env, tmp_path):
    assert cli("project", "create", "cardio", "--data", str(tmp_path))[0] == 0
    assert cli("user", "add", "ann", "--role", "researcher")[0] == 0
    with db.transaction(enclave_env.db_url) as s:
        volumes.record(s, clock.today(), "ann", "cardio", 5 * volumes.MIB)
    code, out, _ = cli("volume", "list")
    assert code == 0 and _rows(out.split("\n", 1)[1])["cardio"] == ["ann", "5.0", "256"]
    code, _, err = cli("volume", "raise", "ann", "cardio", "--mib", "512", "--reason", "")
    assert code == 2 and "say why" in err
    code, out, _ = cli("volume", "raise", "ann", "cardio", "--mib", "512", "--reason", "resubmission")
    assert code == 0 and "up to 512 MiB" in out
    assert _rows(cli("volume", "list")[1].split("\n", 1)[1])["cardio"] == ["ann", "5.0", "512", "raised"]
    code, _, err = cli("volume", "raise", "nobody", "cardio", "--mib", "5", "--reason", "x")
    assert code == 2 and "no user 'nobody'" in err
