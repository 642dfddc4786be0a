"""The score route's group commit: concurrent requests share transactions, and each is answered as if alone.

Run on both order-log backends: the batch's append and record insert are each one
transaction, on SQLite and on PostgreSQL.
"""

from __future__ import annotations

import asyncio
import dataclasses
import sys
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import Any, TypeVar

import httpx
import pytest
from fastapi.testclient import TestClient

from features.settings import Settings
from orderguard.errors import InvalidInputError, ServiceUnavailableError
from orderguard.schema import OrderKey
from serving import group_commit
from serving.group_commit import Current, ScoreCommitter, append_batch, store_new
from serving.services import Services, parse_event
from tests.factories import api_client
from tests.serving.test_score_api import site_order

_T = TypeVar("_T")


@pytest.fixture
def client(db_settings: Settings) -> Iterator[TestClient]:
    with api_client(db_settings) as c:
        yield c


def _svc(client: TestClient) -> Services:
    svc: Services = client.app.state.services  # type: ignore[attr-defined]
    return svc


def _on_loop(client: TestClient, fn: Callable[[], Awaitable[_T]]) -> _T:
    """Run ``fn`` on the app's own event loop (where the committer and its queue live)."""
    assert client.portal is not None
    return client.portal.call(fn)


def _post_all(client: TestClient, bodies: list[dict[str, Any]],
              check: Callable[[httpx.Response], None] | None = None) -> list[httpx.Response]:
    """POST every body to /v1/score at once; ``check`` looks at each response the moment it arrives."""

    async def send() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=client.app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test", headers=client.headers) as http:
            async def one(body: dict[str, Any]) -> httpx.Response:
                response = await http.post("/v1/score", json=body)
                if check is not None:
                    check(response)
                return response
            return list(await asyncio.gather(*(one(b) for b in bodies)))

    return _on_loop(client, send)


def test_concurrent_requests_share_batches_and_each_answer_is_already_committed(client: TestClient) -> None:
    svc = _svc(client)

    def committed(response: httpx.Response) -> None:
        assert response.status_code == 200, response.text
        body = response.json()
        record = svc.scores.get(OrderKey.parse(body["order_key"]), body["event_version"])
        assert record is not None and record.score == body["score"]  # stored before the answer went out
        assert svc.order_log.get(OrderKey.parse(body["order_key"])) is not None

    responses = _post_all(client, [site_order(f"g{i}", minutes=i / 10, device=f"d{i % 3}") for i in range(40)],
                          check=committed)
    assert len({r.json()["order_key"] for r in responses}) == 40
    stats = svc.committer.stats if svc.committer is not None else None
    assert stats is not None and stats.requests == 40 and stats.batches < 40 and stats.largest > 1
    shown = client.get("/healthz").json()["score_commits"]  # what an operator sees of it
    assert shown["requests"] == 40 and shown["batches"] == stats.batches and shown["largest"] == stats.largest
    assert shown["append_ms"] > 0 and shown["score_ms"] > 0 and shown["store_ms"] > 0
    # the burst on each device is counted as it would be one request at a time: 14 orders on d0 within 4 min
    bursts = [r.json() for r in responses if any(x["code"] == "DEVICE_BURST_5M" for x in r.json()["reasons"])]
    assert bursts


def test_copies_of_one_order_in_one_batch_share_one_score_and_one_record(client: TestClient) -> None:
    body = site_order("dup")
    responses = _post_all(client, [body] * 4)
    answers = [r.json() for r in responses]
    assert all(r.status_code == 200 for r in responses)
    assert len({(a["score"], a["decision"]) for a in answers}) == 1
    assert sorted(a["replayed"] for a in answers) == [False, True, True, True]
    assert _svc(client).scores.count() == 1


def test_a_conflicting_copy_fails_alone_and_the_rest_of_its_batch_is_scored(client: TestClient) -> None:
    assert client.post("/v1/score", json=site_order("c1")).status_code == 200
    changed = site_order("c1", device="another-device")  # same order version, other content
    responses = _post_all(client, [site_order(f"ok{i}") for i in range(5)] + [changed])
    assert [r.status_code for r in responses] == [200] * 5 + [409]
    assert responses[-1].json()["code"] == "event_conflict"


def test_an_event_the_log_cannot_store_fails_alone(client: TestClient) -> None:
    svc = _svc(client)
    events = [parse_event(svc, "site", site_order(name)["payload"]) for name in ("b1", "b2", "b3")]
    events[1] = dataclasses.replace(events[1], raw={"note": object()})  # not JSON: the log refuses it
    outcomes = append_batch(svc, events)
    assert isinstance(outcomes[0], Current) and isinstance(outcomes[2], Current)
    assert isinstance(outcomes[1], InvalidInputError)
    assert svc.order_log.get(events[0].key) is not None and svc.order_log.get(events[2].key) is not None
    assert svc.order_log.get(events[1].key) is None


def test_a_closing_committer_answers_what_is_queued_and_refuses_what_comes_after(client: TestClient) -> None:
    svc = _svc(client)
    events = [parse_event(svc, "site", site_order(f"q{i}")["payload"]) for i in range(6)]

    async def run() -> tuple[list[Any], BaseException | None]:
        committer = ScoreCommitter(svc, max_batch=2)  # several batches left when the close begins
        task = asyncio.create_task(committer.run())
        waiting = [asyncio.create_task(committer.score(e)) for e in events]
        await asyncio.sleep(0)  # every request is queued
        await committer.close(task)
        late: BaseException | None = None
        try:
            await committer.score(events[0])
        except ServiceUnavailableError as e:
            late = e
        return [w.result() for w in waiting], late

    answers, late = _on_loop(client, run)
    assert [a.record.order_key.channel_order_id for a in answers] == [f"q{i}" for i in range(6)]
    assert all(svc.scores.get(a.record.order_key, a.record.event_version) is not None for a in answers)
    assert isinstance(late, ServiceUnavailableError)


def _writer_order(client: TestClient, monkeypatch: pytest.MonkeyPatch, *, in_flight: int) -> list[str]:
    """The writer's jobs in the order it ran them, for six queued requests in batches of two; each request is
    checked to be answered only once its own record is stored, and the answers to come back in order."""
    svc = _svc(client)
    events = [parse_event(svc, "site", site_order(f"f{in_flight}-{i}", minutes=i)["payload"]) for i in range(6)]
    writes: list[str] = []

    def number(order_id: str) -> str:
        return order_id.rpartition("-")[2]

    def appending(s: Services, batch: list[Any]) -> Any:
        writes.append("append " + ",".join(number(e.key.channel_order_id) for e in batch))
        return append_batch(s, batch)

    def storing(s: Services, answers: list[Any]) -> Any:
        writes.append("store " + ",".join(number(a.record.order_key.channel_order_id) for a in answers))
        return store_new(s, answers)

    monkeypatch.setattr(group_commit, "append_batch", appending)  # the writer's two jobs, logged in its order
    monkeypatch.setattr(group_commit, "store_new", storing)

    async def run() -> list[Any]:
        committer = ScoreCommitter(svc, max_batch=2, in_flight=in_flight)
        task = asyncio.create_task(committer.run())

        async def answered(event: Any) -> Any:
            scored = await committer.score(event)
            assert svc.scores.get(scored.record.order_key, scored.record.event_version) is not None
            return scored

        waiting = [asyncio.create_task(answered(e)) for e in events]
        await asyncio.sleep(0)  # every request is queued
        await committer.close(task)
        return [w.result() for w in waiting]

    answers = _on_loop(client, run)
    assert [number(a.record.order_key.channel_order_id) for a in answers] == [str(i) for i in range(6)]
    return writes


def test_the_next_batch_is_appended_while_one_is_scored_and_each_answers_after_its_own_records(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches overlap by a stage: the writer appends the next batch before it stores the one being scored
    (set by the committer, not by how the loop happens to schedule its tasks), and still no request is
    answered before its own record is stored."""
    writes = _writer_order(client, monkeypatch, in_flight=2)
    assert writes[:3] == ["append 0,1", "append 2,3", "store 0,1"], writes
    assert [w for w in writes if w.startswith("store")] == ["store 0,1", "store 2,3", "store 4,5"]


def test_one_batch_in_flight_runs_each_batch_to_its_end_before_the_next(
        client: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    """``in_flight=1`` turns the overlap off: append, store, append, store."""
    assert _writer_order(client, monkeypatch, in_flight=1) == [
        "append 0,1", "store 0,1", "append 2,3", "store 2,3", "append 4,5", "store 4,5"]


def test_batch_route_items_join_one_commit_and_a_repeat_replays(client: TestClient) -> None:
    items = [site_order("r1"), site_order("r2"), site_order("r1"), {"channel": "nope", "payload": {}}]
    response = client.post("/v1/score/batch", json={"items": items})
    assert response.status_code == 200, response.text
    got = response.json()["items"]
    assert got[0]["result"]["replayed"] is False and got[2]["result"]["replayed"] is True
    assert got[0]["result"]["score"] == got[2]["result"]["score"]
    assert got[3]["error"]["field"] == "channel" and got[1]["result"]["order_key"] == "site:r2"


def test_the_service_shortens_the_switch_interval_while_it_runs_and_restores_it(db_settings: Settings) -> None:
    """The writer thread gets the interpreter back within the setting, not Python's 5 ms, after each call."""
    before = sys.getswitchinterval()
    wanted = db_settings.model_copy(update={"api": db_settings.api.model_copy(update={"switch_interval_ms": 0.25})})
    with api_client(wanted):
        assert sys.getswitchinterval() == pytest.approx(0.00025)
    assert sys.getswitchinterval() == pytest.approx(before)



def test_a_job_on_the_writer_runs_on_its_thread_between_batches(client: TestClient) -> None:
    """``watch_checkpoints`` hands its log-restarting checkpoint to the writer: it must run there, where no
    commit of the score route can overlap it, and the route must go on answering after it."""
    committer = _svc(client).committer
    assert committer is not None
    ran_on = _on_loop(client, lambda: committer.on_writer(lambda: threading.current_thread().name))
    assert ran_on.startswith("orderguard-writer")
    assert {r.status_code for r in _post_all(client, [site_order(f"j{i}", minutes=i) for i in range(5)])} == {200}
