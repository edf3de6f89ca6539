"""A member starts a project's notebook through the real hub, and the container is the one we promise.

Real JupyterHub + proxy (`enclave up`), real login (password + TOTP), real Docker containers from the
researcher image. At teardown `docker inspect` and container logs are printed (pytest shows them for a
failing test), then every container, network and firewall chain the test made is removed.
"""

from __future__ import annotations

import pytest

from enclave import audit, db
from enclave.models import AuditEvent
from enclave.paths import workspace

from hub.spawn import seccomp

pytestmark = pytest.mark.integration


def _mount(attrs, destination):
    return next((m for m in attrs["Mounts"] if m["Destination"] == destination), None)


def test_member_gets_a_hardened_container_with_read_only_data_and_own_workspace(site, enclave_env):
    ann = site.user("ann")
    alpha = site.project("a", members=[ann])
    beta = site.project("b", members=[ann])
    with site.hub() as hub:
        http = site.login(hub, ann)
        box_a = site.start_server(hub, http, ann, alpha)

        # the researcher opens the server through the proxy: the OAuth round trip to the hub API
        # (from inside the container, through the firewall) works and JupyterLab answers
        r = http.get(f"{hub.url}/user/{ann.username}/{alpha}/lab", timeout=60)
        assert r.status_code == 200 and r.url.startswith(f"{hub.url}/user/{ann.username}/{alpha}/lab"), r.url
        assert "JupyterLab" in r.text

        # the home page now offers open and stop for alpha, start for beta
        home = http.get(f"{hub.url}/hub/home", timeout=30).text
        assert f'href="/user/{ann.username}/{alpha}/"' in home and f'data-project="{alpha}">stop' in home
        assert f"/hub/spawn/{ann.username}/{beta}" in home

        attrs = box_a.attrs
        hc = attrs["HostConfig"]
        data = _mount(attrs, "/data")
        work = _mount(attrs, "/home/jovyan/work")
        ws_alpha = workspace(enclave_env.state_dir, alpha, ann.username)
        assert data["Type"] == "bind" and data["RW"] is False and data["Source"].endswith(f"/data/{alpha}")
        assert work["Type"] == "bind" and work["RW"] is True and work["Source"] == str(ws_alpha.resolve())
        assert len(attrs["Mounts"]) == 2, attrs["Mounts"]  # nothing else from the host
        assert hc["NetworkMode"] == f"{site.spawner['network_prefix']}{alpha}"
        assert list(attrs["NetworkSettings"]["Networks"]) == [hc["NetworkMode"]]
        assert hc["CapDrop"] == ["ALL"] and not hc["CapAdd"]
        assert hc["SecurityOpt"] == ["no-new-privileges", seccomp.security_opt()]  # Docker's default minus ptrace
        assert hc["ReadonlyRootfs"] is True and hc["Privileged"] is False
        assert hc["PidsLimit"] == 256
        assert hc["Memory"] == 768 * 1024**2 and hc["NanoCpus"] == 1_000_000_000
        assert attrs["Config"]["User"] == "1000:100"
        assert not hc["Devices"] and hc["PidMode"] == "" and hc["IpcMode"] == "private"
        assert hc["AutoRemove"] is True

        net = site.docker.networks.get(hc["NetworkMode"]).attrs
        assert net["Internal"] is True
        assert net["Options"]["com.docker.network.bridge.enable_icc"] == "false"
        assert net["Options"]["com.docker.network.bridge.name"].startswith(site.spawner["bridge_prefix"])

        # inside: not root, /data cannot be written, the root filesystem is read-only, work/ is writable
        assert box_a.exec_run(["id", "-u"]).output.decode().strip() == "1000"
        assert box_a.exec_run(["cat", "/data/cohort.csv"]).output.decode().startswith("id,age")
        code, out = box_a.exec_run(["sh", "-c", "echo x > /data/leak.csv"])
        assert code != 0 and b"Read-only file system" in out, out
        code, out = box_a.exec_run(["sh", "-c", "echo x > /usr/local/evil"])
        assert code != 0 and b"Read-only file system" in out, out
        code, _ = box_a.exec_run(["sh", "-c", "echo 'alpha results' > /home/jovyan/work/notes.txt"])
        assert code == 0
        assert (ws_alpha / "notes.txt").read_text() == "alpha results\n"
        assert ws_alpha.stat().st_uid == 1000 and ws_alpha.stat().st_mode & 0o777 == 0o700
        code, out = box_a.exec_run(["sh", "-c", "grep CapEff /proc/self/status"])
        assert out.split()[-1] == b"0000000000000000", out  # no capability at all

        # the same person in another project: a different workspace, nothing from alpha
        box_b = site.start_server(hub, http, ann, beta)
        assert box_b.id != box_a.id
        # only the (empty) folders packages install into (hub.packages.container), no file at all
        assert box_b.exec_run(["ls", "-A", "/home/jovyan/work"]).output == b".R\n.local\n"
        assert box_b.exec_run(["find", "/home/jovyan/work", "-type", "f"]).output == b""
        assert box_b.exec_run(["cat", "/data/../home/jovyan/work/notes.txt"]).exit_code != 0
        assert _mount(box_b.attrs, "/data")["Source"].endswith(f"/data/{beta}")

        # stopping removes the container (a new start gets the current settings)
        r = http.delete(f"{hub.url}/hub/api/users/{ann.username}/servers/{alpha}", timeout=60)
        assert r.status_code in (202, 204), r.text
        for _ in range(100):
            if not site.docker.containers.list(all=True, filters={"id": box_a.id}):
                break
            import time

            time.sleep(0.2)
        assert not site.docker.containers.list(all=True, filters={"id": box_a.id})

    with db.transaction(enclave_env.db_url) as s:
        actions = [(e.action, e.target) for e in s.query(AuditEvent).filter(AuditEvent.actor == ann.username)]
        assert ("notebook.start", alpha) in actions and ("notebook.start", beta) in actions
        assert ("notebook.stop", alpha) in actions
        assert audit.verify(s).ok
