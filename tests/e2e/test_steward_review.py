"""A steward reviews and approves in a real headless Chromium (Debian's /usr/bin/chromium via Playwright).

Two stewards log in at the hub's login form (password + TOTP), open the review queue, look at the
flagged cell in the table preview and the image, approve each file (with an override reason for the
file whose checks failed), and the researcher then downloads exactly the bytes submitted.
Screenshots go to artifacts/ (gitignored).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.integration.test_egress_api import (
    PNG, SERVICE, SMALL_CELLS_CSV, ServiceUser, build_world, start_hub, write,
)
from tests.support.users import totp_code

pytestmark = pytest.mark.e2e
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture
def browser():
    from playwright.sync_api import sync_playwright

    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=CHROMIUM, args=[
            "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield b
        finally:
            b.close()


def _login(page, hub, user, offset_steps=0):
    page.goto(hub.url + "/hub/login")
    page.fill('input[name="username"]', user.username)
    page.fill('input[name="password"]', user.password)
    page.fill('input[name="otp"]', totp_code(user.totp_secret, offset_steps))
    with page.expect_navigation():
        page.press('input[name="otp"]', "Enter")
    assert "/hub/login" not in page.url, page.content()[-2000:]


def _review_all(page, hub, rid, shot_prefix):
    page.goto(f"{hub.url}{SERVICE}/queue?status=")
    page.screenshot(path=str(ARTIFACTS / f"{shot_prefix}-queue.png"), full_page=True)
    page.click(f'#queue a[href="{SERVICE}/requests/{rid}"]')
    page.wait_for_selector("#request-status")
    page.screenshot(path=str(ARTIFACTS / f"{shot_prefix}-request.png"), full_page=True)
    for _ in range(2):  # each decision reloads the page; handle the files still without my decision
        forms = page.locator("form.decide")
        for i in range(forms.count()):
            form = forms.nth(i)
            if form.locator("xpath=..").locator("text=Your decision").count():
                continue
            form.locator('input[value="approve"]').check()
            override = form.locator('textarea[name="override_reason"]')
            if override.count():
                override.fill("the count of 3 is a published national figure, not from our data")
            with page.expect_navigation():
                form.locator('button[type="submit"]').click()
            break


def test_two_stewards_review_and_approve_in_the_browser(tmp_path, browser):
    ARTIFACTS.mkdir(exist_ok=True)
    world = build_world(tmp_path)
    hub = start_hub(world)
    try:
        ann = ServiceUser(hub, world.people["ann"])
        write(world, "out/by_region.csv", SMALL_CELLS_CSV)
        write(world, "out/figure.png", PNG)
        view = ann.submit(["out/by_region.csv", "out/figure.png"]).json()
        rid = view["id"]

        ctx = browser.new_context()
        page = ctx.new_page()
        _login(page, hub, world.people["sam"])
        page.goto(f"{hub.url}{SERVICE}/requests/{rid}")
        flagged = page.locator("td.flagged")
        assert flagged.count() == 1 and flagged.first.inner_text() == "3"
        assert page.locator("img.preview-image").evaluate("img => img.naturalWidth") == 4  # the image loads
        assert "Other decisions are shown after you decide" in page.content()
        _review_all(page, hub, rid, "steward1")
        assert page.locator("#request-status").inner_text() == "under_review"
        ctx.close()

        ctx = browser.new_context()
        page = ctx.new_page()
        _login(page, hub, world.people["sue"])
        _review_all(page, hub, rid, "steward2")
        page.goto(f"{hub.url}{SERVICE}/requests/{rid}")
        assert page.locator("#request-status").inner_text() == "released"
        assert "override: the count of 3" in page.content()  # both decisions now visible
        page.screenshot(path=str(ARTIFACTS / "steward2-released.png"), full_page=True)
        ctx.close()

        files = {f["path"]: f for g in ann.get(f"/api/requests/{rid}").json()["groups"] for f in g["files"]}
        got = ann.get(f"/api/files/{files['out/by_region.csv']['id']}/download")
        assert got.status_code == 200 and got.content == SMALL_CELLS_CSV
    finally:
        hub.stop()
        hub.dump_logs()


def test_a_researcher_asks_for_a_package_and_a_steward_approves_it_in_the_browser(tmp_path, browser):
    """The form on the researcher's home page, the steward's decision on the request page; the package
    then joins the project's allow-list (what the package index serves to the project's notebooks)."""
    from enclave import db, packages

    ARTIFACTS.mkdir(exist_ok=True)
    world = build_world(tmp_path)
    hub = start_hub(world)
    try:
        ctx = browser.new_context()
        page = ctx.new_page()
        _login(page, hub, world.people["ann"])
        page.goto(f"{hub.url}{SERVICE}/")
        form = page.locator("#ask-package")
        form.locator('select[name="project"]').select_option("cardio")
        form.locator('input[name="name"]').fill("lifelines")
        form.locator('input[name="versions"]').fill("==0.30")
        form.locator('textarea[name="why"]').fill("Cox proportional hazards for the readmission study")
        with page.expect_navigation():
            form.locator('button[type="submit"]').click()
        assert "coming in" in page.locator("h1").inner_text()
        assert page.locator("#request-status").inner_text() == "submitted"
        assert "lifelines==0.30" in page.content() and "not in the repository" in page.content()
        rid = int(page.url.rstrip("/").rsplit("/", 1)[1])
        page.screenshot(path=str(ARTIFACTS / "package-asked.png"), full_page=True)
        ctx.close()

        ctx = browser.new_context()
        page = ctx.new_page()
        _login(page, hub, world.people["sam"])
        _review_all(page, hub, rid, "package-steward")
        page.goto(f"{hub.url}{SERVICE}/requests/{rid}")
        assert page.locator("#request-status").inner_text() == "released"
        page.screenshot(path=str(ARTIFACTS / "package-approved.png"), full_page=True)
        ctx.close()
        with db.transaction(world.settings.database_url) as s:
            rules = [(e.name, e.scope, e.allowed, e.versions) for e in packages.listing(s, "cardio")]
        assert rules == [("lifelines", "cardio", True, "==0.30")]
    finally:
        hub.stop()
        hub.dump_logs()


def test_a_steward_gets_the_mail_of_a_submission_and_its_link_opens_the_request(tmp_path, browser):
    """The notifier service of a real hub sends through an SMTP server on loopback; the mail names the
    request, not its files, and its link opens the request page once the steward has logged in."""
    from enclave import db, notify
    from tests.support.smtp import SMTPServer

    with SMTPServer() as smtp:
        world = build_world(tmp_path, {"mail": {"smtp_host": "127.0.0.1", "smtp_port": smtp.port,
                                                "security": "none", "send_seconds": 1}})
        with db.transaction(world.settings.database_url) as s:
            notify.set_preferences(s, "test", "sam", email="sam@localhost")
        hub = start_hub(world)
        try:
            ann = ServiceUser(hub, world.people["ann"])
            write(world, "out/by_region.csv", SMALL_CELLS_CSV)
            rid = ann.submit(["out/by_region.csv"]).json()["id"]
            [mail] = smtp.inbox.wait(1)
            body = mail.get_payload()
            assert mail["To"] == "sam@localhost" and mail["Subject"] == f"Request {rid} waits for review"
            assert "by_region" not in body and "north" not in body
            link = next(w for w in body.split() if w.startswith("http"))
            assert link == f"{hub.url}{SERVICE}/requests/{rid}"  # [enclave] public_url + the page
            page = browser.new_context().new_page()
            _login(page, hub, world.people["sam"])
            page.goto(link)
            assert page.locator("#request-status").inner_text() == "submitted"
        finally:
            hub.stop()
            hub.dump_logs()
