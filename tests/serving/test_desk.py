"""The review desk over HTTP, as reviewers use it: the queue of flagged, undecided orders (riskiest first,
filters with counts), a case claimed by whoever opens it, its most similar labelled past cases, a verdict
stored like ``POST /v1/labels`` that takes the order out of the queue and opens the next one."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.ingest.orderlog import OrderLog
from orderguard.outbox import Outbox
from orderguard.settings import AlertSettings
from serving.app import create_app
from tests.factories import FixedClock, api_key, form_token, sign_in, user
from tests.serving.test_labels_api import T0, site_order

NOW = T0 + timedelta(hours=1)
RING = [f"R{i}" for i in range(1, 7)]  # six accounts on one device within five minutes: the last ones flagged
PAST = [f"P{i}" for i in range(1, 7)]  # the same kind of ring two days earlier, labelled by then


@pytest.fixture
def desk_and_key(db_settings: Settings) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The service with scored orders, labelled past cases and three people: two reviewers and marketing."""
    for name, role in (("rev-a", "reviewer"), ("rev-b", "reviewer"), ("mona", "marketing")):
        user(db_settings.database_url, name, role)
    system = {"Authorization": f"Bearer {api_key(db_settings.database_url, 'order_system', 'reviewer')}"}
    settings = db_settings.model_copy(update={"alerts": AlertSettings(  # nothing listens: actions wait, retried
        order_system_callback="http://127.0.0.1:9/orderguard", callback_secret="callback-secret-for-tests")})
    with TestClient(create_app(settings, clock=FixedClock(NOW)), base_url="http://127.0.0.1") as client:
        orders = [site_order(o, minutes=-2880 + i, device="dev-old") for i, o in enumerate(PAST)]
        orders += [site_order(f"H{i}", minutes=-1000 + 7 * i, device=f"dev-h{i}") for i in range(4)]
        orders += [site_order(o, minutes=i, device="dev-ring") for i, o in enumerate(RING)]
        for order in orders:
            assert client.post("/v1/score", json=order, headers=system).status_code == 200
        labels = [{"order_key": f"site:{o}", "verdict": "confirmed_fraud",
                   "labeled_at": (T0 - timedelta(hours=20)).isoformat()} for o in PAST]
        labels += [{"order_key": f"site:H{i}", "verdict": "false_positive",
                    "labeled_at": (T0 - timedelta(hours=10)).isoformat()} for i in range(4)]
        assert client.post("/v1/labels", json={"labels": labels}, headers=system).status_code == 201
        yield client, system


@pytest.fixture
def desk(desk_and_key: tuple[TestClient, dict[str, str]]) -> TestClient:
    return desk_and_key[0]


def _browser(client: TestClient, name: str) -> TestClient:
    browser = TestClient(client.app, base_url="http://127.0.0.1")
    assert sign_in(browser, name).status_code == 303
    return browser


def _queue(browser: TestClient, query: str = "") -> list[tuple[int, str]]:
    page = browser.get(f"/desk{query}")
    assert page.status_code == 200, page.text
    rows = re.findall(r'<td class="score">(\d+)</td>.*?>site:(\w+)</a>', page.text, flags=re.S)
    return [(int(score), order) for score, order in rows]


def test_the_queue_lists_flagged_undecided_orders_riskiest_first(desk: TestClient) -> None:
    browser = _browser(desk, "rev-a")
    queue = _queue(browser)
    assert queue and {o for _, o in queue} <= set(RING), queue  # labelled past cases and honest orders are not in it
    assert [s for s, _ in queue] == sorted((s for s, _ in queue), reverse=True)
    assert {"R5", "R6"} <= {o for _, o in queue}
    burst = _queue(browser, "?rule=DEVICE_BURST_5M")
    assert burst and {o for _, o in burst} <= {"R5", "R6"}
    assert _queue(browser, "?pattern=bot_burst") == burst
    assert _queue(browser, "?channel=jd") == []
    page = browser.get("/desk").text
    assert re.search(r'<option value="DEVICE_BURST_5M" >DEVICE_BURST_5M \((\d+)\)</option>', page)


def test_a_case_shows_the_order_and_its_similar_labelled_cases_and_is_claimed(desk: TestClient) -> None:
    alice, bob = _browser(desk, "rev-a"), _browser(desk, "rev-b")
    first = alice.get("/desk/next", follow_redirects=False)
    assert first.status_code == 303 and first.headers["location"].startswith("/desk/case/site/R")
    case = alice.get(first.headers["location"])
    assert case.status_code == 200
    assert "最相似的已结案例" in case.text and case.text.count('class="card neighbour v-confirmed_fraud"') >= 3
    assert "DEVICE_BURST_5M" in case.text or "DEVICE_SHARED_BY_ACCOUNTS_48H" in case.text
    assert "139" in case.text and "文三路 ****" in case.text  # masked phone and street, never the clear ones
    assert re.search(r"判定依据：规则包 v1:[0-9a-f]{8} · 模型 无（仅规则）", case.text)  # which pack judged it
    # the linked orders: the rest of the ring, on the same device, drawn as a graph
    assert '<svg class="graph"' in case.text and case.text.count('class="edge none"') >= 4
    linked = set(re.findall(r'<li><a href="/desk/case/site/(\w+)">site:\w+</a> · acct-\w+ · 共用设备', case.text))
    assert linked == set(RING) - {first.headers["location"].rsplit("/", 1)[1]}
    same = bob.get(first.headers["location"])
    assert "rev-a 正在处理此单" in same.text and same.text.count("disabled") >= 3
    refused = bob.post(first.headers["location"].split("?")[0] + "/verdict", data={"csrf_token": form_token(same.text),
                                                                      "verdict": "false_positive"})
    assert refused.status_code == 403
    nxt = bob.get("/desk/next", follow_redirects=False)
    assert nxt.headers["location"] != first.headers["location"]  # bob is sent to a case nobody works


def test_a_verdict_is_stored_as_the_reviewer_and_the_next_case_opens(desk: TestClient, db_settings: Settings) -> None:
    settings = db_settings
    alice = _browser(desk, "rev-a")
    before = _queue(alice)
    location = alice.get("/desk/next", follow_redirects=False).headers["location"]
    assert "?" not in location  # no filters, no query
    order_id = location.rsplit("/", 1)[1]
    case = alice.get(location)
    no_token = alice.post(location + "/verdict", data={"verdict": "confirmed_fraud"}, follow_redirects=False)
    assert no_token.status_code == 403
    done = alice.post(location + "/verdict", data={"csrf_token": form_token(case.text), "verdict": "confirmed_fraud",
                                                   "note": "同一设备六个账号"}, follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"].startswith("/desk/next?after=site%3A")
    opened = alice.get(done.headers["location"], follow_redirects=False)
    assert opened.headers["location"].startswith("/desk/case/site/") and order_id not in opened.headers["location"]
    history = alice.get(f"/v1/labels/site/{order_id}").json()["history"]
    assert [(h["verdict"], h["reviewer_id"], h["note"]) for h in history] == [
        ("confirmed_fraud", "rev-a", "同一设备六个账号")]
    assert [o for _, o in _queue(alice)] == [o for _, o in before if o != order_id]
    # the order system is asked to cancel it, through the outbox (the desk did not wait for the callback)
    with OrderLog.open(settings.database_url) as log:
        queued = [m for m in Outbox(log.engine).due(now=NOW + timedelta(days=1), limit=50) if m.topic == "order_action"]
    assert [(m.payload["order_id"], m.payload["action"], m.payload["reviewer"]) for m in queued] == [
        (order_id, "cancel", "rev-a")]


def test_the_desk_is_for_reviewers(desk: TestClient) -> None:
    assert desk.get("/desk", follow_redirects=False).headers["location"] == "/signin?next=/desk"
    mona = _browser(desk, "mona")
    refused = mona.get("/desk")
    assert refused.status_code == 403 and "Not for your roles" in refused.text
    assert mona.get("/desk/case/site/R6").status_code == 403


def test_orders_scored_and_labelled_after_the_queue_was_read_count_at_once(
        desk_and_key: tuple[TestClient, dict[str, str]]) -> None:
    client, system = desk_and_key
    alice = _browser(client, "rev-a")
    before = {o for _, o in _queue(alice)}
    assert "R7" not in before
    assert client.post("/v1/score", json=site_order("R7", minutes=6, device="dev-ring"), headers=system).json()[
        "decision"] in ("review", "hold")
    label = {"order_key": "site:R6", "verdict": "false_positive",
             "labeled_at": (T0 + timedelta(minutes=30)).isoformat()}
    assert client.post("/v1/labels", json=label, headers=system).status_code == 201
    assert {o for _, o in _queue(alice)} == (before | {"R7"}) - {"R6"}


def _verify_order(order_id: str, minutes: float) -> dict[str, object]:
    """An order on a virtual operator's number: one mid-weight signal, so the decision is a step-up check."""
    order = site_order(order_id, minutes=minutes, device=f"dev-{order_id}")
    order["payload"]["user"]["phone"] = "17012345" + order_id[-3:].rjust(3, "0")
    return order


def test_a_verify_order_comes_to_the_desk_when_its_check_fails_or_goes_unanswered(
        desk_and_key: tuple[TestClient, dict[str, str]]) -> None:
    client, system = desk_and_key
    for order_id, minutes in (("V101", 10), ("V102", 10), ("V103", 50), ("V104", 0)):
        decision = client.post("/v1/score", json=_verify_order(order_id, minutes), headers=system).json()["decision"]
        assert decision == "verify", (order_id, decision)
    for order_id, outcome in (("V101", "failed"), ("V102", "passed")):
        reported = client.post("/v1/verifications", json={"order_key": f"site:{order_id}", "outcome": outcome,
                                                          "method": "sms"}, headers=system)
        assert reported.status_code == 201, reported.text
    page = _browser(client, "rev-a").get("/desk").text
    queued = set(re.findall(r">site:(V\d+)</a>", page))
    # failed, and unanswered for longer than the timeout (30 min); passed, and still within its time, stay out
    assert queued == {"V101", "V104"}, queued
    assert "核验失败" in page and "核验无回报" in page
    for body, status, field in (({"order_key": "site:NOPE", "outcome": "failed"}, 404, "order_key"),
                                ({"order_key": "site:V103", "outcome": "maybe"}, 422, "outcome"),
                                ({"order_key": "site:V103", "outcome": "failed",
                                  "verified_at": (NOW + timedelta(hours=1)).isoformat()}, 422, "verified_at")):
        answer = client.post("/v1/verifications", json=body, headers=system)
        assert answer.status_code == status and answer.json()["field"] == field, answer.text
