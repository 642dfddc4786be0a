"""Marketing's trusted-customer page in a real browser: sign in, read the pool, ask why not, download a file."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from openpyxl import load_workbook
from playwright.sync_api import Browser, expect

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from tests.browser.common import PASSWORD, screenshots, sign_in
from tests.factories import free_port, user
from tests.processes import serve_process
from tests.segments.shop import fill

pytestmark = pytest.mark.browser


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """A running service over the small shop, with a marketer."""
    settings = Settings(data_dir=tmp_path)
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        fill(log)
    user(settings.database_url, "mona", "marketing", password=PASSWORD)
    port = free_port()
    with serve_process(tmp_path, port):
        yield f"http://127.0.0.1:{port}"


def test_marketing_reads_the_pool_asks_why_not_and_downloads_it(browser: Browser, service: str,
                                                                tmp_path: Path) -> None:
    page = browser.new_page(viewport={"width": 1300, "height": 1000}, accept_downloads=True)
    sign_in(page, service, "mona", next_url="/segments")
    page.fill("input[name=as_of]", "2024-11-30")
    page.click("text=Show")
    expect(page.locator("h2").first).to_contain_text("4 of 34 customers as of 2024-11-30")
    page.fill("input[name=account]", "site:carol")
    page.click("text=Explain")
    expect(page.locator("tr.selected")).to_have_count(1)
    expect(page.locator("tr.selected")).to_contain_text("links")
    page.screenshot(path=str(screenshots() / "segments.png"), full_page=True)
    with page.expect_download() as download:
        page.click("a:has-text('xlsx')")
    assert download.value.suggested_filename == "trusted-customers-2024-11-30-standard.xlsx"
    saved = tmp_path / "pool.xlsx"
    download.value.save_as(saved)
    rows = list(load_workbook(saved, read_only=True).active.values)
    assert rows[0][0] == "customer_id" and len(rows) == 5
