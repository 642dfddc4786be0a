"""The browser every browser test drives: Debian's Chromium through Playwright, one per module."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, sync_playwright

from tests.browser.common import CHROMIUM


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if shutil.which(CHROMIUM) is None:
        pytest.fail(f"Chromium is not at {CHROMIUM}: install Debian's (apt-get install -y chromium; scripts/test.sh "
                    "does) or point ORDERGUARD_TEST_CHROMIUM at it", pytrace=False)
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=CHROMIUM, args=["--no-sandbox"])
        yield launched
        launched.close()
