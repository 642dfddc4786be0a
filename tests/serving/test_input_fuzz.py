"""No input breaks the service: real channel payloads mutated one field at a time, against a running app.

Every leaf of each channel's sample order and after-sale documents
(``tests/contracts/samples``) is replaced in turn by a hostile value - other types,
64-bit extremes, non-finite numbers, lone surrogates, huge and look-alike digits, dates
outside the calendar - and sent to ingest (and, for orders, to scoring). Every answer
must be 2xx or 4xx in the documented error shape, never a 5xx; and since whatever was
accepted is replayed at start-up, the service must start again on the resulting order
log and count exactly what it acknowledged.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from features.settings import Settings
from orderguard.ingest.channels import get_adapter
from orderguard.ingest.normalize import ParseContext, PiiHasher
from orderguard.schema import Channel
from tests.factories import api_client

SAMPLES = Path(__file__).parents[1] / "contracts" / "samples"
HOSTILE: tuple[object, ...] = (
    2**64, -(2**63) - 1, -1, 0, 1e308, math.nan, math.inf, "\ud800", "", " ", "x" * 5000,
    "0001-01-01T00:00+08:00", "9999-12-31T23:59:59-12:00", "1e400", "1" + "0" * 30, "١٢٣", "²", None, True,
    [], {}, [1] * 2000,
)
#: Fewer values against the score route (each is a full scoring).
HOSTILE_SCORE: tuple[object, ...] = (2**64, math.nan, "\ud800", "9999-12-31T23:59:59-12:00", "1e400", [], None)

Path_ = tuple[str | int, ...]


def leaves(value: object, path: Path_ = ()) -> Iterator[Path_]:
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for i, item in enumerate(value):
            yield from leaves(item, (*path, i))
    else:
        yield path


def replaced(value: Any, path: Path_, new: object) -> Any:
    if not path:
        return new
    copy = dict(value) if isinstance(value, dict) else list(value)
    copy[path[0]] = replaced(value[path[0]], path[1:], new)  # type: ignore[index]
    return copy


def renamed(value: Any, old: str, new: str) -> Any:
    """Every occurrence of the order id (text or number) replaced by ``new``."""
    if isinstance(value, dict):
        return {k: renamed(v, old, new) for k, v in value.items()}
    if isinstance(value, list):
        return [renamed(v, old, new) for v in value]
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value) == old:
        return new if isinstance(value, str) else int(new)
    return value


def body(payload: object) -> bytes:
    return json.dumps(payload, ensure_ascii=True, allow_nan=True).encode()


def assert_answer_shape(status: int, answer: Any) -> None:
    assert status < 500, answer
    if status in (200, 201):
        return
    if status == 207:
        assert answer["errors"] and all({"position", "code", "message", "field"} <= set(e) for e in answer["errors"])
        return
    assert {"code", "message", "field"} <= set(answer), answer
    assert len(json.dumps(answer)) < 2_000  # an excerpt, not an echo


def sample(channel: Channel, kind: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((SAMPLES / f"{channel.value}_{kind}.json").read_text(encoding="utf-8"))
    return loaded


def order_id_of(channel: Channel, payload: dict[str, Any]) -> str:
    ctx = ParseContext(received_at=datetime.now(UTC), hasher=PiiHasher(b"k"))
    return get_adapter(channel.value).parse(payload, ctx=ctx).key.channel_order_id


@pytest.mark.parametrize("channel", list(Channel))
def test_one_field_mutations_never_break_the_service(channel: Channel, settings: Settings) -> None:
    order, after_sale = sample(channel, "order"), sample(channel, "after_sale")
    original = order_id_of(channel, order)
    numeric = original.isdigit()
    tried = accepted = 0
    acknowledged: set[str] = set()
    with api_client(settings, raise_server_exceptions=False) as client:
        for kind, document in (("order", order), ("after_sale", after_sale)):
            for n, path in enumerate(leaves(document)):
                for m, value in enumerate(HOSTILE):
                    fresh = f"{9_000_000 + n * 100 + m}" if numeric else f"FZ{kind}{n}x{m}"
                    payload = replaced(renamed(document, original, fresh), path, value)
                    response = client.post(f"/v1/orders/{channel.value}", content=body(payload),
                                           headers={"content-type": "application/json"})
                    tried += 1
                    answer = response.json()
                    assert_answer_shape(response.status_code, answer)
                    if response.status_code == 200:
                        accepted += 1
                        acknowledged.update(item["order_key"] for item in answer["items"]
                                            if item["outcome"] == "inserted")
                    if kind == "order" and value in HOSTILE_SCORE:
                        scored = client.post("/v1/score", content=body({"channel": channel.value,
                                                                        "payload": payload}),
                                             headers={"content-type": "application/json"})
                        tried += 1
                        assert_answer_shape(scored.status_code, scored.json())
        health = client.get("/healthz").json()
    assert tried > 500 and 0 < accepted < tried
    # whatever was acknowledged is replayed at start-up: the service must start again
    with api_client(settings) as restarted:
        again = restarted.get("/healthz")
        assert again.status_code == 200
        assert again.json()["orders"] == health["orders"]
        assert again.json()["events"] == health["events"]
    assert acknowledged


def test_whole_bodies_get_the_error_shape(settings: Settings) -> None:
    settings = settings.model_copy(update={"api": settings.api.model_copy(update={"max_body_bytes": 64 * 1024})})
    with api_client(settings, raise_server_exceptions=False) as client:
        huge = client.post("/v1/orders/site", content=b"[" + b"1," * 100_000 + b"1]",
                           headers={"content-type": "application/json"})
        assert huge.status_code == 413
        assert huge.json()["code"] == "payload_too_large" and huge.json()["field"] == "body"

        def chunks() -> Iterator[bytes]:
            yield b"["
            for _ in range(2_000):
                yield b'"' + b"x" * 100 + b'",'
            yield b'"x"]'

        streamed = client.post("/v1/orders/site", content=chunks(), headers={"content-type": "application/json"})
        assert streamed.status_code == 413 and streamed.json()["field"] == "body"
        for status, response in ((404, client.get("/v1/nowhere")), (405, client.get("/v1/score")),
                                 (422, client.post("/v1/orders/site", content=b"{not json",
                                                   headers={"content-type": "application/json"}))):
            assert response.status_code == status
            assert {"code", "message", "field"} <= set(response.json()), response.text
        nested = client.post("/v1/orders/site", content=b"[" * 5_000 + b"]" * 5_000,
                             headers={"content-type": "application/json"})
        assert 400 <= nested.status_code < 500
        # the service still answers on the same connection
        assert client.get("/healthz").status_code == 200
