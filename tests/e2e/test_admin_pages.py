"""An admin runs the enclave from the browser (headless Chromium, real hub, real admin service): from
the hub's home page to the admin pages, creates a project, adds a researcher and reads the one-time
enrolment link the page shows; the researcher enrols from that link and finds the project on their
home page. Every form field has a label and the pages work with the keyboard. Screenshots of each page
go to artifacts/admin/ (the README's copies are in docs/screenshots/)."""

from __future__ import annotations

from pathlib import Path

import pyotp

from tests.e2e.test_steward_review import _login, browser  # noqa: F401 - the browser fixture
from tests.integration.test_egress_api import build_world, start_hub
from tests.support.users import enrolled_user, totp_code

SHOTS = Path(__file__).resolve().parents[2] / "artifacts" / "admin"

UNLABELLED = """() => [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
    .filter(el => !el.labels || el.labels.length === 0).map(el => el.name || el.id)"""


def _shot(page, name):
    SHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


def _labelled(page):
    assert page.evaluate(UNLABELLED) == [], page.url


def test_an_admin_creates_a_project_adds_a_researcher_who_enrols_from_the_link(tmp_path, browser):  # noqa: F811
    world = build_world(tmp_path)
    ada = enrolled_user(world.settings, "ada", "admin")
    data = tmp_path / "heart-data"
    data.mkdir()
    hub = start_hub(world)
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        _login(page, hub, ada)
        with page.expect_navigation():
            page.click("#admin-pages")  # the hub's home page for an admin, then the hub's OAuth
        page.wait_for_url("**/services/admin/people**")
        assert page.locator("#person-ann").is_visible()
        _labelled(page)
        _shot(page, "admin-people")

        page.goto(hub.url + "/services/admin/projects")
        _labelled(page)
        page.fill("#new-slug", "heart")
        page.fill("#new-title", "Heart failure outcomes")
        page.fill("#new-data", str(data))
        page.fill("#new-end", "2027-06-30")
        page.fill("#new-purpose", "Outcomes of heart failure after discharge")
        page.fill("#new-approval", "CNIL MR-004 2026-118")
        _shot(page, "admin-projects")
        with page.expect_navigation():
            page.press("#new-approval", "Enter")  # the keyboard submits the form
        assert "created project 'heart'" in page.locator("#said").inner_text()

        page.goto(hub.url + "/services/admin/people")
        page.fill("#new-username", "rita")
        page.select_option("#new-role", "researcher")
        page.focus("#add-person")
        with page.expect_navigation():
            page.keyboard.press("Enter")
        link = page.locator("#enrolment-link").input_value()
        assert "/hub/enrol/" in link
        _shot(page, "admin-enrolment-link")

        page.goto(hub.url + "/services/admin/projects/heart")
        page.fill("#add-member", "rita")
        with page.expect_navigation():
            page.click("#add-member-button")
        page.goto(hub.url + "/services/admin/projects/heart")
        assert "rita" in page.locator("#members").inner_text()
        _labelled(page)
        _shot(page, "admin-project")
        page.goto(hub.url + "/services/admin/audit?project=heart")
        assert "project.add_member" in page.locator("#events").inner_text()
        _shot(page, "admin-audit")

        rita = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        rita.goto(link)
        secret = rita.locator("#totp-secret").inner_text().strip().replace(" ", "")
        rita.fill("#password_input", "rita's long enough passphrase")
        rita.fill("#password_confirm_input", "rita's long enough passphrase")
        rita.fill("#otp_input", pyotp.TOTP(secret).now())
        with rita.expect_navigation():
            rita.click("#enrol_submit")
        assert rita.locator("#recovery-codes li").count() == 10
        rita.goto(hub.url + "/hub/login")
        rita.fill('input[name="username"]', "rita")
        rita.fill('input[name="password"]', "rita's long enough passphrase")
        rita.fill('input[name="otp"]', totp_code(secret, offset_steps=1))  # the enrolment used this step's code
        with rita.expect_navigation():
            rita.press('input[name="otp"]', "Enter")
        assert "heart" in rita.locator("body").inner_text()
        # the researcher cannot open the admin pages: the hub gives only admins their access scope
        rita.goto(hub.url + "/services/admin/people")
        assert "You do not have permission to access JupyterHub service admin" in rita.locator("body").inner_text()
    finally:
        hub.stop()
        hub.dump_logs()
