"""The host guard's rules without a container: bounds per project, the daily cap and a raise, the
kernel script it writes, HAProxy's configuration (checked by the real haproxy), refusal records."""

from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from enclave import db, projects, volumes
from enclave.errors import Invalid, PermissionDenied
from enclave.models import AuditEvent
from enclave.settings import Settings
from hub.guard import proxy
from hub.guard.meter import Meter
from hub.services.egress_guard import REFUSALS_PER_MINUTE, Guard
from tests.support.users import enrolled_user

MIB = 2**20
DAY = dt.date(2026, 6, 1)


@pytest.fixture
def world(enclave_env, tmp_path):
    for name, role in (("ann", "researcher"), ("sam", "steward"), ("ada", "admin")):
        enrolled_user(enclave_env.settings, name, role=role)
    with db.transaction(enclave_env.db_url) as s:
        projects.create(s, "test", "cardio", str(tmp_path))
    return enclave_env


def test_a_project_overrides_the_sites_bounds_and_can_go_back(world):
    g = Settings({"guard": {"burst_mib": 10, "daily_mib": 100}}).guard
    with db.transaction(world.db_url) as s:
        p = projects.get(s, "cardio")
        assert volumes.bounds_for(p, g) == volumes.Bounds(10 * MIB, 28 * 1024, 100 * MIB, True)
        projects.set_guard_bounds(s, "test", "cardio", guard_daily_mib=5, terminals=False)
        assert volumes.bounds_for(p, g) == volumes.Bounds(10 * MIB, 28 * 1024, 5 * MIB, False)
        projects.set_guard_bounds(s, "test", "cardio", guard_daily_mib=projects.SITE)
        assert volumes.bounds_for(p, g).daily_bytes == 100 * MIB
        with pytest.raises(Invalid):
            projects.set_guard_bounds(s, "test", "cardio", guard_burst_mib=0)


def test_the_daily_cap_refuses_until_a_steward_raises_it_for_that_day(world):
    g = Settings({"guard": {"daily_mib": 4}}).guard
    with db.transaction(world.db_url) as s:
        p = projects.get(s, "cardio")
        volumes.record(s, DAY, "ann", "cardio", 3 * MIB)
        volumes.check_within_cap(s, DAY, "ann", p, g)  # under: fine
        volumes.record(s, DAY, "ann", "cardio", MIB)
        with pytest.raises(PermissionDenied) as exc:
            volumes.check_within_cap(s, DAY, "ann", p, g)
        assert exc.value.reason == "egress_daily_cap" and "ask a data steward" in exc.value.message
        volumes.check_within_cap(s, DAY + dt.timedelta(days=1), "ann", p, g)  # a new day, a new allowance
        with pytest.raises(PermissionDenied):
            volumes.raise_cap(s, "ada", "ann", p, 10, "please", day=DAY)  # admins do not decide what leaves
        with pytest.raises(Invalid):
            volumes.raise_cap(s, "sam", "ann", p, 10, "  ", day=DAY)  # a reason is required
        volumes.raise_cap(s, "sam", "ann", p, 10, "final tables", day=DAY)
        volumes.check_within_cap(s, DAY, "ann", p, g)
        volumes.mark_capped(s, DAY, "ann", "cardio")  # the guard stopped the server at the kernel's quota
        with pytest.raises(PermissionDenied):
            volumes.check_within_cap(s, DAY, "ann", p, g)
        assert s.query(AuditEvent).filter_by(action="notebook.egress_cap_raised").count() == 1


class Recorder:
    def __init__(self):
        self.calls = []

    def __call__(self, argv, input=None):
        self.calls.append((argv, input))
        return subprocess.CompletedProcess(argv, 0, '{"nftables": []}', "")


def test_the_kernel_rules_fail_closed_and_each_server_gets_its_own_meters():
    rec = Recorder()
    m = Meter("guard_t", "enc-", runner=rec)
    m.install()
    script = rec.calls[0][1]
    assert 'iifname "enc-*" tcp sport 8888 ip saddr != @guarded drop' in script  # unknown server: nothing passes
    assert 'iifname "enc-*" meta nfproto ipv6 drop' in script
    assert script.index("limit name") < script.index("quota name") < script.index("counter name ip saddr map @vol")
    assert "flush chain inet guard_t input" in script and "delete table" not in script  # meters survive a restart
    m.guard("k1", "10.1.2.3", burst=2 * MIB, rate=1024, cap=5 * MIB)
    script = rec.calls[-1][1]
    assert f"rate over 1024 bytes/second burst {2 * MIB} bytes" in script and f"over {5 * MIB} bytes" in script
    assert 'add element inet guard_t guarded { 10.1.2.3 }' in script


def test_haproxy_accepts_the_configuration(tmp_path):
    files = proxy.files_for(tmp_path)
    proxy.write_config(files, 18095, 18096, 5 * MIB, "https://enclave.example/services/egress/")
    done = subprocess.run(["haproxy", "-c", "-f", str(files.config)], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
    text = files.config.read_text()
    assert f"gt {5 * MIB}" in text and "(files|view|nbconvert)" in text
    assert "Ask for a release at https://enclave.example/services/egress/" in text
    routes = proxy.ProxyRoutes(files)  # no HAProxy running: the files alone
    routes.route("ann", "cardio", "10.1.2.3", 8888, terminals=False)
    routes.route("bob", "cardio", "10.1.2.4", 8888, terminals=True)
    assert files.routes.read_text().splitlines() == ["/user/ann/cardio/ 10.1.2.3:8888", "/user/bob/cardio/ 10.1.2.4:8888"]
    assert files.no_terminals.read_text().splitlines() == ["/user/ann/cardio/ 1"]
    routes.unroute("ann", "cardio")
    assert files.routes.read_text().splitlines() == ["/user/bob/cardio/ 10.1.2.4:8888"]


def test_refusals_logged_by_the_proxy_are_audited_a_few_a_minute(world):
    guard = Guard(world.settings, api=None, meter=None)
    line = "<134>Nov 30 haproxy[1]: enclave-guard refused=files status=403 size=- path=/user/ann/cardio/files/a.csv"
    assert not guard.refused("enclave-guard refused=- status=200 size=- path=/user/ann/cardio/lab", now=0)
    for i in range(REFUSALS_PER_MINUTE + 3):
        assert guard.refused(line, now=float(i))
    assert guard.refused(line, now=70.0)  # next minute: recorded, with the count held back
    with db.transaction(world.db_url) as s:
        rows = [json.loads(e.detail) for e in s.query(AuditEvent).filter_by(action="notebook.download_refused")]
    assert len(rows) == REFUSALS_PER_MINUTE + 1
    assert rows[0] == {"user": "ann", "kind": "files", "status": 403, "path": "/files/a.csv", "by": "host",
                       "not_recorded_before": 0}
    assert rows[-1]["not_recorded_before"] == 3
