"""A hostile insider's attempts on the least-privilege rules, each through a path a person really has.

Real hub, real containers, real tokens and cookies: an admin's browser session, a researcher's browser
session, the notebook server's own API token, and code run in a kernel of the attacker's own server
(JupyterLab's path: REST to start the kernel, a cell over its websocket). Every attack must be
refused; a test fails if one succeeds. docs/security.md lists each threat with the test that covers it.
"""

from __future__ import annotations

import json
import time

import pytest
import requests

from enclave import audit, db
from enclave.models import AuditEvent

from tests.support.channels import open_server
from tests.support.kernel import run_cell

pytestmark = [pytest.mark.integration, pytest.mark.security]


def _events(env, action: str) -> list[AuditEvent]:
    with db.transaction(env.db_url) as s:
        assert audit.verify(s).ok
        rows = s.query(AuditEvent).filter_by(action=action).all()
        s.expunge_all()
        return rows


# -- roles: an admin administers and never reaches data; nobody mints tokens --------------------------

def test_admin_and_researchers_reach_only_what_their_role_allows(site, enclave_env):
    ann, bob = site.user("ann"), site.user("bob")
    ada = site.user("ada", role="admin")
    alpha = site.project("a", members=[ann, bob])
    beta = site.project("b", members=[ann])
    with site.hub() as hub:
        http_ann, http_bob, http_ada = (site.login(hub, u) for u in (ann, bob, ada))
        site.start_server(hub, http_ann, ann, alpha)
        server, _ = open_server(hub, http_ann, ann, alpha)
        own = http_ann.get(f"{server}/api/contents", timeout=60)
        assert own.status_code == 200 and own.json()["type"] == "directory"  # the control: the owner gets in

        for who, http in (("admin", http_ada), ("another member", http_bob)):
            # start someone else's server in another project
            r = http.post(f"{hub.url}/hub/api/users/{ann.username}/servers/{beta}", timeout=60)
            assert r.status_code in (403, 404), (who, r.status_code, r.text[:300])
            # open a running server of someone else: the server's login through the hub, then its
            # workspace listing, a kernel
            r = http.get(f"{server}/lab", timeout=60)
            assert r.status_code == 403 and not r.url.startswith(server), (who, r.status_code, r.url)
            r = http.get(f"{server}/api/contents", timeout=60)
            assert r.status_code == 403 and '"type": "directory"' not in r.text, (who, r.status_code, r.url)
            r = http.post(f"{server}/api/kernels", json={"name": "python3"}, timeout=60)
            assert r.status_code in (403, 405), (who, r.status_code, r.url)
            # stop it, or mint a token for its owner
            r = http.delete(f"{hub.url}/hub/api/users/{ann.username}/servers/{alpha}", timeout=60)
            assert r.status_code in (403, 404), (who, r.status_code)
            r = http.post(f"{hub.url}/hub/api/users/{ann.username}/tokens", json={}, timeout=60)
            assert r.status_code in (403, 404), (who, r.status_code)
        assert site.docker.containers.list(filters={"label": [f"org.enclave.project={beta}"]}) == []
        assert site.container(ann, alpha).status == "running"

        # nobody mints an API token for themselves: a token would skip the second factor for ever
        for who, user, http in (("researcher", ann, http_ann), ("admin", ada, http_ada)):
            r = http.post(f"{hub.url}/hub/api/users/{user.username}/tokens", json={"note": "forever"}, timeout=60)
            assert r.status_code == 403, (who, r.status_code, r.text[:300])

        # what an admin does have: the list of people and who runs what; and is no JupyterHub admin
        listed = http_ada.get(f"{hub.url}/hub/api/users", timeout=60)
        assert listed.status_code == 200 and ann.username in {u["name"] for u in listed.json()}
        me = http_ada.get(f"{hub.url}/hub/api/user", timeout=60).json()
        assert me["admin"] is False and me["groups"] == ["admin"]
        assert not {"admin:servers", "access:servers", "tokens", "admin:users"} & set(me.get("scopes", []))

        # the admin pages: the admin gets in through the hub's OAuth; the hub refuses a researcher
        for _ in range(30):  # the hub starts its managed services in the background
            r = http_ada.get(f"{hub.url}/services/admin/people", timeout=60)
            if r.status_code not in (502, 503):
                break
            time.sleep(1)
        assert r.status_code == 200 and 'id="people"' in r.text and ann.username in r.text
        r = http_ann.get(f"{hub.url}/services/admin/people", timeout=60)
        assert r.status_code == 403 and 'id="people"' not in r.text
        r = http_ann.post(f"{hub.url}/services/admin/people/{bob.username}/disable", timeout=60)
        assert r.status_code in (401, 403)

    starts = _events(enclave_env, "notebook.start")
    assert [(e.actor, e.target) for e in starts] == [(ann.username, alpha)]


# -- ending access ends sessions, tokens and servers at once --------------------------------------------

def _hub_user(hub, http) -> int:
    return http.get(f"{hub.url}/hub/api/user", timeout=30).status_code


def _token_status(hub, token: str) -> int:
    return requests.get(f"http://127.0.0.1:{hub.api_port}/hub/api/user",
                        headers={"Authorization": f"token {token}"}, timeout=30).status_code


def test_disable_lockout_mfa_reset_and_removal_end_every_session_token_and_server(site, enclave_env, cli):
    dis, mfa, rm, lock = (site.user(n) for n in ("dis", "mfa", "rm", "lock"))
    other = site.user("other")
    alpha = site.project("a", members=[dis, mfa, rm, lock, other])
    with site.hub() as hub:
        live = {}
        for u in (dis, mfa, rm, lock, other):
            http = site.login(hub, u)
            box = site.start_server(hub, http, u, alpha)
            open_server(hub, http, u, alpha)  # the server's OAuth token for this browser session
            server_token = box.exec_run(["printenv", "JUPYTERHUB_API_TOKEN"]).output.decode().strip()
            assert _hub_user(hub, http) == 200 and _token_status(hub, server_token) == 200
            live[u.username] = (http, server_token)

        assert cli("user", "disable", dis.username)[0] == 0
        assert cli("user", "reset-mfa", mfa.username)[0] == 0
        code, out, err = cli("project", "remove-member", alpha, rm.username)
        assert code == 0 and f"ended every session of '{rm.username}'" in out, out + err
        for _ in range(enclave_env.settings.auth.lockout_threshold):  # someone guessing lock's password
            hub.login(requests.Session(), lock, otp="000000")

        for u in (dis, mfa, rm, lock):
            http, server_token = live[u.username]
            assert _hub_user(hub, http) == 403, f"{u.username}: the hub cookie still works"
            assert _token_status(hub, server_token) == 403, f"{u.username}: the server's token still works"
            r = http.get(f"{hub.url}/user/{u.username}/{alpha}/api/contents", timeout=60)
            assert '"type": "directory"' not in r.text, f"{u.username}: the server still answers"
            deadline = time.monotonic() + 30
            while site.docker.containers.list(filters={"label": [f"org.enclave.project={alpha}",
                                                                  f"org.enclave.user={u.username}"]}):
                assert time.monotonic() < deadline, f"{u.username}: server still running"
                time.sleep(0.5)
        http, server_token = live[other.username]  # the control: a colleague's session goes on
        assert _hub_user(hub, http) == 200 and _token_status(hub, server_token) == 200

    ended = {e.target: (e.actor, json.loads(e.detail)) for e in _events(enclave_env, "account.sessions_ended")}
    assert set(ended) == {dis.username, mfa.username, rm.username, lock.username}
    assert ended[lock.username][0] == "system:lockout"
    assert {ended[u.username][1]["reason"] for u in (dis, mfa, rm, lock)} == {
        "account_disabled", "mfa_reset", "not_member", "account_locked"}
    # (how many tokens were left to delete depends on what the server's stop already revoked)
    assert all(isinstance(detail["tokens"], int) and detail["cookies"] == "all" for _, detail in ended.values())


# -- code in the researcher's own kernel -----------------------------------------------------------------

TAKE_OVER = r"""
import ctypes, errno, os
libc = ctypes.CDLL(None, use_errno=True)
server = os.getppid()  # the notebook server started this kernel
def outcome(f):
    try:
        f(); return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
print("attach", "ok" if libc.ptrace(16, server, 0, 0) == 0 else errno.errorcode[ctypes.get_errno()])
print("mem", outcome(lambda: open(f"/proc/{server}/mem", "r+b").close()))
print("environ", outcome(lambda: open(f"/proc/{server}/environ", "rb").read()))
print("self-mem", outcome(lambda: open("/proc/self/mem", "rb").close()))
"""

LINKS = r"""
import os
w = "/home/jovyan/work"
os.symlink("/data/cohort.csv", f"{w}/x.csv")
os.symlink("/data", f"{w}/d")
os.symlink("/tmp", f"{w}/t")
open(f"{w}/notes.txt", "w").write("mine")
os.symlink("notes.txt", f"{w}/inner.txt")
print("made")
"""

RESOLVE = r"""
import socket, sys
for name in sys.argv[1:]:
    try:
        print(name, socket.gethostbyname(name))
    except OSError:
        print(name, "unknown")
"""


def test_kernel_code_cannot_take_over_the_server_follow_links_or_learn_who_works_here(site, enclave_env):
    ann, cat = site.user("ann"), site.user("cat")
    alpha = site.project("a", members=[ann, cat])
    with site.hub() as hub:
        http = site.login(hub, ann)
        box = site.start_server(hub, http, ann, alpha)
        neighbour = site.start_server(hub, site.login(hub, cat), cat, alpha)
        server, xsrf = open_server(hub, http, ann, alpha)

        # ptrace and the server's memory: refused (seccomp, non-dumpable server); the kernel's own: fine
        out = run_cell(server, http, "python3", TAKE_OVER, xsrf)
        assert "attach EPERM" in out and "mem EACCES" in out and "environ EACCES" in out, out
        assert "self-mem ok" in out, out

        # links out of the workspace: refused when opened or written through, left out of listings
        assert "made" in run_cell(server, http, "python3", LINKS, xsrf)
        api = f"{server}/api/contents"
        for path in ("x.csv", "d/cohort.csv", "d"):
            r = http.get(f"{api}/{path}", params={"content": "1", "format": "base64"}, timeout=60)
            assert r.status_code == 403 and "outside your workspace" in r.json()["message"], (path, r.status_code)
            assert "1,40" not in r.text and "aWQsYWdl" not in r.text  # the file, as text or base64
        r = http.put(f"{api}/t/planted.txt", data=json.dumps({"type": "file", "format": "text", "content": "x"}),
                     headers={"X-XSRFToken": xsrf}, timeout=60)
        assert r.status_code == 403, (r.status_code, r.text[:300])
        assert box.exec_run(["ls", "/tmp/planted.txt"]).exit_code != 0
        names = {e["name"] for e in http.get(api, timeout=60).json()["content"]}
        assert {"notes.txt", "inner.txt"} <= names and not {"x.csv", "d", "t"} & names, names
        inner = http.get(f"{api}/inner.txt", params={"content": "1"}, timeout=60)
        assert inner.status_code == 200 and inner.json()["content"] == "mine"  # a link inside still works
        deadline = time.monotonic() + 30
        while not [e for e in _events(enclave_env, "notebook.download_refused")
                   if json.loads(e.detail)["kind"] == "link_outside"]:
            assert time.monotonic() < deadline, "the refused link never reached the audit log"
            time.sleep(0.5)

        # Docker's DNS: the neighbour's container name says nothing about who or what
        neighbour.reload()
        assert cat.username not in neighbour.name and alpha not in neighbour.name
        prefix = site.spawner["network_prefix"].rstrip("-")
        guesses = [cat.username, f"{prefix}-{cat.username}--{alpha}", f"{prefix}-{cat.username}"]
        code, out = box.exec_run(["python3", "-c", RESOLVE, *guesses])
        assert out.decode().count("unknown") == len(guesses), out.decode()
