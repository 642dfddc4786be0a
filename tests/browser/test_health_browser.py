"""The order-health dashboard in a real browser, at a desk and on a phone at 2 a.m.

An operations user signs in, sees the red lost-callback order at the top of ``/health``,
clicks through to its timeline and reads the missing step; on a 390 x 844 phone screen
neither page scrolls sideways; a reviewer is refused. Screenshots of both pages at both
widths are saved (``ORDERGUARD_TEST_SCREENSHOTS`` or ``var/screenshots``).

The service runs with its sweeper off, so the page shows the sweeps the test recorded
(a promotion morning in 2024), not a sweep of today's empty shop.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, ViewportSize, expect

from features.settings import Settings
from tests.browser.common import PASSWORD, screenshots, sign_in
from tests.factories import free_port, user
from tests.health.shop import Shop, fill
from tests.processes import serve_process

pytestmark = pytest.mark.browser

PHONE: ViewportSize = {"width": 390, "height": 844}
PAYMENT_CALLBACK = "已付款但未收到支付网关回调"


@pytest.fixture
def service(tmp_path: Path) -> Iterator[tuple[str, Shop]]:
    """A running service over the swept promotion morning, with an operations user and a reviewer."""
    settings = Settings(data_dir=tmp_path)
    shop = fill(settings)
    user(settings.database_url, "otto", "operations", password=PASSWORD)
    user(settings.database_url, "rex", "reviewer", password=PASSWORD)
    port = free_port()
    with serve_process(tmp_path, port, env={"ORDERGUARD_HEALTH__ENABLED": "false"}):
        yield f"http://127.0.0.1:{port}", shop


def _no_sideways_scroll(page: Page) -> None:
    widths = page.evaluate("[document.documentElement.scrollWidth, window.innerWidth]")
    assert widths[0] <= widths[1], (page.url, widths)


def test_operations_follow_the_red_order_to_its_missing_step(browser: Browser,
                                                             service: tuple[str, Shop]) -> None:
    base, shop = service
    red = str(shop.lost_callback)
    page = browser.new_page(viewport={"width": 1300, "height": 1000})
    sign_in(page, base, "otto", next_url="/health")
    expect(page.locator("h1")).to_contain_text("订单健康 Order health")
    first = page.locator("#worst .health-orders > li").first
    expect(first).to_contain_text(red)
    expect(first).to_contain_text("红色 red")
    expect(first).to_contain_text(PAYMENT_CALLBACK)
    expect(page.locator("#stuck")).to_contain_text("出库扫描")
    expect(page.locator("svg.health-chart polyline")).to_have_count(1)
    page.screenshot(path=str(screenshots() / "health-desktop.png"), full_page=True)
    first.get_by_role("link", name=red).click()
    page.wait_for_url(re.compile(r"/health/order/site/"))
    expect(page.locator("h1")).to_have_text(red)
    failing = page.locator("#failing")
    expect(failing).to_contain_text(PAYMENT_CALLBACK)
    expect(failing.locator(".health-missing").first).to_have_text("支付回调")
    expect(page.locator("#timeline li").first).to_contain_text("已付款")
    page.screenshot(path=str(screenshots() / "health-order-desktop.png"), full_page=True)
    page.close()


def test_on_a_phone_nothing_scrolls_sideways(browser: Browser, service: tuple[str, Shop]) -> None:
    base, shop = service
    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True, device_scale_factor=2)
    page = context.new_page()
    sign_in(page, base, "otto", next_url="/health")
    expect(page.locator("#worst")).to_contain_text(str(shop.lost_callback))
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots() / "health-mobile.png"), full_page=True)
    page.select_option("select[name=stage]", "warehouse")
    page.click("#stuck button[type=submit]")
    expect(page.locator("#stuck tbody tr")).to_have_count(1)
    _no_sideways_scroll(page)
    page.locator("#stuck").get_by_role("link", name=str(shop.stuck_in_warehouse)).click()
    expect(page.locator("#failing .health-missing").first).to_have_text("出库扫描")
    _no_sideways_scroll(page)
    page.screenshot(path=str(screenshots() / "health-order-mobile.png"), full_page=True)
    context.close()


def test_a_reviewer_is_refused(browser: Browser, service: tuple[str, Shop]) -> None:
    base, shop = service
    page = browser.new_page()
    sign_in(page, base, "rex", next_url="/health")
    expect(page.locator("h1")).to_have_text("Not for your roles")
    answer = page.goto(f"{base}/health")
    assert answer is not None and answer.status == 403
    expect(page.locator("body")).not_to_contain_text(str(shop.lost_callback))
    page.close()
