"""JupyterHub's own admin page, as an enclave admin sees it in a real headless Chromium: people and
their servers listed, and none of the buttons that do not fit the enclave (add users, edit, start or
stop servers, groups). The scopes already refuse those actions; this checks they are not offered."""

from __future__ import annotations

from tests.e2e.test_steward_review import _login, browser  # noqa: F401 - the browser fixture
from tests.integration.test_egress_api import build_world, start_hub
from tests.support.users import enrolled_user

OFFERED_NOWHERE = ["Add Users", "Start All", "Stop All", "Edit User", "Start Server", "Stop Server",
                   "Manage Groups", "Spawn Page"]


def test_the_admin_page_lists_people_and_offers_no_action_that_does_not_fit(tmp_path, browser):  # noqa: F811
    world = build_world(tmp_path)
    ada = enrolled_user(world.settings, "ada", "admin")
    hub = start_hub(world)
    try:
        page = browser.new_context(viewport={"width": 1280, "height": 800}).new_page()
        _login(page, hub, ada)
        page.goto(hub.url + "/hub/admin")
        # the React list is rendered (it lists the people who have logged in to the hub: ada so far)
        page.locator("table").get_by_text("ada", exact=True).first.wait_for(timeout=30_000)
        assert page.locator("#enclave-admin-panel").is_visible()
        page.wait_for_timeout(500)  # any late re-render is pruned too
        for label in OFFERED_NOWHERE:
            visible = [b for b in page.get_by_role("button", name=label, exact=True).all() if b.is_visible()]
            visible += [a for a in page.get_by_role("link", name=label, exact=True).all() if a.is_visible()]
            assert not visible, label
    finally:
        hub.stop()
        hub.dump_logs()
