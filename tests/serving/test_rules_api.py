"""``/v1/rules``: who may publish, bad packs refused naming the field, the swap at once in the process that got
the publish and by polling in the others, no-op re-publish, rollback, and the shadow candidate over HTTP."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import yaml
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.schema import OrderKey
from scoring.pack_store import PackStore, content_hash
from scoring.records import ScoreLog
from scoring.rules import default_rules_path
from serving.services import Services
from tests.factories import api_client, api_key
from tests.serving.test_labels_api import site_order

DEFAULT = default_rules_path().read_text(encoding="utf-8")


def label(version: int, text: str) -> str:
    return f"v{version}:{content_hash(text)[:8]}"


def with_points(code: str, points: int, text: str = DEFAULT) -> str:
    """The default pack with one rule's points changed in place (as a person edits the YAML)."""
    changed, n = re.subn(rf"(- code: {code}\n\s+points: )-?[\d.]+", rf"\g<1>{points}", text)
    assert n == 1
    return changed


@pytest.fixture
def reviewer(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {api_key(settings.database_url, 'reviewer', name='desk')}"}


@pytest.fixture
def client(settings: Settings, reviewer: dict[str, str]) -> Iterator[TestClient]:
    """The app with a data scientist's key (the reviewer's key is made first, so the ring holds it)."""
    with api_client(settings, roles=("data_scientist", "order_system")) as c:
        yield c


def services(client: TestClient) -> Services:
    svc: Services = client.app.state.services  # type: ignore[attr-defined]
    return svc


def test_reviewers_read_but_only_data_scientists_and_admins_change(client: TestClient,
                                                                   reviewer: dict[str, str]) -> None:
    assert client.get("/v1/rules", headers=reviewer).status_code == 200
    assert client.get("/v1/rules/history", headers=reviewer).status_code == 200
    for method, path, body in (("POST", "/v1/rules", {"text": DEFAULT}), ("POST", "/v1/rules/rollback", {"version": 1}),
                               ("POST", "/v1/rules/shadow", {"text": DEFAULT}), ("DELETE", "/v1/rules/shadow", None)):
        response = client.request(method, path, json=body, headers=reviewer)
        assert response.status_code == 403, (path, response.text)
        assert response.json()["field"] == "Authorization"
    assert [p["version"] for p in client.get("/v1/rules/history").json()["items"]] == [1]
    published = client.post("/v1/rules", json={"text": with_points("IP_BURST_5M", 25), "note": "n"})
    assert published.status_code == 201, published.text
    assert re.fullmatch(r"key:tests \([0-9a-f]+\)", published.json()["pack"]["author"])


def test_a_publish_swaps_at_once_and_every_record_names_its_version(client: TestClient, settings: Settings) -> None:
    first = client.get("/v1/rules").json()
    assert first["live"]["label"] == label(1, DEFAULT) == first["serving"]["live"]
    assert first["live"]["author"] == f"file:{default_rules_path()}" and first["shadow"] is None
    before = client.post("/v1/score", json=site_order("before")).json()
    assert before["rules_version"] == label(1, DEFAULT)
    stricter = with_points("DEVICE_BURST_5M", 90)
    published = client.post("/v1/rules", json={"text": stricter, "note": "12.12: bursts hold"})
    assert published.status_code == 201 and published.json()["changed"] is True
    after = client.post("/v1/score", json=site_order("after")).json()
    assert after["rules_version"] == label(2, stricter)
    assert client.get("/v1/rules").json()["serving"]["live"] == label(2, stricter)
    detail = client.get("/v1/rules/versions/2").json()
    assert detail["text"] == stricter and detail["note"] == "12.12: bursts hold"
    assert "+    points: 90" in detail["diff"] and detail["diff"].startswith(f"--- {label(1, DEFAULT)}\n")
    with OrderLog.open(settings.database_url) as log:
        scores = ScoreLog(log.engine)
        by_key = {k: scores.latest(OrderKey.parse(f"site:{k}")) for k in ("before", "after")}
    assert {k: r.rules_version for k, r in by_key.items() if r} == {"before": label(1, DEFAULT),
                                                                    "after": label(2, stricter)}


def test_bad_packs_are_refused_naming_the_field_and_identical_text_is_a_no_op(client: TestClient) -> None:
    pack = yaml.safe_load(DEFAULT)
    pack["rules"][3]["when"]["feature"] = "no_such_feature"
    bad = client.post("/v1/rules", json={"text": yaml.safe_dump(pack, allow_unicode=True)})
    assert bad.status_code == 422 and bad.json()["field"] == "rules[3].when.feature", bad.text
    assert bad.json()["code"] == "invalid_rule_pack"
    broken = client.post("/v1/rules/shadow", json={"text": "rules: [", "bands": [30, 50, 70]})
    assert broken.status_code == 422 and broken.json()["field"] == "rules"
    huge = client.post("/v1/rules", json={"text": "#" * 300_000})
    assert huge.status_code == 422 and "text" in huge.json()["field"], huge.text
    bands = client.post("/v1/rules/shadow", json={"text": DEFAULT, "bands": [80, 50, 30]})
    assert bands.status_code == 422 and bands.json()["field"] == "bands"
    same = client.post("/v1/rules", json={"text": DEFAULT})
    assert same.status_code == 200 and same.json() == {"changed": False, "pack": client.get("/v1/rules").json()["live"]}
    assert len(client.get("/v1/rules/history").json()["items"]) == 1


def test_rollback_republishes_as_a_new_version(client: TestClient) -> None:
    looser = with_points("DEVICE_BURST_5M", 10)
    assert client.post("/v1/rules", json={"text": looser}).status_code == 201
    back = client.post("/v1/rules/rollback", json={"version": 1, "note": "too loose"})
    assert back.status_code == 201, back.text
    assert (back.json()["pack"]["version"], back.json()["pack"]["rollback_of"]) == (3, 1)
    assert client.get("/v1/rules").json()["serving"]["live"] == label(3, DEFAULT)
    assert client.post("/v1/rules/rollback", json={"version": 42}).status_code == 404


def test_a_pack_published_by_another_process_is_picked_up_by_the_poll(client: TestClient,
                                                                      settings: Settings) -> None:
    svc = services(client)
    elsewhere = with_points("IP_BURST_5M", 35)
    with OrderLog.open(settings.database_url) as log:  # another worker, or the CLI, on the same database
        PackStore(log.engine, known_features=svc.engine.online.specs.names).publish(
            elsewhere, author="cli:ops", now=datetime.now(UTC))
    assert client.post("/v1/score", json=site_order("not-yet")).json()["rules_version"] == label(1, DEFAULT)
    assert client.portal is not None
    client.portal.call(svc.rules.refresh)  # what the lifespan's watcher does every scoring.rules_poll_s
    assert client.post("/v1/score", json=site_order("now")).json()["rules_version"] == label(2, elsewhere)


def _shadow_of(settings: Settings, order_id: str) -> Any:
    with OrderLog.open(settings.database_url) as log:
        record = ScoreLog(log.engine).latest(OrderKey.parse(f"site:{order_id}"))
    assert record is not None
    return record.shadow


def test_shadow_over_http_records_the_candidate_and_never_changes_the_answer(client: TestClient,
                                                                             settings: Settings) -> None:
    strict = with_points("DEVICE_BURST_5M", 150)
    for i in range(5):  # the fifth order from one device fires DEVICE_BURST_5M
        plain = client.post("/v1/score", json=site_order(f"p{i}", minutes=i, device="dev-p")).json()
    assert plain["reasons"][0]["code"] == "DEVICE_BURST_5M"
    shadow = client.post("/v1/rules/shadow", json={"text": strict, "bands": [30, 50, 70], "note": "try"})
    assert shadow.status_code == 201, shadow.text
    assert client.get("/v1/rules").json()["serving"]["shadow"] == label(2, strict)
    for i in range(5):
        shadowed = client.post("/v1/score", json=site_order(f"s{i}", minutes=i, device="dev-s")).json()
    assert {k: v for k, v in shadowed.items() if k not in ("order_key", "latency_ms")} == {
        k: v for k, v in plain.items() if k not in ("order_key", "latency_ms")}
    outcome = _shadow_of(settings, "s4")
    assert outcome.version == label(2, strict) and "DEVICE_BURST_5M" in outcome.codes
    assert outcome.decision.value == "hold" and outcome.score > shadowed["score"] and outcome.error is None
    ended = client.delete("/v1/rules/shadow")
    assert ended.status_code == 200 and ended.json()["pack"]["role"] == "shadow_off"
    assert client.delete("/v1/rules/shadow").json() is None  # none runs any more
    client.post("/v1/score", json=site_order("after-off"))
    assert _shadow_of(settings, "after-off") is None
    assert client.get("/v1/rules").json()["shadow"] is None


def test_back_scoring_records_the_live_version(settings: Settings) -> None:
    from features.shop import feature_set_from
    from orderguard.labels import LabelLog
    from serving.backscore import backscore
    from tests.factories import BASE_TIME, EventFactory

    events = EventFactory(prefix="BS")
    published = with_points("IP_BURST_5M", 30)
    with OrderLog.open(settings.database_url) as log:
        store = PackStore(log.engine, known_features=feature_set_from(settings).names)
        store.adopt_file(default_rules_path(), now=BASE_TIME)
        live = store.publish(published, author="alice", now=BASE_TIME).pack
        made = [events(event_time=BASE_TIME + timedelta(minutes=i)) for i in range(3)]
        log.append(made)
        done = backscore(settings, log, LabelLog(log.engine), champion=None, since=BASE_TIME - timedelta(days=1))
        assert done.stored == 3
        scores = ScoreLog(log.engine)
        assert live.label == label(2, published)
        assert [r.rules_version if r else None for r in map(scores.latest, (e.key for e in made))] == [live.label] * 3
