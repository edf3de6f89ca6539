"""The whole journey of issue 8, as a newcomer meets it, in a real headless Chromium.

`enclave demo` sets up project `demo` (synthetic hospital stays), researchers alice and bob and stewards
carol and dave. A real hub (`enclave up` through RunningHub) runs the real notebook image in real,
hardened containers, with the egress review service behind it. Then, only through the browser:

1. alice opens her enrolment link, reads the TOTP key from the page, sets a password, proves a code,
   sees her recovery codes, and logs in with password + TOTP;
2. she starts the demo project from the hub's project list; JupyterLab loads in her container;
3. she creates a notebook and runs a cell in the container's kernel that reads /data with pandas and
   writes an aggregate table and a record-level extract to her workspace;
4. she tries to download the extract from JupyterLab and cannot (no menu item, 403 on /files/; the
   attempt is in the audit log);
5. she asks for release of both files on the egress pages, describing each (one request per file: the
   workflow releases a request only when every file in it is approved, so an extract rejected in the
   same request would hold the table back);
6. stewards carol and dave enrol and log in with their own TOTP, see the extract fail the automated
   checks and reject it, and approve the table;
7. alice downloads the released table: the bytes are exactly those in her workspace at submission;
8. `enclave audit verify` passes and `enclave audit export` shows every step.

A TOTP code is never used twice in one 30 s step for the same person: like a person with a phone, the
test waits for the next code. Numbered screenshots of each step go to artifacts/journey/ (gitignored);
docs/screenshots/ holds three of them for the README (regenerate with JOURNEY_UPDATE_DOCS=1).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import time
from pathlib import Path
from urllib.parse import urlparse

import pyotp
import pytest

from enclave.paths import workspace

from hub.auth.enrolment import qr_svg
from tests.support.spawn import SpawnSite

pytestmark = pytest.mark.e2e

REPO = Path(__file__).resolve().parents[2]
DOCS_SHOTS = REPO / "docs" / "screenshots"
SERVICE = "/services/egress"
PROJECT = "demo"
TABLE = "out/stays_by_diagnosis_sex.csv"
EXTRACT = "out/mi_patients_extract.csv"
NOT_RELEASED = "Downloads are switched off"  # the host guard's refusal (same words as the image's own policy)

# What alice types into her first notebook cell (no indentation: typed text is not re-indented).
CELL = """\
import hashlib, socket
from pathlib import Path
import pandas as pd
stays = pd.read_parquet("/data/hospital_stays.parquet")
Path("out").mkdir(exist_ok=True)
table = stays.groupby(["diagnosis", "sex"]).size().rename("stays").reset_index()
table.to_csv("out/stays_by_diagnosis_sex.csv", index=False)
cols = ["patient_nir", "sex", "age", "admission_date", "diagnosis", "length_of_stay"]
extract = stays.loc[stays.diagnosis == "I21", cols].head(300)
extract.to_csv("out/mi_patients_extract.csv", index=False)
digest = hashlib.sha256(Path("out/stays_by_diagnosis_sex.csv").read_bytes()).hexdigest()
print(f"host={socket.gethostname()} table_rows={len(table)} min_count={table.stays.min()} "
      f"extract_rows={len(extract)} table_sha256={digest}")"""
CELL_RESULT = re.compile(r"host=(\S+) table_rows=(\d+) min_count=(\d+) extract_rows=(\d+) table_sha256=([0-9a-f]{64})")

# docs/screenshots/<name> <- the journey screenshot whose name ends in <step>
DOC_SHOTS = {
    "researcher-projects.png": "researcher-project-list",
    "steward-review.png": "steward-review-extract",
    "release-download.png": "researcher-release-page",
}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


class AuthenticatorApp:
    """The phone app of one person: shows the current code, and a person waits for a fresh one rather
    than typing the same code twice in one 30 s step (the hub refuses a replayed step)."""

    def __init__(self, secret: str):
        self.totp = pyotp.TOTP(secret)
        self.last_step = -1

    def code(self) -> str:
        while (step := int(time.time() // 30)) <= self.last_step:
            time.sleep(30 - time.time() % 30 + 0.2)
        self.last_step = step
        return self.totp.at(step * 30)


class Journey:
    """Numbered screenshots and steps that fail with the step's name and a screenshot of the page."""

    def __init__(self, out: Path):
        self.out = out
        self.n = 0
        self.shots: dict[str, Path] = {}

    def shot(self, page, name: str, full_page: bool = False, until=None) -> Path:
        """Screenshot of the viewport (or whole page); `until`: only down to that element (small PNGs)."""
        self.n += 1
        path = self.out / f"{self.n:02d}-{name}.png"
        if until is not None:
            box = until.bounding_box()
            width = page.viewport_size["width"]
            page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": width, "height": box["y"] + box["height"] + 24})
        else:
            page.screenshot(path=str(path), full_page=full_page)
        self.shots[name] = path
        return path

    @contextlib.contextmanager
    def step(self, number: int, what: str, page=None):
        started = time.monotonic()
        try:
            yield
            with (self.out / "timings.txt").open("a") as fh:
                fh.write(f"step {number}: {time.monotonic() - started:6.1f} s  {what}\n")
        except Exception as exc:  # noqa: BLE001 - every failure gets the step's name
            if page is not None:
                with contextlib.suppress(Exception):
                    page.screenshot(path=str(self.out / f"FAILED-step{number}.png"), full_page=True)
            pytest.fail(f"journey step {number} ({what}) failed: {type(exc).__name__}: {exc}", pytrace=True)


# -- what a person does in the browser ------------------------------------------------------------------

def enrol_in_browser(page, url: str, username: str, password: str, journey: Journey, who: str,
                     issuer: str) -> AuthenticatorApp:
    """Open the one-time link, read the key the page shows, set the password, prove a code."""
    page.goto(url)
    assert page.locator("#enrol-username").inner_text().strip() == username, page.locator("body").inner_text()[:1500]
    assert page.locator("#totp-qr svg").count() == 1, "the enrolment page shows no QR code"
    secret = page.locator("#totp-secret").inner_text().strip().replace(" ", "")
    assert re.fullmatch(r"[A-Z2-7]{16,}=*", secret), f"the key on the page is not a base32 TOTP seed: {secret!r}"
    # the QR code a phone would scan carries that same key (same modules as the otpauth:// URI's QR)
    uri = pyotp.TOTP(secret).provisioning_uri(name=username, issuer_name=issuer)
    expected = re.search(r'<path[^>]* d="([^"]+)"', qr_svg(uri)).group(1)
    assert page.locator("#totp-qr svg path").first.get_attribute("d") == expected, "the QR code does not encode the key shown"
    page.fill("#password_input", password)
    page.fill("#password_confirm_input", password)
    app = AuthenticatorApp(secret)
    page.fill("#otp_input", app.code())
    journey.shot(page, f"{who}-enrolment-page", full_page=True)
    with page.expect_navigation():
        page.click("#enrol_submit")
    codes = page.locator("#recovery-codes li")
    assert codes.count() == 10, f"no recovery codes after enrolment: {page.locator('body').inner_text()[:1500]}"
    journey.shot(page, f"{who}-recovery-codes", full_page=True)
    return app


def login_in_browser(page, hub_url: str, username: str, password: str, app: AuthenticatorApp) -> None:
    page.goto(hub_url + "/hub/login")
    page.fill('input[name="username"]', username)
    page.fill('input[name="password"]', password)
    page.fill('input[name="otp"]', app.code())
    with page.expect_navigation():
        page.press('input[name="otp"]', "Enter")
    assert "/hub/login" not in page.url, f"login of {username} refused: {page.locator('body').inner_text()[:1500]}"


def dismiss_news_prompt(page) -> None:
    """JupyterLab asks once whether to fetch Jupyter news; answer No (nothing calls out anyway)."""
    no = page.locator(".jp-toast-button", has_text=re.compile(r"^No$"))
    if no.count():
        with contextlib.suppress(Exception):
            no.first.click(timeout=2_000)


def file_box(page, path: str):
    """The file's box on an egress request page, and its file id."""
    box = page.locator(f'.file[data-path="{path}"]')
    assert box.count() == 1, f"{path} is not on the request page: {page.locator('main').inner_text()[:2000]}"
    return box, int(box.get_attribute("id").removeprefix("file-"))


def decide(page, path: str, decision: str, comment: str) -> None:
    box, _ = file_box(page, path)
    form = box.locator("form.decide")
    assert form.count() == 1, f"no decision form for {path}: {box.inner_text()[:1500]}"
    form.locator(f'input[name="decision"][value="{decision}"]').check()
    form.locator('textarea[name="comment"]').fill(comment)
    with page.expect_navigation():
        form.locator('button[type="submit"]').click()
    box, _ = file_box(page, path)
    assert f"Your decision: {decision}" in box.inner_text(), box.inner_text()[:1500]


def ask_release(page, hub_url: str, path: str, name: str, context: str, controls: str) -> int:
    """Tick one workspace file on the egress pages, describe it, submit; returns the request id."""
    page.goto(f"{hub_url}{SERVICE}/projects/{PROJECT}/browse?path=out")
    box = page.locator(f'input[name="paths"][value="{path}"]')
    assert box.count() == 1, f"{path} is not offered on the release page: {page.locator('main').inner_text()[:1500]}"
    box.check()
    page.fill('input[name="group_name"]', name)
    page.fill('textarea[name="context"]', context)
    page.fill('textarea[name="controls"]', controls)
    with page.expect_navigation():
        page.click("#submit-request")
    m = re.search(rf"{SERVICE}/requests/(\d+)$", page.url)
    assert m, f"submitting {path} did not lead to a request page: {page.url} {page.locator('body').inner_text()[:1500]}"
    assert page.locator("#request-status").inner_text() == "submitted"
    return int(m.group(1))


# -- the test --------------------------------------------------------------------------------------------

def container_name(site, username: str) -> str:
    """The container of <username>'s server in PROJECT (found by its labels: its name is opaque)."""
    found = site.docker.containers.list(
        filters={"label": [f"org.enclave.project={PROJECT}", f"org.enclave.user={username}"]})
    assert len(found) == 1, f"expected one container for {username}/{PROJECT}, found {found}"
    return found[0].name


def _demo_links(out: str) -> dict[str, str]:
    """{username: path of the enrolment link} from `enclave demo`'s output."""
    links = {}
    for m in re.finditer(r"^\s+(\w+)\s+(\w+)\s+(https?://\S+/hub/enrol/\S+)\s*$", out, re.M):
        links[m.group(1)] = urlparse(m.group(3)).path
    return links


def test_researcher_and_stewards_journey(enclave_env, cli, docker_client, chromium, journey_artifacts):
    journey = Journey(journey_artifacts)
    with journey.step(0, "the notebook image is built or up to date (enclave.images.ensure_notebook_image)"):
        site = SpawnSite(enclave_env, docker_client)  # builds the notebook image if missing or stale

    with journey.step(0, "`enclave demo` creates the project, data and people with enrolment links"):
        code, out, err = cli("demo")
        assert code == 0, f"`enclave demo` failed ({code}): {out}\n{err}"
        links = _demo_links(out)
        assert {"alice", "carol", "dave"} <= set(links), f"`enclave demo` did not print the enrolment links: {out}"
        assert (enclave_env.state_dir / "data" / PROJECT / "hospital_stays.parquet").is_file()

    hub = site.hub()
    contexts = []
    failed = True
    try:
        with journey.step(0, "the hub, its proxy and the egress service answer"):
            hub.start()
            hub.wait_until_answers(SERVICE + "/api/workflow")  # the egress review service, behind the hub

        def new_page():
            ctx = chromium.new_context(viewport={"width": 1280, "height": 860}, accept_downloads=True)
            ctx.set_default_timeout(30_000)
            contexts.append(ctx)
            return ctx, ctx.new_page()

        alice_ctx, alice = new_page()
        issuer = enclave_env.settings.auth.totp_issuer
        ws = workspace(enclave_env.state_dir, PROJECT, "alice")

        # 1. enrolment and first login -----------------------------------------------------------------
        with journey.step(1, "alice enrols and logs in with password + TOTP", alice):
            alice_pw = "alice-journey-" + os.urandom(4).hex()
            alice_app = enrol_in_browser(alice, hub.url + links["alice"], "alice", alice_pw, journey, "researcher",
                                         issuer)
            login_in_browser(alice, hub.url, "alice", alice_pw, alice_app)
            assert urlparse(alice.url).path == "/hub/home", alice.url

        # 2. the project list and JupyterLab in the project's container -------------------------------
        with journey.step(2, "alice opens the demo project; JupyterLab loads in its container", alice):
            row = alice.locator(f'tr.enclave-project[data-project="{PROJECT}"]')
            assert row.count() == 1, f"no demo project on alice's home page: {alice.locator('body').inner_text()[:1500]}"
            assert "Demo: hospital stays 2024" in row.inner_text()
            journey.shot(alice, "researcher-project-list", until=alice.locator("#enclave-projects"))
            row.locator("a.start-server").click()
            alice.wait_for_url(re.compile(rf"/user/alice/{PROJECT}/lab"), timeout=240_000)
            alice.wait_for_selector(".jp-LauncherCard", timeout=120_000)
            box = docker_client.containers.get(container_name(site, "alice"))
            site.extra_containers.append(box)  # dumped on failure, removed at the end
            assert box.labels.get("org.enclave.project") == PROJECT and box.attrs["Config"]["User"] == "1000:100"
            journey.shot(alice, "jupyterlab-in-container")

        # 3. a notebook cell in the container's kernel reads /data and writes two outputs -------------
        with journey.step(3, "alice runs a notebook cell that reads /data and writes a table and an extract", alice):
            alice.locator('.jp-LauncherCard[data-category="Notebook"][title^="Python"]').first.click()
            editor = alice.locator(".jp-NotebookPanel:visible .jp-Cell .cm-content").first
            editor.wait_for(timeout=60_000)
            # a cell run before the kernel is connected is dropped: wait as a person waits for "Idle"
            alice.get_by_text(re.compile(r"Python 3 \(ipykernel\) \| Idle")).wait_for(timeout=120_000)
            dismiss_news_prompt(alice)
            editor.click()
            alice.keyboard.insert_text(CELL)
            alice.keyboard.press("Shift+Enter")
            output = alice.locator(".jp-NotebookPanel:visible .jp-OutputArea-output").first
            output.wait_for(timeout=180_000)
            text = output.inner_text()
            m = CELL_RESULT.search(text)
            assert m, f"the cell did not print its summary; output was:\n{text[:3000]}"
            host, table_rows, min_count, extract_rows, table_sha_in_kernel = m.groups()
            box.reload()
            assert host == box.attrs["Config"]["Hostname"], "the cell did not run in alice's demo container"
            assert int(min_count) >= 10 and int(table_rows) > 10 and int(extract_rows) == 300
            assert (ws / TABLE).is_file() and (ws / EXTRACT).is_file(), sorted(p.name for p in ws.rglob("*"))
            assert sha256((ws / TABLE).read_bytes()) == table_sha_in_kernel  # the kernel wrote the workspace
            journey.shot(alice, "notebook-cell-ran")

        # 4. no download from JupyterLab ---------------------------------------------------------------
        with journey.step(4, "alice cannot download the extract from JupyterLab", alice):
            listing = alice.locator(".jp-DirListing-content")
            out_dir = listing.locator(".jp-DirListing-item", has=alice.locator(".jp-DirListing-itemText", has_text=re.compile(r"^out$")))
            out_dir.wait_for(timeout=30_000)
            out_dir.dblclick()
            item = listing.locator(".jp-DirListing-item", has=alice.locator(".jp-DirListing-itemText", has_text=Path(EXTRACT).name))
            item.wait_for(timeout=30_000)
            item.click(button="right")
            menu = alice.locator(".lm-Menu").last
            menu.wait_for()
            entries = menu.locator(".lm-Menu-itemLabel").all_inner_texts()
            assert any("Rename" in e for e in entries), f"the file's context menu did not open: {entries}"
            assert not any("Download" in e for e in entries), f"JupyterLab offers a download: {entries}"
            journey.shot(alice, "no-download-in-menu")
            alice.keyboard.press("Escape")
            files_url = f"{hub.url}/user/alice/{PROJECT}/files/{EXTRACT}"
            for url in (files_url, files_url + "?download=1"):
                r = alice.request.get(url)
                assert r.status == 403 and NOT_RELEASED in r.text(), f"{url}: {r.status} {r.text()[:500]}"
            tab = alice_ctx.new_page()
            resp = tab.goto(files_url)
            assert resp.status == 403 and NOT_RELEASED in tab.locator("body").inner_text()
            journey.shot(tab, "download-refused")
            tab.close()

        # 5. release requests through the egress pages ------------------------------------------------
        with journey.step(5, "alice asks for release of both files on the egress pages", alice):
            alice.goto(hub.url + SERVICE + "/")
            alice.wait_for_url(hub.url + SERVICE + "/")
            assert alice.locator(f'a[href="{SERVICE}/projects/{PROJECT}/browse"]').count() == 1
            extract_rid = ask_release(
                alice, hub.url, EXTRACT, "MI patients",
                "stays for myocardial infarction (I21), one row per stay, for a follow-up analysis outside",
                "none: patient pseudonyms, ages and dates as in the data")
            journey.shot(alice, "researcher-extract-submitted")
            table_bytes = (ws / TABLE).read_bytes()
            table_rid = ask_release(
                alice, hub.url, TABLE, "stays by diagnosis and sex",
                "number of hospital stays in 2024 by ICD-10 diagnosis and sex",
                "counts of stays; every cell has at least 10 stays; no zero cells")
            box_, table_fid = file_box(alice, TABLE)
            assert sha256(table_bytes)[:12] in box_.inner_text()  # the snapshot is of these bytes
            journey.shot(alice, "researcher-table-submitted")

        # 6. two stewards enrol, log in, reject the extract and approve the table ----------------------
        stewards = {}
        for name in ("carol", "dave"):
            ctx, page = new_page()
            with journey.step(6, f"{name} enrols", page):
                pw = f"{name}-journey-" + os.urandom(4).hex()
                stewards[name] = (page, pw, enrol_in_browser(page, hub.url + links[name], name, pw, journey, name, issuer))
        for name, (page, pw, app) in stewards.items():
            with journey.step(6, f"{name} logs in with password + TOTP, rejects the extract and approves the table", page):
                login_in_browser(page, hub.url, name, pw, app)
                page.goto(f"{hub.url}{SERVICE}/queue?status=")
                for rid in (extract_rid, table_rid):
                    assert page.locator(f'#queue a[href="{SERVICE}/requests/{rid}"]').count() == 1, page.locator("main").inner_text()
                if name == "carol":
                    journey.shot(page, "steward-queue")
                page.click(f'#queue a[href="{SERVICE}/requests/{extract_rid}"]')
                box_, _ = file_box(page, EXTRACT)
                assert box_.locator("h4 .status").inner_text() == "fail", box_.inner_text()[:2000]
                findings = box_.locator("ul.findings").inner_text()
                assert "record_level" in findings, findings
                if name == "carol":
                    journey.shot(page, "steward-review-extract")
                decide(page, EXTRACT, "reject",
                       "record-level rows with patient pseudonyms and dates never leave the enclave")
                page.goto(f"{hub.url}{SERVICE}/requests/{table_rid}")
                box_, _ = file_box(page, TABLE)
                assert box_.locator("h4 .status").inner_text() == "pass", box_.inner_text()[:2000]
                decide(page, TABLE, "approve", "counts of stays, all cells >= 10")
        page = stewards["dave"][0]
        with journey.step(6, "after both stewards: extract rejected, table released", page):
            assert page.locator("#request-status").inner_text() == "released"
            journey.shot(page, "steward-table-released", full_page=True)
            page.goto(f"{hub.url}{SERVICE}/requests/{extract_rid}")
            assert page.locator("#request-status").inner_text() == "rejected"
            assert "carol: reject" in page.locator(".reviews").inner_text()
            journey.shot(page, "steward-extract-rejected")

        # 7. the researcher downloads exactly the submitted bytes -------------------------------------
        with journey.step(7, "alice downloads the released table; bytes match the submission", alice):
            alice.goto(f"{hub.url}{SERVICE}/requests/{table_rid}")
            assert alice.locator("#request-status").inner_text() == "released"
            link = alice.locator(f'#file-{table_fid} a.download')
            assert link.count() == 1, alice.locator("main").inner_text()[:2000]
            journey.shot(alice, "researcher-release-page", until=alice.locator(f"#file-{table_fid}"))
            with alice.expect_download() as dl:
                link.click()
            got = Path(dl.value.path()).read_bytes()
            shutil.copyfile(dl.value.path(), journey_artifacts / f"downloaded-{Path(TABLE).name}")
            assert sha256(got) == sha256(table_bytes), "the released bytes differ from what alice submitted"
            assert sha256(got) == table_sha_in_kernel
            alice.goto(f"{hub.url}{SERVICE}/requests/{extract_rid}")
            assert alice.locator("#request-status").inner_text() == "rejected"
            assert alice.locator("a.download").count() == 0
            _, extract_fid = file_box(alice, EXTRACT)
            r = alice.request.get(f"{hub.url}{SERVICE}/files/{extract_fid}/download")
            assert r.status == 403, f"the rejected extract downloads: {r.status}"

        # 8. the audit trail ----------------------------------------------------------------------------
        with journey.step(8, "enclave audit verify passes and the export shows every step"):
            code, out, err = cli("audit", "verify")
            assert code == 0 and "chain verified" in out, f"{code} {out} {err}"
            code, out, err = cli("audit", "export")
            assert code == 0, err
            (journey_artifacts / "audit.jsonl").write_text(out)
            events = [json.loads(line) for line in out.splitlines() if line.strip()]

            def seen(action, actor=None, **detail):
                return [e for e in events if e["action"] == action and (actor is None or e["actor"] == actor)
                        and all(e["detail"].get(k) == v for k, v in detail.items())]

            missing = []
            expected = [("demo.create", None, {})]
            for who in ("alice", "carol", "dave"):
                expected += [("user.enrol", who, {}), ("login.ok", who, {})]
            expected += [
                ("notebook.start", "alice", {}),
                # step 4, refused and recorded by the host guard in front of her server
                ("notebook.download_refused", "service:egress-guard", {"kind": "files", "user": "alice", "by": "host"}),
                ("egress.submit", "alice", {}),
                ("egress.review", "carol", {"path": EXTRACT, "decision": "reject"}),
                ("egress.review", "dave", {"path": EXTRACT, "decision": "reject"}),
                ("egress.review", "carol", {"path": TABLE, "decision": "approve"}),
                ("egress.review", "dave", {"path": TABLE, "decision": "approve"}),
                ("egress.reject", "dave", {}),
                ("egress.release", "dave", {}),
                ("egress.download", "alice", {"path": TABLE, "sha256": sha256(table_bytes)}),
            ]
            for action, actor, detail in expected:
                if not seen(action, actor, **detail):
                    missing.append(f"{action} by {actor} {detail}")
            assert not missing, "audit export lacks: " + "; ".join(missing)
            assert len(seen("egress.submit", "alice")) == 2
            assert [e["target"] for e in seen("notebook.start", "alice")] == [PROJECT]
            assert {e["target"] for e in seen("notebook.download_refused", user="alice")} == {PROJECT}
        failed = False
    finally:
        for ctx in contexts:
            with contextlib.suppress(Exception):
                ctx.close()
        if failed:
            site.dump()
        site.cleanup()
        with contextlib.suppress(Exception):  # a container the hub did not stop (e.g. it was killed)
            docker_client.containers.get(container_name(site, "alice")).remove(force=True)

    if os.environ.get("JOURNEY_UPDATE_DOCS"):
        DOCS_SHOTS.mkdir(parents=True, exist_ok=True)
        for doc_name, step in DOC_SHOTS.items():
            shutil.copyfile(journey.shots[step], DOCS_SHOTS / doc_name)
