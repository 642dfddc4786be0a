"""Redis-specific behaviour: key namespaces, unreachable servers, credentials kept out of messages."""

from __future__ import annotations

import uuid

import pytest
import redis

from features.facts import Entity, Fact, FactGroup, FactKind
from features.stores import MemoryStore, RangeQuery, RedisStore
from features.stores.base import TOTALS_FROM
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


def test_sliding_reads_of_a_busy_key_match_a_store_in_memory(redis_url: str) -> None:
    """Reads reuse the key's last decoded read where they continue it (``RangeMemo``); inserts in the
    middle, replaced versions and evictions between the reads must still give exactly what memory gives."""
    redis_store, memory = RedisStore(redis_url, prefix=f"og:test:slide:{uuid.uuid4().hex}"), MemoryStore()

    def placed(i: int, version: int = 1, *, ts: int | None = None) -> FactGroup:
        at = i * 1_000 if ts is None else ts
        return FactGroup(f"g{i}", version, (Fact(FactKind.ORDER, at, f"g{i}", {Entity.SKU: "s"}, {"v": version}),))

    try:
        steps: list[tuple[FactGroup | None, int | None]] = [(placed(i), None) for i in range(1, 40)]
        steps[10] = (placed(5, 2), None)  # a newer version of a fact inside the window
        steps[20] = (placed(100, ts=15_500), None)  # a late event in the middle
        steps[30] = (None, 12_000)  # an eviction
        for n, (g, evict) in enumerate(steps):
            t = (n + 1) * 1_000
            query = [RangeQuery(Entity.SKU, "s", FactKind.ORDER, t - 8_000, t)]
            if g is None:
                assert evict is not None
                redis_store.evict(before_us=evict)
                memory.evict(before_us=evict)
                got, want = redis_store.fetch(query), memory.fetch(query)
            else:
                got, want = redis_store.apply_and_fetch(g, query)[1], memory.apply_and_fetch(g, query)[1]
            assert list(got[0].facts) == list(want[0].facts), n
            assert list(got[0].ts) == list(want[0].ts), n
    finally:
        redis_store.clear()
        redis_store.close()


def test_running_totals_of_sliding_reads_are_the_sums_of_their_facts(redis_url: str) -> None:
    """A long read carries running totals (``MemoTotals``) that continue with the read: every window of it
    sums exactly what its facts hold, and an attribute with a non-integer value in the read has none
    (the engine then folds the facts) until that value slides out."""
    store = RedisStore(redis_url, prefix=f"og:test:totals:{uuid.uuid4().hex}")

    def placed(i: int) -> FactGroup:
        attrs = {"units": i % 7 if i % 5 else None, "hours": 1.5 if i == 90 else i}
        return FactGroup(f"g{i}", 1, (Fact(FactKind.LINE, i * 1_000, f"g{i}", {Entity.SKU: "s"}, attrs),))

    with_totals = 0
    try:
        for i in range(1, 200):
            t = i * 1_000
            query = [RangeQuery(Entity.SKU, "s", FactKind.LINE, t - 70_000, t)]
            found = store.apply_and_fetch(placed(i), query)[1][0]
            n = len(found.facts)
            if n < TOTALS_FROM:
                continue
            assert found.totals is not None, i
            with_totals += 1
            for lo, hi in ((0, n), (n // 3, n), (1, n - 2), (5, 5)):
                window = [f.attrs["units"] for f in found.facts[lo:hi] if f.attrs["units"] is not None]
                assert found.totals("units", lo, hi) == (sum(window), len(window)), (i, lo, hi)  # type: ignore[arg-type]
            has_float = any(f.attrs["hours"] == 1.5 for f in found.facts)
            hours = found.totals("hours", 0, n)
            assert (hours is None) == has_float, i
            if hours is not None:
                assert hours == (sum(f.attrs["hours"] for f in found.facts), n), i  # type: ignore[misc]
        assert with_totals > 100
    finally:
        store.clear()
        store.close()
