"""What the browser tests share: where Chromium is, the users' password, signing in, where screenshots go."""

from __future__ import annotations

import os
from pathlib import Path

from playwright.sync_api import Page

CHROMIUM = os.environ.get("ORDERGUARD_TEST_CHROMIUM", "/usr/bin/chromium")
PASSWORD = "correct horse battery staple"


def sign_in(page: Page, base: str, name: str, *, next_url: str = "/desk") -> None:
    page.goto(f"{base}/signin?next={next_url}")
    page.fill("#username", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def screenshots() -> Path:
    folder = Path(os.environ.get("ORDERGUARD_TEST_SCREENSHOTS", "") or Path.cwd() / "var" / "screenshots")
    folder.mkdir(parents=True, exist_ok=True)
    return folder


