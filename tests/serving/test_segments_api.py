"""GET /v1/segments/trusted and .../explain: marketing and admins only, paged by cursor, phones hashed."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.access import Role
from orderguard.ingest.orderlog import OrderLog
from scoring.rules import default_rules_path
from serving.app import create_app
from tests.factories import FixedClock, api_key
from tests.segments.shop import AS_OF, BEFORE_LABEL, EXPECTED_POOL, fill

AS_OF_DAY = "2024-11-30"  # its close is AS_OF


@pytest.fixture
def served(tmp_path: Path) -> Iterator[tuple[TestClient, dict[Role, dict[str, str]]]]:
    pack = yaml.safe_load(default_rules_path().read_text(encoding="utf-8"))
    pack["deny"]["phones"] = ["ph-ivy"]
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump(pack, allow_unicode=True), encoding="utf-8")
    settings = Settings(data_dir=tmp_path, scoring={"rules_path": rules, "warm_start": False})
    with OrderLog.open(settings.database_url) as log:
        log.migrate()
        fill(log)
    headers = {role: {"Authorization": f"Bearer {api_key(settings.database_url, role.value, name=role.value)}"}
               for role in Role}
    with TestClient(create_app(settings, clock=FixedClock(AS_OF + timedelta(days=2)))) as client:
        yield client, headers


def test_only_marketing_and_admins_get_the_pool(served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    for role in (Role.REVIEWER, Role.ORDER_SYSTEM, Role.OPERATIONS, Role.DATA_SCIENTIST):
        for path in ("/v1/segments/trusted", "/v1/segments/trusted/explain?account=site:alice"):
            response = client.get(path, headers=headers[role])
            assert response.status_code == 403, (role, path)
            assert response.json()["code"] == "forbidden"
    assert client.get("/v1/segments/trusted").status_code == 401
    for role in (Role.MARKETING, Role.ADMIN):
        assert client.get("/v1/segments/trusted", params={"as_of": AS_OF_DAY}, headers=headers[role]).status_code == 200


def test_the_cursor_walks_the_whole_pool_once(served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    seen: list[dict[str, Any]] = []
    params: dict[str, str | int] = {"as_of": AS_OF_DAY, "limit": 1}
    while True:
        page = client.get("/v1/segments/trusted", params=params, headers=headers[Role.MARKETING])
        assert page.status_code == 200, page.text
        body = page.json()
        seen.extend(body["items"])
        assert body["pool_size"] == 3 and body["criteria"] == "standard" and body["as_of"] == "2024-11-30T16:00:00Z"
        if body["next_cursor"] is None:
            break
        params = {"cursor": body["next_cursor"], "limit": 1}  # the cursor carries the as-of
    ids = [item["customer_id"] for item in seen]
    assert len(ids) == 3 and ids == sorted(set(ids))
    assert {a for item in seen for a in item["accounts"]} == EXPECTED_POOL | {"jd:alice-jd"}  # ivy: deny list
    assert all(item["phones"] is None and item["phone_hashes"] for item in seen)


def test_masked_phones_are_for_admins(served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    params = {"as_of": AS_OF_DAY, "phones": "masked"}
    refused = client.get("/v1/segments/trusted", params=params, headers=headers[Role.MARKETING])
    assert refused.status_code == 403 and refused.json()["field"] == "phones"
    shown = client.get("/v1/segments/trusted", params=params, headers=headers[Role.ADMIN]).json()
    assert all(item["phones"] == ["138****0000"] for item in shown["items"])


@pytest.mark.parametrize(("params", "field"), [
    ({"as_of": "2031-01-01"}, "as_of"),
    ({"as_of": "yesterday"}, "as_of"),
    ({"criteria": "/etc/passwd"}, "criteria"),
    ({"limit": 0}, "limit"),
    ({"limit": 5000}, "limit"),
    ({"cursor": "bm90IGEgY3Vyc29y"}, "cursor"),
    ({"phones": "clear"}, "phones"),
])
def test_bad_parameters_are_422_naming_the_field(served: tuple[TestClient, dict[Role, dict[str, str]]],
                                                 params: dict[str, object], field: str) -> None:
    client, headers = served
    response = client.get("/v1/segments/trusted", params=params, headers=headers[Role.MARKETING])
    assert response.status_code == 422, response.text
    assert field in (response.json().get("field") or "") + response.text


def test_a_cursor_is_not_reused_for_another_day(served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    first = client.get("/v1/segments/trusted", params={"as_of": AS_OF_DAY, "limit": 1},
                       headers=headers[Role.MARKETING]).json()
    mixed = client.get("/v1/segments/trusted", params={"as_of": BEFORE_LABEL.isoformat(), "limit": 1,
                                                        "cursor": first["next_cursor"]},
                       headers=headers[Role.MARKETING])
    assert mixed.status_code == 422 and mixed.json()["field"] == "cursor"


def test_explain_says_which_bars_fail_and_hides_the_other_account_from_marketing(
        served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    params = {"account": "site:carol", "as_of": AS_OF_DAY}
    body = client.get("/v1/segments/trusted/explain", params=params, headers=headers[Role.MARKETING]).json()
    assert body["in_pool"] is False and body["tier"] is None
    failing = [c for c in body["checks"] if not c["passes"]]
    assert [(c["check"], c["value"], c["threshold"]) for c in failing] == [("links", 1.0, 0.0)]
    assert failing[0]["reason_zh"] and failing[0]["reason_en"]
    assert body["links"] == [{"via": "device", "why": "confirmed_fraud", "account": None}]
    admin = client.get("/v1/segments/trusted/explain", params=params, headers=headers[Role.ADMIN]).json()
    assert admin["links"][0]["account"] == "site:bob"
    ivy = client.get("/v1/segments/trusted/explain", params={**params, "account": "site:ivy"},
                     headers=headers[Role.MARKETING]).json()
    assert [c["check"] for c in ivy["checks"] if not c["passes"]] == ["deny_listed"]
    missing = client.get("/v1/segments/trusted/explain", params={**params, "account": "site:nobody"},
                         headers=headers[Role.MARKETING])
    assert missing.status_code == 404 and missing.json()["field"] == "account"


def test_the_export_route_serves_each_format_as_a_named_file(
        served: tuple[TestClient, dict[Role, dict[str, str]]]) -> None:
    client, headers = served
    bodies = {}
    for fmt in ("csv", "xlsx", "parquet"):
        response = client.get("/v1/segments/trusted/export", params={"format": fmt, "as_of": AS_OF_DAY},
                              headers=headers[Role.MARKETING])
        assert response.status_code == 200, response.text
        disposition = response.headers["content-disposition"]
        assert f'filename="trusted-customers-2024-11-30-standard.{fmt}"' in disposition
        bodies[fmt] = response.content
    lines = bodies["csv"].decode().splitlines()
    assert lines[0].startswith("customer_id,tier,accounts") and len(lines) == 4  # header + alice, dave, hal
    assert bodies["xlsx"][:2] == b"PK" and bodies["parquet"][:4] == b"PAR1"
    again = client.get("/v1/segments/trusted/export", params={"format": "csv", "as_of": AS_OF_DAY},
                       headers=headers[Role.ADMIN])
    assert again.content == bodies["csv"]  # one pool, one file, whoever asks
    refused = client.get("/v1/segments/trusted/export", params={"format": "csv", "phones": "masked"},
                         headers=headers[Role.MARKETING])
    assert refused.status_code == 403
    bad = client.get("/v1/segments/trusted/export", params={"format": "xls"}, headers=headers[Role.MARKETING])
    assert bad.status_code == 422
