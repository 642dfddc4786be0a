"""``/segments``: marketing's page shows the pool by tier, why others fail, downloads and the why-not box."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from serving.app import create_app
from tests.factories import FixedClock, sign_in, user
from tests.segments.shop import AS_OF, fill


@pytest.fixture
def client(tmp_path: Path) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path, scoring={"warm_start": False})
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        fill(log)
    user(settings.database_url, "mia", "marketing")
    user(settings.database_url, "rex", "reviewer")
    with TestClient(create_app(settings, clock=FixedClock(AS_OF + timedelta(days=2)))) as test_client:
        yield test_client


def test_marketing_sees_the_pool_and_why_an_account_is_not_in_it(client: TestClient) -> None:
    assert sign_in(client, "mia").status_code == 303
    assert "/segments" in client.get("/").text
    page = client.get("/segments", params={"as_of": "2024-11-30"})
    assert page.status_code == 200
    # no deny list in the default pack: alice, dave, hal and ivy
    assert "4 of 34 customers as of 2024-11-30" in page.text  # 35 accounts: alice has two
    assert "/v1/segments/trusted/export?as_of=2024-11-30&amp;criteria=standard&amp;format=xlsx" in page.text
    why = client.get("/segments", params={"as_of": "2024-11-30", "account": "site:carol"})
    assert "not in the pool" in why.text and "共用设备" in why.text and "Shares device with an account" in why.text
    unknown = client.get("/segments", params={"as_of": "2024-11-30", "account": "site:nobody"})
    assert "No order of site:nobody was known" in unknown.text
    bad = client.get("/segments", params={"as_of": "2999-01-01"})
    assert bad.status_code == 422 and "a later pool is not known yet" in bad.text


def test_other_roles_and_strangers_are_turned_away(client: TestClient) -> None:
    anonymous = client.get("/segments", follow_redirects=False)
    assert anonymous.status_code == 303 and anonymous.headers["location"].startswith("/signin")
    sign_in(client, "rex")
    assert client.get("/segments").status_code == 403
    assert "/segments" not in client.get("/").text
