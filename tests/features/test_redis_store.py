"""Redis-specific behaviour: key namespaces, unreachable servers, credentials kept out of messages."""

from __future__ import annotations

import uuid

import pytest
import redis

from features.facts import Entity, Fact, FactGroup, FactKind
from features.stores import RangeQuery, RedisStore
from features.stores.codec import encode_fact, fact_token
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


def test_a_second_process_reads_what_the_first_applied_and_follows_its_changes(redis_url: str) -> None:
    prefix = f"og:test:shared:{uuid.uuid4().hex}"
    first, second = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    query = RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, 0, 10_000)
    try:
        v1 = FactGroup("g", 1, (Fact(FactKind.ORDER, 1_000, "g", {Entity.DEVICE: "d"}, {"paid_fen": 100}),))
        assert first.apply(v1)
        (seen,) = second.fetch([query])  # none of these facts is in the second one's cache yet
        assert list(seen.facts) == list(v1.facts)
        v2 = FactGroup("g", 2, (Fact(FactKind.ORDER, 2_000, "g", {Entity.DEVICE: "d"}, {"paid_fen": 90}),))
        changed, (after,) = first.apply_and_fetch(v2, [query])
        assert changed and list(after.facts) == list(v2.facts)
        (seen,) = second.fetch([query])
        assert list(seen.facts) == list(v2.facts) and list(seen.ts) == [2_000]
        assert second.size() == first.size() == 1
    finally:
        first.clear()
        first.close()
        second.close()


def test_a_fact_gone_between_the_read_and_its_decoding_is_left_out(redis_url: str) -> None:
    prefix = f"og:test:gone:{uuid.uuid4().hex}"
    writer, reader = RedisStore(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)
    client = redis.Redis.from_url(redis_url)
    try:
        writer.apply(group("g1"))
        writer.apply(group("g2"))
        gone = fact_token(encode_fact(group("g2").facts[0]))
        assert client.hdel(f"{prefix}:facts", gone) == 1  # what a concurrent eviction does between two reads
        (left,) = reader.fetch([RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, 0, 10_000)])
        assert [f.fact_id for f in left.facts] == ["g1"] and list(left.ts) == [1_000]
    finally:
        writer.clear()
        writer.close()
        reader.close()
        client.close()


def test_a_server_that_forgot_the_script_loads_it_again(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix=f"og:test:noscript:{uuid.uuid4().hex}")
    client = redis.Redis.from_url(redis_url)
    try:
        store.apply(group("g1"))
        client.script_flush()  # a restart or a flush drops the server's scripts
        assert store.apply(group("g2"))
        assert store.size() == 2
    finally:
        store.clear()
        store.close()
        client.close()
