"""``/health`` and an order's timeline page: operations (and admins) read the shop's order health on a promotion
morning, every other role is refused, a stranger is sent to sign in."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.access import Role
from orderguard.ingest.orderlog import OrderLog
from serving.app import create_app
from tests.factories import FixedClock, sign_in, user
from tests.health.shop import NOW, Shop, fill

PAYMENT_CALLBACK = "已付款但未收到支付网关回调"


def _settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path, health={"enabled": False}, scoring={"warm_start": False})


@pytest.fixture
def shop(tmp_path: Path) -> Iterator[tuple[TestClient, Shop]]:
    """The promotion morning, swept up to ``NOW``, and one user per role (named after it, ``_`` as ``-``)."""
    settings = _settings(tmp_path)
    found = fill(settings)
    for role in Role:
        user(settings.database_url, role.value.replace("_", "-"), role.value)
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        yield client, found


def _section(html: str, name: str) -> str:
    """The HTML of the page's ``<section id=name>``."""
    found = re.search(rf'<section[^>]*id="{name}".*?</section>', html, re.S)
    assert found is not None, name
    return found.group(0)


def _order_path(key: object) -> str:
    channel, order_id = str(key).split(":", 1)
    return f"/health/order/{channel}/{order_id}"


@pytest.mark.parametrize("name", ["operations", "admin"])
def test_operations_and_admins_read_the_shops_health(shop: tuple[TestClient, Shop], name: str) -> None:
    client, found = shop
    assert sign_in(client, name).status_code == 303
    assert 'href="/health"' in client.get("/").text
    page = client.get("/health")
    assert page.status_code == 200 and page.headers["cache-control"] == "no-store"
    html = page.text
    assert "89.4" in html and "高于警戒线 85" in html  # 89.38 overall, the alert line at 85
    worst = _section(html, "worst")
    assert str(found.lost_callback) in worst and f'href="{_order_path(found.lost_callback)}"' in worst
    assert "红色 red" in worst and PAYMENT_CALLBACK in worst and "缺少 支付回调" in worst
    assert worst.index(str(found.lost_callback)) < worst.index(str(found.stuck_in_warehouse))  # riskiest first
    stages = _section(html, "stages")
    for stage, count in (("payment", 1), ("sync", 1), ("inventory", 1), ("warehouse", 1), ("order", 1),
                         ("logistics", 0)):
        assert re.search(rf'{stage}</span></dt><dd[^>]*>{count}</dd>', stages), stage
    channels = _section(html, "channels")
    assert re.search(r">site</a></td><td>8</td><td>1</td><td>0</td><td>0</td><td>2</td><td>5</td>", channels)
    chart = _section(html, "chart")
    assert "<svg" in chart and "<polyline" in chart and 'class="alert"' in chart
    assert ">10:00<" in chart and ">20:00<" in chart  # Beijing time: the first sweep and the last
    stuck = _section(html, "stuck")
    keys = re.findall(r'<a href="/health/order/site/(HX\d+)">', stuck)
    assert keys == ["HX000008", "HX000001", "HX000001", "HX000001", "HX000002"]  # the oldest due first
    assert "9 小时 50 分" in stuck  # the lost callback, due 10:10, looked at 20:00


def test_a_filter_narrows_the_stuck_list(shop: tuple[TestClient, Shop]) -> None:
    client, found = shop
    sign_in(client, "operations")
    warehouse = _section(client.get("/health", params={"stage": "warehouse"}).text, "stuck")
    assert str(found.stuck_in_warehouse) in warehouse and "出库扫描" in warehouse
    assert str(found.lost_callback) not in warehouse and PAYMENT_CALLBACK not in warehouse
    assert "1 shown · 5 open" in warehouse
    elsewhere = _section(client.get("/health", params={"channel": "jd"}).text, "stuck")
    assert "nothing is stuck for this filter" in elsewhere
    wrong = client.get("/health", params={"stage": "moon"})
    assert wrong.status_code == 422 and "stage must be one of" in wrong.text


def test_an_orders_timeline_lists_its_steps_in_time_order_and_what_fails(shop: tuple[TestClient, Shop]) -> None:
    client, found = shop
    sign_in(client, "operations")
    page = client.get(_order_path(found.stuck_in_warehouse))
    assert page.status_code == 200
    timeline = _section(page.text, "timeline")
    labels = re.findall(r"<strong>([^<]+)</strong> <code>(\w+)</code>", timeline)
    assert [what for _, what in labels] == ["paid", "payment_callback", "erp_sync", "inventory_lock",
                                            "waybill_printed"]
    assert labels[-1][0] == "面单已打印"
    times = re.findall(r'<time datetime="([^"]+)">', timeline)
    assert times == sorted(times) and len(times) == 5
    failing = _section(page.text, "failing")
    assert "missing step: <strong class=\"health-missing\">出库扫描</strong>" in failing
    assert "90" in page.text and "观察 watch" in page.text
    findings = _section(page.text, "findings")
    assert "未解决 open" in findings
    red = client.get(_order_path(found.lost_callback))
    assert PAYMENT_CALLBACK in _section(red.text, "failing") and "红色 red" in red.text
    for path in ("/health/order/site/NOPE", "/health/order/ebay/1"):
        missing = client.get(path)
        assert missing.status_code == 404 and "Unknown order" in missing.text, path
        assert missing.headers["content-type"].startswith("text/html")


@pytest.mark.parametrize("role", [Role.REVIEWER, Role.MARKETING, Role.DATA_SCIENTIST, Role.ORDER_SYSTEM])
def test_other_roles_are_refused(shop: tuple[TestClient, Shop], role: Role) -> None:
    client, found = shop
    sign_in(client, role.value.replace("_", "-"))
    assert 'href="/health"' not in client.get("/").text
    for path in ("/health", _order_path(found.lost_callback)):
        refused = client.get(path)
        assert refused.status_code == 403 and "Not for your roles" in refused.text, path
        assert str(found.lost_callback) not in refused.text


def test_a_stranger_is_sent_to_sign_in(shop: tuple[TestClient, Shop]) -> None:
    client, found = shop
    for path in ("/health?stage=warehouse", _order_path(found.lost_callback)):
        anonymous = client.get(path, follow_redirects=False)
        assert anonymous.status_code == 303, path
        assert anonymous.headers["location"].startswith("/signin?next=/health"), path


def test_before_the_first_sweep_the_page_says_so(tmp_path: Path) -> None:
    settings = _settings(tmp_path)
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
    user(settings.database_url, "olga", "operations")
    with TestClient(create_app(settings, clock=FixedClock(NOW))) as client:
        sign_in(client, "olga")
        page = client.get("/health")
    assert page.status_code == 200 and "no sweep has run yet" in page.text and "<svg" not in page.text
