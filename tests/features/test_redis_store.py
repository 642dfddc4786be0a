"""Redis-specific behaviour: key namespaces, unreachable servers, credentials kept out of messages."""

from __future__ import annotations

import uuid

import pytest

from features.facts import Entity, Fact, FactGroup, FactKind
from features.stores import RangeQuery, RedisStore
from features.stores.redis import ping
from orderguard.errors import ServiceUnavailableError


def group(group_id: str) -> FactGroup:
    return FactGroup(group_id, 1, (Fact(FactKind.ORDER, 1_000, group_id, {Entity.DEVICE: "d"}, {}),))


def test_clear_removes_only_its_own_namespace_even_with_pattern_characters(redis_url: str) -> None:
    base = f"og:test:ns:{uuid.uuid4().hex}"
    tricky = RedisStore(redis_url, prefix=f"{base}:[a]*")
    neighbour = RedisStore(redis_url, prefix=f"{base}:a")  # what "[a]*" would match as a pattern
    try:
        tricky.apply(group("g1"))
        neighbour.apply(group("g2"))
        assert tricky.clear() > 0
        assert tricky.size() == 0
        assert neighbour.size() == 1
        (left,) = neighbour.fetch([RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, 0, 10_000)])
        assert [f.fact_id for f in left.facts] == ["g2"]
    finally:
        neighbour.clear()
        tricky.close()
        neighbour.close()


def test_an_unreachable_server_is_a_service_error_without_the_password() -> None:
    url = "redis://:s3cret@127.0.0.1:1/0"  # nothing listens on port 1
    with pytest.raises(ServiceUnavailableError) as info:
        ping(url, timeout_s=0.5)
    assert "s3cret" not in info.value.message
    store = RedisStore(url, timeout_s=0.5)
    try:
        with pytest.raises(ServiceUnavailableError) as applied:
            store.apply(group("g"))
        assert "s3cret" not in applied.value.message
        with pytest.raises(ServiceUnavailableError):
            store.fetch([RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, 0, 1)])
    finally:
        store.close()
