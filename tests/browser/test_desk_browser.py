"""The review desk in a real browser: Debian's Chromium driven by Playwright (no downloaded browser).

A reviewer signs in, opens the queue, opens a case with the keyboard, sees its similar
labelled cases and the linked-orders graph, gives three verdicts with the keys 1, 2 and 3
(each stored as that reviewer, each order leaving the queue, the next case opening), and
marketing is refused the desk. Screenshots of the queue and the case page are saved
(``ORDERGUARD_TEST_SCREENSHOTS`` or the test's temporary directory).

Fails, never skips, when Chromium is missing: ``scripts/test.sh`` installs it.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, expect

from tests.browser.common import PASSWORD, screenshots, sign_in
from tests.factories import api_key, free_port, user
from tests.processes import serve_process
from tests.serving.test_labels_api import site_order

pytestmark = pytest.mark.browser

RING = [f"R{i}" for i in range(1, 8)]
PAST = [f"P{i}" for i in range(1, 7)]


@pytest.fixture
def service(tmp_path: Path) -> Iterator[str]:
    """A running service with scored ring orders, labelled past cases, two reviewers and a marketer."""
    url = f"sqlite:///{tmp_path}/orderguard.db"
    for name, role in (("rev-a", "reviewer"), ("mona", "marketing")):
        user(url, name, role, password=PASSWORD)
    key = {"Authorization": f"Bearer {api_key(url, 'order_system', 'reviewer')}"}
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    with serve_process(tmp_path, port, env={"ORDERGUARD_DESK__WINDOW": "3650d"}):  # the orders are from 2024
        orders = [site_order(o, minutes=-2880 + i, device="dev-old") for i, o in enumerate(PAST)]
        orders += [site_order(o, minutes=i, device="dev-ring") for i, o in enumerate(RING)]
        for order in orders:
            assert httpx.post(f"{base}/v1/score", json=order, headers=key).status_code == 200
        labels = [{"order_key": f"site:{o}", "verdict": "confirmed_fraud", "labeled_at": "2024-11-11T00:00:00Z"}
                  for o in PAST]
        assert httpx.post(f"{base}/v1/labels", json={"labels": labels}, headers=key).status_code == 201
        yield base


def _another_case(order_id: str) -> Callable[[str], bool]:
    def opened(url: str) -> bool:
        return "/desk/case/site/" in url and not url.split("?")[0].endswith(f"/{order_id}")
    return opened


def test_a_reviewer_works_cases_with_the_keyboard(browser: Browser, service: str) -> None:
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    sign_in(page, service, "rev-a")
    expect(page).to_have_url(f"{service}/desk")
    rows = page.locator("tr[data-href]")
    waiting = rows.count()
    assert waiting >= 3
    page.screenshot(path=str(screenshots() / "desk-queue.png"), full_page=True)
    page.keyboard.press("j")
    page.keyboard.press("Enter")
    page.wait_for_url(re.compile(r".*/desk/case/site/R\d$"))
    assert page.locator("article.neighbour").count() >= 3
    expect(page.locator("article.neighbour").first).to_contain_text("确认欺诈")
    expect(page.locator("svg.graph line.edge")).not_to_have_count(0)
    page.screenshot(path=str(screenshots() / "desk-case.png"), full_page=True)
    decided = []
    for key, verdict in (("1", "confirmed_fraud"), ("2", "false_positive"), ("3", "needs_investigation")):
        order_id = page.url.rsplit("/", 1)[1].split("?")[0]
        decided.append((order_id, verdict))
        page.keyboard.press(key)
        page.wait_for_url(_another_case(order_id))
    page.goto(f"{service}/desk")
    assert page.locator("tr[data-href]").count() == waiting - 2  # "needs investigation" stays in the queue
    for order_id, verdict in decided:  # read back with the reviewer's own session
        history = page.request.get(f"{service}/v1/labels/site/{order_id}").json()["history"]
        assert [(h["verdict"], h["reviewer_id"]) for h in history] == [(verdict, "rev-a")]


def test_marketing_is_refused_the_desk(browser: Browser, service: str) -> None:
    page = browser.new_page()
    sign_in(page, service, "mona")
    expect(page.locator("h1")).to_have_text("Not for your roles")
    assert page.request.get(f"{service}/desk").status == 403
