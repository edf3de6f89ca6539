"""The image's own refusals, the second layer, reach the enclave's audit log (real hub, real container).

The host guard refuses downloads before the server sees them (tests/security/test_host_guard.py); here
it is off, so what the image does on its own, and its report endpoint, are tested as they stand.

One hub and one spawned server for the whole module (a spawn costs seconds): a researcher's refused
`/files/`, nbconvert download, oversized read and oversized upload are each still refused as before,
and the container's report lands in `enclave audit export` as `notebook.download_refused` under the
researcher and the project. Then the endpoint is attacked the way a researcher who controls the
container could: a body naming someone else (recorded under the token's own user and project), no
token, a wrong token, the user's own non-server token, the browser session, malformed bodies (all
refused, nothing written), and a loop (capped, with one summary event).
"""

from __future__ import annotations

import base64
import json
import os
import time

import pytest
import requests

from enclave.paths import workspace

from hub.services.refusal_reports import ACTION, PER_WINDOW

pytestmark = pytest.mark.integration

MIB = 1024 * 1024

# Run inside the notebook container: POST a forged report the way the policy reports, print the status.
FORGE = r"""
import json, os, urllib.request, urllib.error
body = {"kind": "files", "path": "forged.csv", "user": "mallory", "actor": "mallory",
        "project": "someone-elses-study", "target": "someone-elses-study"}
req = urllib.request.Request(os.environ["JUPYTERHUB_API_URL"].rstrip("/") + "/enclave/refusals",
                             data=json.dumps(body).encode(), method="POST",
                             headers={"Authorization": "token " + os.environ["JUPYTERHUB_API_TOKEN"],
                                      "Content-Type": "application/json"})
try:
    print(urllib.request.urlopen(req, timeout=10).status)
except urllib.error.HTTPError as e:
    print(e.code)
"""


def _events(cli) -> list[dict]:
    code, out, err = cli("audit", "export")
    assert code == 0, err
    return [json.loads(line) for line in out.splitlines() if line.strip()]


def _refusals(cli) -> list[dict]:
    return [e for e in _events(cli) if e["action"] == ACTION]


def _wait_for_refusals(cli, n: int, timeout: float = 30) -> list[dict]:
    deadline = time.monotonic() + timeout
    found = _refusals(cli)
    while len(found) < n and time.monotonic() < deadline:
        time.sleep(0.3)
        found = _refusals(cli)
    return found


def _own_file(path, data: bytes) -> None:
    path.write_bytes(data)
    os.chown(path, 1000, 100)


def test_refused_downloads_are_audited_under_the_servers_own_user_and_project(site, enclave_env, cli):
    site.guard["enabled"] = False  # the second layer on its own
    ann = site.user("ann")
    study = site.project("a", members=[ann])
    with site.hub() as hub:
        http = site.login(hub, ann)
        box = site.start_server(hub, http, ann, study)
        server = f"{hub.url}/user/{ann.username}/{study}"
        lab = http.get(f"{server}/lab", timeout=60)  # the server's own login (OAuth) for this session
        assert lab.status_code == 200, lab.status_code
        ws = workspace(enclave_env.state_dir, study, ann.username)
        _own_file(ws / "results.csv", b"id,age\n1,40\n")
        _own_file(ws / "big.bin", os.urandom(6 * MIB))

        # -- what the researcher gets is unchanged ------------------------------------------------
        r = http.get(f"{server}/files/results.csv", timeout=30)
        assert r.status_code == 403 and "Ask for a release" in r.text, (r.status_code, r.text[:300])
        r = http.get(f"{server}/nbconvert/html/analysis.ipynb?download=true", timeout=30)
        assert r.status_code == 403 and "Ask for a release" in r.text, (r.status_code, r.text[:300])
        r = http.get(f"{server}/api/contents/big.bin", timeout=30)
        assert r.status_code == 413, r.status_code
        xsrf = http.cookies.get("_xsrf", path=f"/user/{ann.username}/{study}/")
        upload = {"type": "file", "format": "base64", "content": base64.b64encode(os.urandom(2 * MIB)).decode()}
        r = http.put(f"{server}/api/contents/upload.bin", data=json.dumps(upload),
                     headers={"X-XSRFToken": xsrf}, timeout=60)
        assert r.status_code == 413, (r.status_code, r.text[:300])
        assert not (ws / "upload.bin").exists()

        # -- and each refusal is in the audit log, under ann and the project ---------------------
        seen = _wait_for_refusals(cli, 4)
        assert {(e["actor"], e["target"], e["detail"]["kind"], e["detail"]["path"].strip("/")) for e in seen} == {
            (ann.username, study, "files", "results.csv"),
            (ann.username, study, "nbconvert", "analysis.ipynb"),
            (ann.username, study, "read_too_large", "big.bin"),
            (ann.username, study, "write_too_large", "upload.bin"),
        }, seen
        by_kind = {e["detail"]["kind"]: e["detail"] for e in seen}
        assert by_kind["nbconvert"]["format"] == "html"
        assert by_kind["read_too_large"]["size"] == 6 * MIB
        assert by_kind["write_too_large"]["size"] >= 2 * MIB

        # -- a forged body from inside the container: recorded under the token's user and project -
        code, out = box.exec_run(["python3", "-c", FORGE])
        assert (code, out.decode().strip()) == (0, "201"), out
        forged = [e for e in _refusals(cli) if e["detail"]["path"] == "forged.csv"]
        assert [(e["actor"], e["target"], e["detail"]) for e in forged] == [
            (ann.username, study, {"kind": "files", "path": "forged.csv"})
        ]

        # -- refused, and nothing written --------------------------------------------------------
        endpoint = f"http://127.0.0.1:{hub.api_port}/hub/api/enclave/refusals"
        server_token = box.exec_run(["printenv", "JUPYTERHUB_API_TOKEN"]).output.decode().strip()
        made = http.post(f"{hub.url}/hub/api/users/{ann.username}/tokens", json={"note": f"Server at /user/{ann.username}/{study}/"},
                         timeout=30)
        assert made.status_code == 403, made.text  # people mint no API tokens (hub.auth.roles)
        report = {"kind": "files", "path": "sneaky.csv"}
        before = _events(cli)
        for headers, what in (
            ({}, "no token"),
            ({"Authorization": "token 0123456789abcdef0123456789abcdef"}, "unknown token"),
        ):
            r = requests.post(endpoint, json=report, headers=headers, timeout=30)
            assert r.status_code == 403, (what, r.status_code, r.text)
        r = http.post(f"{hub.url}/hub/api/enclave/refusals", json=report, timeout=30)  # the browser session
        assert r.status_code == 403, ("browser session", r.status_code, r.text)
        auth = {"Authorization": f"token {server_token}"}
        for data, what in (
            (b"not json", "not JSON"),
            (json.dumps({"kind": "shell", "path": "x"}).encode(), "unknown kind"),
            (json.dumps({"kind": "files", "path": "x" * 2000}).encode(), "path too long"),
            (json.dumps({"kind": "files", "path": "x" * 5000}).encode(), "body too long"),
            (json.dumps({"kind": "files", "path": "a\nb"}).encode(), "control character"),
            (json.dumps({"kind": "read_too_large", "path": "x", "size": -5}).encode(), "negative size"),
        ):
            r = requests.post(endpoint, data=data, headers={**auth, "Content-Type": "application/json"}, timeout=30)
            assert r.status_code == 400, (what, r.status_code, r.text)
            assert "message" in r.json()
        time.sleep(1)
        assert _events(cli) == before

        # -- a loop is capped: PER_WINDOW events per window, then one summary ---------------------
        first = requests.post(endpoint, json={"kind": "files", "path": "loop-start.csv"}, headers=auth, timeout=30)
        assert first.status_code in (201, 429), first.text
        if first.status_code == 429 or first.json()["resets_in"] < 20:
            time.sleep(first.json()["resets_in"] + 0.5)  # a fresh window, so the count below is exact
            first = requests.post(endpoint, json={"kind": "files", "path": "loop-start.csv"}, headers=auth, timeout=30)
            assert first.status_code == 201 and first.json()["remaining"] == PER_WINDOW - 1, first.text
        remaining = first.json()["remaining"]
        codes = [
            requests.post(endpoint, json={"kind": "files", "path": f"loop-{i}.csv"}, headers=auth, timeout=30).status_code
            for i in range(remaining + 10)
        ]
        assert codes == [201] * remaining + [429] * 10, codes

        after = _refusals(cli)
        loop_paths = [e["detail"].get("path") for e in after if e["detail"].get("path", "").startswith("loop-")]
        assert loop_paths.count("loop-start.csv") >= 1
        assert sorted(p for p in loop_paths if p != "loop-start.csv") == sorted(f"loop-{i}.csv" for i in range(remaining))
        summaries = [e for e in after if e["detail"]["kind"] == "suppressed"]
        assert len(summaries) == 1 and summaries[0]["actor"] == ann.username and summaries[0]["target"] == study
        assert summaries[0]["detail"]["limit"] == PER_WINDOW
        assert summaries[0]["detail"]["first_dropped"] == {"kind": "files", "path": f"loop-{remaining}.csv"}

        # the researcher's next refused download is still refused at once (the report is not awaited)
        r = http.get(f"{server}/files/results.csv", timeout=30)
        assert r.status_code == 403

    code, out, err = cli("audit", "verify")
    assert code == 0 and "chain verified" in out, (out, err)
