"""A hostile researcher copies data out through every channel a browser notebook has, at full speed,
and the host guard (nftables meter + HAProxy on the host) bounds it: real hub, real containers, a
real image, and a "patched" image whose in-container policy is gone, to show the host needs none of it.

Bounds in these tests are small so they are quick: a 2 MiB burst, then 16 KiB/s. nftables' bucket
holds the burst plus one second of the rate, so what any channel gets in T seconds is at most
burst + rate x (T + 1); the payload counted here is less than the IP bytes the kernel counts.
"""

from __future__ import annotations

import html
import json
import time

import pytest

from enclave import audit, db, notify
from enclave.models import AuditEvent, DailyVolume, GuardedServer

from hub.guard.meter import Meter
from tests.support import channels
from tests.support.kernel import run_cell
from tests.support.smtp import SMTPServer

MIB = 2**20
BURST, RATE = 2 * MIB, 16 * 1024
SLACK = 64 * 1024  # one websocket message or HTTP chunk in flight at the deadline
T = 12.0

MAKE_FILES = ("import os\n"
              "for i in range(4):\n"
              "    open(f'/home/jovyan/work/piece{i}.bin', 'wb').write(os.urandom(3 << 20))\n"
              "open('/home/jovyan/work/big.bin', 'wb').write(os.urandom(8 << 20))\n"
              "open('/home/jovyan/work/small.txt', 'w').write('hello')\n"
              "print('made')")


def _events(env, action: str) -> list[dict]:
    with db.transaction(env.db_url) as s:
        assert audit.verify(s).ok
        return [json.loads(e.detail) | {"_target": e.target, "_actor": e.actor}
                for e in s.query(AuditEvent).filter_by(action=action).order_by(AuditEvent.seq)]


def _serving_files(site, hub, user, slug) -> tuple:
    """The person logs in, starts the project's server and opens it; a cell writes the files the
    tests then try to copy out. Returns the person's session, the server's URL and its XSRF token."""
    http = site.login(hub, user)
    site.start_server(hub, http, user, slug)
    server, xsrf = channels.open_server(hub, http, user, slug)
    assert "made" in run_cell(server, http, "python3", MAKE_FILES, xsrf)
    return http, server, xsrf


@pytest.fixture
def guarded(site):
    site.guard.update(burst_mib=BURST // MIB, sustained_kib_per_s=RATE // 1024, daily_mib=1024,
                      record_seconds=3, sample_seconds=1)
    return site


def test_every_channel_is_bounded_to_the_burst_then_the_sustained_rate(guarded, enclave_env):
    site = guarded
    ann = site.user("ann")
    alpha = site.project("a", members=[ann])
    with site.hub() as hub:
        http, server, xsrf = _serving_files(site, hub, ann, alpha)  # ordinary use gets through
        pieces = [f"piece{i}.bin" for i in range(4)]
        got = {
            "contents API": channels.contents_api(server, http, xsrf, pieces, T),
            "kernel shell channel": channels.kernel_shell(server, http, xsrf, T),
            "kernel output": channels.kernel_output(server, http, xsrf, T),
            "terminal": channels.terminal(server, http, xsrf, "while true; do base64 big.bin; done", T),
        }
        bound = BURST + RATE * (T + 1) + SLACK
        for channel, n in got.items():
            assert n <= bound, f"{channel}: {n} bytes in {T} s, over the bound {bound}: {got}"
        # the whole run: one burst in all, then the rate (the channels share the server's bucket)
        assert sum(got.values()) <= BURST + RATE * (4 * T + 8) + 4 * SLACK, got
        assert got["terminal"] > 0 and got["kernel shell channel"] > 0, got  # slowed, not cut off
        time.sleep(4)  # a guard pass or two
        slowed = _events(enclave_env, "notebook.egress_slowed")
        assert [(e["_target"], e["user"]) for e in slowed] == [(alpha, ann.username)]
        volumes = _events(enclave_env, "notebook.egress_volume")
        assert volumes and volumes[-1]["today_bytes"] >= sum(got.values())
        # the person stops the server (not the hub's shutdown, which may be cut short on a slow machine)
        site.stop_server(hub, http, ann, alpha)
    # at stop: the last count, and the person's volume for the day
    final = [e for e in _events(enclave_env, "notebook.egress_volume") if e["final"]]
    assert [(e["_target"], e["user"]) for e in final] == [(alpha, ann.username)]
    with db.transaction(enclave_env.db_url) as s:
        row = s.query(DailyVolume).filter_by(username=ann.username, project=alpha).one()
        assert row.bytes == final[0]["today_bytes"] >= sum(got.values())


def test_a_server_that_dies_on_its_own_is_still_counted_and_released(guarded, enclave_env):
    """Out of memory, killed, its node gone: the hub never calls stop() on a dead container, yet the
    last count is recorded and the kernel meters are taken away."""
    site = guarded
    ann = site.user("ann")
    alpha = site.project("a", members=[ann])
    with site.hub() as hub:
        http, _server, _xsrf = _serving_files(site, hub, ann, alpha)
        assert Meter(site.guard["nft_table"], "").read(), "the server was not under guard"
        site.container(ann, alpha).kill()
        site.stop_server(hub, http, ann, alpha)
        assert Meter(site.guard["nft_table"], "").read() == {}, "the dead server's meters stayed"
    [stop] = _events(enclave_env, "notebook.stop")
    assert stop["ended_on_its_own"] is True
    final = [e for e in _events(enclave_env, "notebook.egress_volume") if e["final"]]
    assert [(e["_target"], e["user"]) for e in final] == [(alpha, ann.username)]
    assert final[0]["today_bytes"] > 0
    with db.transaction(enclave_env.db_url) as s:
        assert s.query(GuardedServer).count() == 0


def test_the_daily_cap_stops_the_server_until_a_steward_raises_it(guarded, enclave_env, cli):
    site = guarded
    site.guard.update(burst_mib=16, daily_mib=3)
    ann, ada = site.user("ann"), site.user("ada", role="admin")
    alpha = site.project("a", members=[ann])
    with db.transaction(enclave_env.db_url) as s:
        notify.set_preferences(s, "test", ada.username, email="ada@localhost")
    smtp = SMTPServer()
    mail = {"mail": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port, "security": "none", "send_seconds": 1}}
    with smtp, site.hub(mail) as hub:
        http, server, xsrf = _serving_files(site, hub, ann, alpha)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and site.server_model(hub, http, ann, alpha) is not None:
            channels.contents_api(server, http, xsrf, ["piece0.bin"], 3)
        assert site.server_model(hub, http, ann, alpha) is None, "the server outlived its daily cap"
        reached = _events(enclave_env, "notebook.egress_cap_reached")
        assert [(e["_target"], e["user"]) for e in reached] == [(alpha, ann.username)]
        assert 2.5 * MIB <= reached[0]["today_bytes"] <= 3 * MIB + SLACK, reached  # at the cap, not past it
        # the admin is told by mail (what happened and where to act; nothing of the data)
        [told] = smtp.inbox.wait(1)
        assert told["To"] == "ada@localhost" and told["Subject"] == f"Daily cap reached in project {alpha}"
        assert "/services/egress/volumes" in told.get_payload()
        # no new start today: the person reads why and what to do
        r = site.request_start(hub, http, ann, alpha)
        page = html.unescape(r.text)
        assert r.status_code == 403 and "today's allowance of 3 MiB" in page and "data steward" in page
        assert "today's allowance" in html.unescape(http.get(f"{hub.url}/hub/home", timeout=30).text)
        # a steward raises it for today (audited), and the server starts again
        code, out, err = cli("volume", "raise", ann.username, alpha, "--mib", "64", "--reason", "final tables")
        assert code == 0, err
        site.start_server(hub, http, ann, alpha)
        raised = _events(enclave_env, "notebook.egress_cap_raised")
        assert [(e["user"], e["mib"], e["reason"]) for e in raised] == [(ann.username, 64, "final tables")]


def test_downloads_and_terminals_are_refused_by_the_host_even_from_a_patched_server(guarded, enclave_env, cli):
    """The image's own policy removed (a server that would serve anything): the host still refuses."""
    site = guarded
    patched = f"enct{site.token}/patched:1"
    site.docker.images.build(fileobj=__import__("io").BytesIO(
        f"FROM {site.image}\nUSER root\nRUN rm /etc/jupyter/jupyter_server_config.py\nUSER 1000\n".encode()),
        tag=patched, rm=True, pull=False)
    try:
        ann = site.user("ann")
        alpha = site.project("a", members=[ann])
        assert cli("project", "limits", alpha, "--terminals", "off")[0] == 0
        with site.hub(image=patched, allowed_images=[patched]) as hub:
            http = site.login(hub, ann)
            site.start_server(hub, http, ann, alpha)
            box = site.container(ann, alpha)
            assert box.exec_run("test -e /etc/jupyter/jupyter_server_config.py").exit_code != 0  # no policy inside
            server, xsrf = channels.open_server(hub, http, ann, alpha)
            assert "made" in run_cell(server, http, "python3", MAKE_FILES, xsrf)
            h = {"X-XSRFToken": xsrf}
            ok = http.get(f"{server}/api/contents/small.txt", params={"content": 1}, headers=h, timeout=60)
            assert ok.status_code == 200 and ok.json()["content"] == "hello"  # the control: small reads work
            refused = {
                "files": http.get(f"{server}/files/big.bin", headers=h, timeout=60),
                "view": http.get(f"{server}/view/small.txt", headers=h, timeout=60),
                "nbconvert": http.get(f"{server}/nbconvert/html/x.ipynb", params={"download": "true"}, headers=h,
                                      timeout=60),
                "read_too_large": http.get(f"{server}/api/contents/big.bin", params={"content": 1, "format": "base64"},
                                          headers=h, timeout=60),
                "terminal": http.post(f"{server}/api/terminals", headers=h, timeout=60),
            }
            for what, r in refused.items():
                assert r.status_code == 403 and "Downloads are switched off" in r.text, (what, r.status_code, r.text[:200])
            time.sleep(3)
        kinds = {e["kind"] for e in _events(enclave_env, "notebook.download_refused") if e.get("by") == "host"}
        assert {"files", "view", "nbconvert", "read_too_large", "terminal"} <= kinds, kinds
    finally:
        site.docker.images.remove(patched, force=True)
