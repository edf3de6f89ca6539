"""The egress review service through a REAL JupyterHub: people log in with password + TOTP at the hub,
reach /services/egress/ through the hub's OAuth, and use the JSON API with their session cookies.

One hub per module (starting a hub takes seconds): researcher ann (project cardio), researcher bob
(project other), stewards sam and sue. Each test makes its own files and requests.
"""

from __future__ import annotations

import hashlib
import os
import types

import pytest
import requests

from enclave import audit, db, projects

from tests.support.env import make_env
from tests.support.hub import RunningHub
from tests.support.postgres import free_port
from tests.support.users import enrolled_user

SERVICE = "/services/egress"
SAFE_CSV = b"region,count\nnorth,120\nsouth,245\neast,310\n"
SMALL_CELLS_CSV = b"region,count\nnorth,3\nsouth,245\neast,310\n"


def _png(width=4, height=4) -> bytes:
    """A small valid RGB PNG, built by hand (no imaging library needed)."""
    import struct
    import zlib

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    raw = b"".join(b"\x00" + b"\xc0\x30\x30" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


PNG = _png()


class ServiceUser:
    """A requests.Session logged in at the hub and through OAuth at the review service."""

    def __init__(self, hub: RunningHub, user, http: requests.Session | None = None):
        """`http`: a session already logged in at the hub (a second login would replay the TOTP code)."""
        self.hub, self.user = hub, user
        self.http = http or requests.Session()
        if http is None:
            r = hub.login(self.http, user)
            assert r.status_code == 200 and "/hub/" in r.url, (r.status_code, r.url)
        r = self.http.get(hub.url + SERVICE + "/", timeout=30)  # OAuth dance, no consent page
        assert r.status_code == 200 and r.url == hub.url + SERVICE + "/", (r.status_code, r.url, r.text[-500:])
        me = self.get("/api/me").json()
        assert me["name"] == user.username
        self.csrf = me["csrf"]
        self.role = me["role"]

    def get(self, path, **kw):
        return self.http.get(self.hub.url + SERVICE + path, timeout=60, **kw)

    def post(self, path, json=None, csrf=True, **kw):
        headers = {"X-CSRF-Token": self.csrf} if csrf else {}
        return self.http.post(self.hub.url + SERVICE + path, json=json, headers=headers, timeout=120, **kw)

    def submit(self, paths, project="cardio", context="counts of admissions by region",
               controls="counts under 10 suppressed; rounded to 5"):
        return self.post("/api/requests", {"project": project, "groups": [
            {"name": "tables", "context": context, "controls": controls, "paths": list(paths)}]})

    def decide(self, file_id, decision="approve", comment="", override_reason=""):
        return self.post(f"/api/files/{file_id}/reviews", {"decision": decision, "comment": comment,
                                                            "override_reason": override_reason})


def build_world(base, extra: dict | None = None):
    """Settings file, database, people, projects and ann's workspace; returns a namespace."""
    settings = {"egress": {"port": free_port(), "max_file_mib": 1}}
    for k, v in (extra or {}).items():
        settings.setdefault(k, {}).update(v)
    env = make_env(base, settings=settings)
    s, state = env.settings, env.state_dir
    people = {name: enrolled_user(s, name, role) for name, role in
              [("ann", "researcher"), ("bob", "researcher"), ("sam", "steward"), ("sue", "steward")]}
    (base / "data").mkdir()
    with db.transaction(s.database_url) as session:
        projects.create(session, "test", "cardio", str(base / "data"), min_cell_count=10)
        projects.create(session, "test", "other", str(base / "data"))
        projects.add_member(session, "test", "cardio", "ann")
        projects.add_member(session, "test", "other", "bob")
    ws = state / "workspaces" / "cardio" / "ann"
    ws.mkdir(parents=True)
    return types.SimpleNamespace(env=env, settings=s, people=people, ws=ws, base=base)


def start_hub(world) -> RunningHub:
    hub = RunningHub(world.env)
    hub.start()
    try:
        hub.wait_until_answers(SERVICE + "/api/workflow")  # the hub answers before its managed service does
    except AssertionError:
        hub.stop()
        hub.dump_logs()
        raise
    return hub


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    w = build_world(tmp_path_factory.mktemp("egress"))
    hub = start_hub(w)
    try:
        w.hub = hub
        w.ann, w.bob = ServiceUser(hub, w.people["ann"]), ServiceUser(hub, w.people["bob"])
        w.sam, w.sue = ServiceUser(hub, w.people["sam"]), ServiceUser(hub, w.people["sue"])
        yield w
    finally:
        hub.stop()
        hub.dump_logs()


def write(world, rel, data: bytes):
    p = world.ws / rel
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_bytes(data)
    return p


def _files(view):
    return {f["path"]: f for g in view["groups"] for f in g["files"]}


def test_whole_flow_releases_exactly_the_submitted_bytes(world):
    write(world, "flow/table.csv", SAFE_CSV)
    write(world, "flow/figure.png", PNG)
    listing = world.ann.get("/api/projects/cardio/workspace", params={"path": "flow"}).json()
    assert {e["name"] for e in listing["entries"]} == {"table.csv", "figure.png"}
    r = world.ann.submit(["flow/table.csv", "flow/figure.png"])
    assert r.status_code == 201, r.text
    view = r.json()
    rid = view["id"]
    assert view["status"] == "submitted" and view["waiting_on"] == "steward"
    files = _files(view)
    assert files["flow/table.csv"]["sha256"] == hashlib.sha256(SAFE_CSV).hexdigest()
    assert files["flow/figure.png"]["check_status"] == "review"  # images: a person must look
    # the researcher edits the file after submitting: that is not what gets released
    write(world, "flow/table.csv", SMALL_CELLS_CSV)

    queue = world.sam.get("/api/queue", params={"status": "submitted", "project": "cardio"}).json()
    assert rid in [q["id"] for q in queue["requests"]]
    assert world.sam.get("/api/queue", params={"project": "other"}).json()["total"] == 0
    page = world.sam.get(f"/requests/{rid}")
    assert page.status_code == 200 and 'class="preview"' in page.text and f"/files/{files['flow/figure.png']['id']}/raw" in page.text
    raw = world.sam.get(f"/files/{files['flow/figure.png']['id']}/raw")
    assert raw.content == PNG and "sandbox" in raw.headers["content-security-policy"]

    for f in files.values():
        assert world.sam.decide(f["id"]).status_code == 200
    mid = world.sue.get(f"/api/requests/{rid}").json()
    assert mid["status"] == "under_review"
    assert all(f["reviews"] is None for f in _files(mid).values())  # independent review: not yet visible
    for f in files.values():
        r = world.sue.decide(f["id"])
        assert r.status_code == 200, r.text
    final = world.ann.get(f"/api/requests/{rid}").json()
    assert final["status"] == "released"
    assert {len(f["reviews"]) for f in _files(final).values()} == {2}

    d = world.ann.get(f"/api/files/{files['flow/table.csv']['id']}/download")
    assert d.status_code == 200 and d.content == SAFE_CSV
    assert d.headers["x-content-sha256"] == hashlib.sha256(SAFE_CSV).hexdigest()
    assert "attachment" in d.headers["content-disposition"]
    for other in (world.sam, world.bob):
        assert other.get(f"/api/files/{files['flow/table.csv']['id']}/download").status_code == 403
    with db.transaction(world.settings.database_url) as s:
        assert audit.verify(s).ok
        actions = [e["action"] for e in audit.iter_events(s) if e["target"] == f"egress-request:{rid}"]
    assert actions.count("egress.review") == 4 and actions[-2:] == ["egress.release", "egress.download"]


def test_changes_requested_new_version_then_release(world):
    write(world, "cr/t.csv", SMALL_CELLS_CSV)
    view = world.ann.submit(["cr/t.csv"]).json()
    [f] = _files(view).values()
    assert f["check_status"] == "fail"
    page = world.sam.get(f"/requests/{view['id']}").text
    assert page.count('class="flagged"') == 1 and "small_cells" in page  # the cell the checks point at
    r = world.sam.decide(f["id"], "approve")
    assert r.status_code == 400 and "override reason" in r.json()["message"]
    assert world.sam.decide(f["id"], "request_changes", comment="north has 3: suppress it").status_code == 200
    assert world.sue.decide(f["id"], "request_changes", comment="agree").status_code == 200
    back = world.ann.get(f"/api/requests/{view['id']}").json()
    assert back["status"] == "changes_requested"
    assert "suppress it" in str(_files(back)["cr/t.csv"]["reviews"])
    write(world, "cr/t.csv", SAFE_CSV)
    new = world.ann.post(f"/api/files/{f['id']}/replace").json()
    assert new["version"] == 2 and new["decisions"] == 0
    assert world.ann.post(f"/api/requests/{view['id']}/resubmit").json()["status"] == "submitted"
    world.sam.decide(new["id"])
    world.sue.decide(new["id"])
    assert world.ann.get(f"/api/requests/{view['id']}").json()["status"] == "released"
    assert world.ann.get(f"/api/files/{new['id']}/download").content == SAFE_CSV
    assert world.ann.get(f"/api/files/{f['id']}/download").status_code == 403  # old version never leaves


@pytest.mark.parametrize("who, method, path, body, status", [
    ("sam", "post", "/api/requests", {"project": "cardio", "groups": [
        {"name": "g", "context": "c", "controls": "k", "paths": ["p/t.csv"]}]}, 403),
    ("ann", "get", "/api/queue", None, 403),
    ("bob", "get", "/api/projects/cardio/workspace", None, 403),
    ("bob", "post", "/api/requests", {"project": "cardio", "groups": [
        {"name": "g", "context": "c", "controls": "k", "paths": ["p/t.csv"]}]}, 403),
    ("bob", "get", "/api/requests/{rid}", None, 403),
    ("bob", "post", "/api/requests/{rid}/withdraw", None, 403),
    ("ann", "post", "/api/files/{fid}/reviews", {"decision": "approve"}, 403),
    ("bob", "post", "/api/files/{fid}/reviews", {"decision": "approve"}, 403),
    ("sam", "post", "/api/files/{fid}/replace", None, 403),
    ("ann", "get", "/api/files/{fid}/download", None, 403),
    ("ann", "get", "/files/{fid}/raw", None, 403),
], ids=["steward-submits", "researcher-queue", "other-project-browse", "other-project-submit",
        "other-project-view", "other-withdraws", "requester-reviews", "researcher-reviews",
        "steward-replaces", "download-before-release", "researcher-raw-preview"])
def test_wrong_person_is_refused(world, who, method, path, body, status):
    write(world, "p/t.csv", SAFE_CSV)
    view = world.ann.submit(["p/t.csv"]).json()
    fid = _files(view)["p/t.csv"]["id"]
    person = getattr(world, who)
    url = path.format(rid=view["id"], fid=fid)
    r = person.get(url) if method == "get" else person.post(url, json=body)
    assert r.status_code == status, r.text
    if url.startswith("/api/"):
        assert r.json()["message"]
    after = world.ann.get(f"/api/requests/{view['id']}").json()
    assert after["status"] == "submitted" and _files(after)["p/t.csv"]["decisions"] == 0


@pytest.mark.parametrize("setup, path, status, message", [
    (None, "../../other/bob/x.csv", 400, "leaves"),
    (None, "%2e%2e/%2e%2e/x.csv", 400, "leaves"),
    (None, "/etc/passwd", 400, "absolute"),
    ("symlink", "bad/link.csv", 403, "link"),
    ("symlink-dir", "bad/up/secret.csv", 403, "link"),
    ("hardlink", "bad/hard.csv", 403, "hard links"),
    ("fifo", "bad/pipe.csv", 403, "not a regular file"),
    ("oversize", "bad/big.csv", 400, "allowed per file"),
], ids=["traversal", "encoded-traversal", "absolute", "symlink", "symlinked-folder", "hard-link", "fifo",
        "oversize"])
def test_unsafe_files_are_refused(world, setup, path, status, message):
    outside = world.base / "outside"
    outside.mkdir(exist_ok=True)
    (outside / "secret.csv").write_bytes(b"id,dob\n1,1970-01-01\n")
    bad = world.ws / "bad"
    bad.mkdir(exist_ok=True)
    # Only paths this test plants are touched: `world.ws / "/etc/passwd"` would be the host's file.
    target = world.ws / path
    if setup is not None:
        assert world.ws in target.parents, target
        if target.is_symlink() or target.exists():
            target.unlink()
    if setup == "symlink":
        os.symlink(outside / "secret.csv", target)
    elif setup == "symlink-dir":
        if not (bad / "up").is_symlink():
            os.symlink(outside, bad / "up")
    elif setup == "hardlink":
        os.link(outside / "secret.csv", target)
    elif setup == "fifo":
        os.mkfifo(target)
    elif setup == "oversize":
        target.write_bytes(b"a,b\n" + b"1,2\n" * (300 * 1024))  # 1.2 MiB > max_file_mib = 1
    before = world.ann.get("/api/requests").json()["requests"]
    r = world.ann.submit([path])
    assert r.status_code == status, r.text
    assert message in r.json()["message"]
    assert world.ann.get("/api/requests").json()["requests"] == before  # nothing was created


def test_browsing_outside_the_workspace_is_refused(world):
    for p in ("..", "../bob", "%2e%2e"):
        r = world.ann.get("/api/projects/cardio/workspace", params={"path": p})
        assert r.status_code == 400, (p, r.text)


def test_cookie_posts_need_the_csrf_token_and_strangers_need_login(world):
    write(world, "c/t.csv", SAFE_CSV)
    r = world.ann.post("/api/requests", {"project": "cardio", "groups": [
        {"name": "g", "context": "c", "controls": "k", "paths": ["c/t.csv"]}]}, csrf=False)
    assert r.status_code == 403 and r.json()["error"] == "csrf"
    anon = requests.get(world.hub.url + SERVICE + "/api/me", timeout=30)
    assert anon.status_code == 401
    page = requests.get(world.hub.url + SERVICE + "/queue", timeout=30, allow_redirects=True)
    assert page.url.startswith(world.hub.url + "/hub/login")  # sent to the hub's login (with MFA)


def test_tampered_store_gives_refusal_not_bytes(world):
    from egress_review import store

    write(world, "tamper/t.csv", SAFE_CSV)
    view = world.ann.submit(["tamper/t.csv"]).json()
    f = _files(view)["tamper/t.csv"]
    world.sam.decide(f["id"])
    world.sue.decide(f["id"])
    blob = store.blob_path(world.settings.state_dir, f["sha256"])
    blob.chmod(0o644)
    blob.write_bytes(SMALL_CELLS_CSV)
    try:
        r = world.ann.get(f"/api/files/{f['id']}/download")
        assert r.status_code == 409 and r.json()["error"] == "store_tampered"
        assert b"north,3" not in r.content
    finally:
        blob.write_bytes(SAFE_CSV)
        blob.chmod(0o444)


def test_withdraw_and_openapi(world):
    write(world, "w/t.csv", SAFE_CSV)
    view = world.ann.submit(["w/t.csv"]).json()
    assert world.ann.post(f"/api/requests/{view['id']}/withdraw").json()["status"] == "withdrawn"
    r = world.ann.post(f"/api/requests/{view['id']}/withdraw")
    assert r.status_code == 409
    spec = requests.get(world.hub.url + SERVICE + "/api/openapi.json", timeout=30).json()
    assert f"{SERVICE}/api/requests" in spec["paths"] and f"{SERVICE}/api/files/{{file_id}}/reviews" in spec["paths"]


def test_html_pages_submit_and_withdraw_with_csrf(world):
    write(world, "form/t.csv", SAFE_CSV)
    page = world.ann.get("/projects/cardio/browse", params={"path": "form"})
    assert page.status_code == 200 and 'value="form/t.csv"' in page.text
    form = {"_csrf": world.ann.csrf, "project": "cardio", "group_name": "g", "context": "what it shows",
            "controls": "suppressed", "paths": ["form/t.csv"]}
    r = world.ann.http.post(world.hub.url + SERVICE + "/requests", data=form, timeout=60)
    assert r.status_code == 200 and "/requests/" in r.url and "form/t.csv" in r.text
    rid = int(r.url.rstrip("/").rsplit("/", 1)[1])
    # no csrf: an error page, nothing created
    r = world.ann.http.post(world.hub.url + SERVICE + "/requests", data=dict(form, _csrf="x"), timeout=60)
    assert r.status_code == 403 and "reload the page" in r.text
    r = world.ann.http.post(world.hub.url + SERVICE + f"/requests/{rid}/withdraw", data={"_csrf": world.ann.csrf})
    assert r.status_code == 200 and 'id="request-status">withdrawn<' in r.text
    r = world.bob.get(f"/requests/{rid}")
    assert r.status_code == 403 and "not yours" in r.text


def test_checks_use_the_projects_imported_data_through_the_service(world, tmp_path):
    """A project with data imported by the real importer: the service's checks recompute each cell from
    it, catch records with made-up counts (in a workbook, stored without extension), show stewards what
    matched, and check a new table against the project's released ones."""
    import html as html_mod

    import pandas as pd

    from ingest.importer import ImportRequest, import_dataset

    from tests.support.project_data import stays

    s = world.settings
    data_dir = world.base / "registry-data"
    data_dir.mkdir()
    with db.transaction(s.database_url) as session:
        projects.create(session, "test", "registry", str(data_dir), min_cell_count=10)
        projects.add_member(session, "test", "registry", "ann")
    ws = s.state_dir / "workspaces" / "registry" / "ann"
    ws.mkdir(parents=True)
    frame = stays()
    source = tmp_path / "stays.csv"
    frame.to_csv(source, index=False)
    import_dataset(s, "test", ImportRequest(project="registry", source=source, id_columns=["pid"], name="stays"))

    means = frame.groupby(["region", "diagnosis"]).agg(mean_los=("los_days", "mean")).reset_index().round(2)
    means.to_csv(ws / "means.csv", index=False)
    records = frame.iloc[300:330][["age", "sex", "admission_date", "diagnosis", "los_days"]].assign(n=12)
    records.to_excel(ws / "strata.xlsx", index=False)
    r = world.ann.submit(["means.csv", "strata.xlsx"], project="registry")
    assert r.status_code == 201, r.text
    view = r.json()
    files = _files(view)
    assert {f["check_status"] for f in files.values()} == {"fail"}
    rid = view["id"]
    page = world.sam.get(f"/requests/{rid}")
    assert page.status_code == 200
    text = html_mod.unescape(page.text)
    assert "data_small_cells" in text and "compared with dataset 'stays' (4,000 records" in text
    assert "'mean_los' = mean of 'los_days'" in text
    assert "records_in_disguise" in text and "malformed" not in text

    # a table released with one suppressed cell, then its margin: the margin gives the cell back
    detail = (frame[frame.diagnosis != "Z99"].groupby(["region", "sex"]).size().reset_index(name="n"))
    detail["n"] = detail["n"].astype(object)
    detail.loc[0, "n"] = "[c]"
    detail.to_csv(ws / "detail.csv", index=False)
    r = world.ann.submit(["detail.csv"], project="registry", controls="one cell suppressed")
    assert r.status_code == 201, r.text
    [detail_file] = _files(r.json()).values()
    for steward in (world.sam, world.sue):
        assert steward.decide(detail_file["id"]).status_code == 200
    assert world.ann.get(f"/api/requests/{r.json()['id']}").json()["status"] == "released"
    margin = frame[frame.diagnosis != "Z99"].groupby("region").size().reset_index(name="n")
    margin.to_csv(ws / "margin.csv", index=False)
    r = world.ann.submit(["margin.csv"], project="registry")
    [f] = _files(r.json()).values()
    assert f["check_status"] == "fail"
    found = {x["check"]: x for x in f["checks"]["findings"]}
    assert found["differencing"]["cells"] == [[margin.region[0], "n"]]
    assert "'detail.csv'" in found["differencing"]["message"]
