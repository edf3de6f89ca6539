"""Browser fixtures for the end-to-end tests (tests/e2e).

- ``chromium``  Debian's headless Chromium (/usr/bin/chromium) driven by Playwright; no browser download
                (never `playwright install`). Fails, never skips, when the browser is missing.
- ``journey_artifacts``  artifacts/journey/ (gitignored), emptied of old screenshots, for numbered
                screenshots ``NN-step.png`` of the journey test.
"""

from __future__ import annotations

from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[2] / "artifacts"


@pytest.fixture
def chromium():
    if not Path(CHROMIUM).exists():
        pytest.fail(f"{CHROMIUM} is missing: the browser tests need Debian's chromium (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        try:
            browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        except Exception as exc:  # noqa: BLE001 - any launch failure is a missing prerequisite
            pytest.fail(f"{CHROMIUM} did not start under Playwright: {exc}")
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture
def journey_artifacts() -> Path:
    out = ARTIFACTS / "journey"
    out.mkdir(parents=True, exist_ok=True)
    for old in [*out.glob("*.png"), *out.glob("*.txt")]:
        old.unlink()
    return out
