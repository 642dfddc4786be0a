"""Redis-specific behaviour: key namespaces, unreachable servers, credentials kept out of messages."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from typing import Any

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from features.facts import Entity, Fact, FactGroup, FactKind
from features.stores import MemoryStore, RangeQuery, RedisStore
from features.stores.base import TOTALS_FROM, FactRange, Step, each_step
from features.stores.codec import encode_fact, fact_token
from features.stores.redis import _EVICT_BATCH, ping
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


class _Observed(RedisStore):
    """A Redis store that counts the reads the server answered with only the tokens after the last read."""

    deltas = 0
    loads = 0

    def _evalsha_many(self, calls: Sequence[tuple[Sequence[str], Sequence[Any]]]) -> list[Any]:
        replies = super()._evalsha_many(calls)
        self.deltas += sum(mark.startswith(b"d") for reply in replies for mark in reply[3].split(b" ")[1:])
        return replies

    def _load(self, tokens: list[bytes]) -> dict[bytes, Fact]:
        self.loads += 1
        return super()._load(tokens)


def _same(got: FactRange, want: FactRange) -> bool:
    """Equal ranges, peers (facts of one event time) in any order."""
    def order(r: FactRange) -> list[tuple[int, str, str]]:
        return [(f.ts, f.fact_id, repr(f.attrs)) for f in r.facts]
    times = list(got.ts)
    return sorted(order(got)) == sorted(order(want)) and times == [f.ts for f in got.facts] == sorted(times)


_OPS = st.lists(st.one_of(
    st.tuples(st.just("apply"), st.integers(0, 12), st.integers(1, 3),
              st.lists(st.integers(-6, 3), min_size=1, max_size=3), st.booleans()),
    st.tuples(st.just("evict"), st.integers(0, 8)),
    st.tuples(st.just("flush")),
), min_size=1, max_size=50)


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(ops=_OPS)
def test_reads_answered_after_the_last_read_equal_a_store_in_memory(redis_url: str,
                                                                    ops: list[tuple[Any, ...]]) -> None:
    """Between two reads of a key anything may happen: appends, late facts in the middle, ties on one
    event time, newer (or equal-version, different) groups moving or dropping facts, evictions, another
    process writing, a flush. Whatever the server answers only with the tokens after this process's last
    read (under the key's stamp) must still give exactly the facts a store in memory gives."""
    prefix = f"og:test:delta:{uuid.uuid4().hex}"
    mine, other, memory = _Observed(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix), MemoryStore()
    try:
        for n, op in enumerate(ops):
            now = (n + 10) * 1_000
            queries = [RangeQuery(Entity.SKU, "s", FactKind.ORDER, now - 7_000, now),
                       RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, now - 4_000, now + 2_000)]
            if op[0] == "apply":
                _, gid, version, offsets, by_other = op
                facts = tuple(Fact(FactKind.ORDER, now + o * 500, f"g{gid}:{j}",
                                   {Entity.SKU: "s", Entity.DEVICE: "d" if j % 2 else "e"}, {"v": version})
                              for j, o in enumerate(offsets))
                g = FactGroup(f"g{gid}", version, facts)
                memory.apply(g)
                if by_other:
                    other.apply(g)
                    got = mine.fetch(queries)
                else:
                    got = mine.apply_and_fetch(g, queries)[1]
            elif op[0] == "evict":
                memory.evict(before_us=now - op[1] * 1_000)
                got = mine.apply_and_fetch(FactGroup("x", 1, ()), queries, evict_before_us=now - op[1] * 1_000)[1]
                memory.apply(FactGroup("x", 1, ()))
            else:
                other.clear()
                memory = MemoryStore()
                got = mine.fetch(queries)
            want = memory.fetch(queries)
            for q, g_range, w_range in zip(queries, got, want, strict=True):
                assert _same(g_range, w_range), (n, op, q.entity)
    finally:
        mine.clear()
        mine.close()
        other.close()


def test_a_busy_key_slid_forward_is_read_as_its_new_tokens_only(redis_url: str) -> None:
    """The point of stamps: a window sliding over an append-only key is answered with the new tokens,
    not the whole window, and still equals what memory gives."""
    store, memory = _Observed(redis_url, prefix=f"og:test:delta:{uuid.uuid4().hex}"), MemoryStore()
    try:
        for i in range(1, 120):
            g = FactGroup(f"g{i}", 1, (Fact(FactKind.LINE, i * 1_000, f"g{i}", {Entity.SKU: "s"}, {"units": i}),))
            query = [RangeQuery(Entity.SKU, "s", FactKind.LINE, i * 1_000 - 60_000, i * 1_000)]
            (got,), (want,) = store.apply_and_fetch(g, query)[1], memory.apply_and_fetch(g, query)[1]
            assert list(got.facts) == list(want.facts), i
            if got.totals is not None:
                assert got.totals("units", 0, len(got.facts)) == (sum(f.attrs["units"] for f in got.facts),  # type: ignore[misc]
                                                                 len(got.facts))
        assert store.deltas >= 110
    finally:
        store.clear()
        store.close()


def test_a_flush_between_two_reads_is_not_taken_for_an_unchanged_key(redis_url: str) -> None:
    """Stamps restart with a flushed store: the same stamp on a refilled key means nothing, so the read
    after a flush is a whole read (the store's generation changed), never the old facts plus new tokens."""
    prefix = f"og:test:flush:{uuid.uuid4().hex}"
    mine, other = _Observed(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix)

    def placed(name: str, ts: int) -> FactGroup:
        return FactGroup(name, 1, (Fact(FactKind.ORDER, ts, name, {Entity.SKU: "s"}, {}),))

    query = [RangeQuery(Entity.SKU, "s", FactKind.ORDER, 0, 10_000)]
    try:
        for ts in (1_000, 2_000):
            mine.apply(placed(f"old{ts}", ts))
        assert [f.fact_id for f in mine.fetch(query)[0].facts] == ["old1000", "old2000"]
        other.clear()
        for ts in (1_500, 2_000, 3_000):  # the key's first stamp again, the memo's last fact time again
            other.apply(placed(f"new{ts}", ts))
        assert [f.fact_id for f in mine.fetch(query)[0].facts] == ["new1500", "new2000", "new3000"]
        other.apply(placed("new4000", 4_000))
        before = mine.deltas
        assert [f.fact_id for f in mine.fetch(query)[0].facts] == ["new1500", "new2000", "new3000", "new4000"]
        assert mine.deltas == before + 1  # once the new generation is known, reads extend again
    finally:
        mine.clear()
        mine.close()
        other.close()


def test_facts_another_process_applied_come_with_the_delta_read_in_one_round_trip(redis_url: str) -> None:
    """Several service processes share the store: a reader's delta read of facts a writer applied carries
    their encodings, so the reader needs no second round trip (``HMGET``) to decode them."""
    prefix = f"og:test:bodies:{uuid.uuid4().hex}"
    reader, writer, memory = _Observed(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix), MemoryStore()
    try:
        for i in range(1, 60):
            g = FactGroup(f"g{i}", 1, tuple(Fact(FactKind.LINE, i * 1_000 + j, f"g{i}:{j}", {Entity.SKU: "s"},
                                                 {"units": i, "note": "空 格 \u2028" * j}) for j in range(1, 3)))
            writer.apply(g)
            memory.apply(g)
            query = [RangeQuery(Entity.SKU, "s", FactKind.LINE, i * 1_000 - 30_000, i * 1_000)]
            (got,), (want,) = reader.fetch(query), memory.fetch(query)
            assert list(got.facts) == list(want.facts), i
        assert reader.deltas >= 55
        assert reader.loads == 1  # the first, whole read only
    finally:
        reader.clear()
        reader.close()
        writer.close()


_BATCHES = st.lists(st.lists(st.tuples(st.integers(0, 12), st.integers(1, 3), st.lists(st.integers(-6, 4), max_size=3),
                                       st.sampled_from([None, 2, 5])), min_size=1, max_size=6),
                    min_size=1, max_size=8)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(batches=_BATCHES)
def test_a_batch_of_steps_reads_as_its_steps_one_after_the_other(redis_url: str,
                                                                  batches: list[list[tuple[Any, ...]]]) -> None:
    """The score route's pipeline: each step of a batch sees the steps before it and none after. Two steps
    of one batch on one key both ask from the read the process held before the batch, groups move or
    drop facts, evictions ride along, and another process writes between batches; every read must still
    equal what a store in memory gives running the steps one by one."""
    prefix = f"og:test:batch:{uuid.uuid4().hex}"
    mine, other, memory = _Observed(redis_url, prefix=prefix), RedisStore(redis_url, prefix=prefix), MemoryStore()
    n = 0
    try:
        for b, batch in enumerate(batches):
            foreign = FactGroup(f"o{b}", 1, (Fact(FactKind.ORDER, (n + 10) * 1_000, f"o{b}",
                                                  {Entity.SKU: "s", Entity.DEVICE: "d"}, {"v": 0}),))
            other.apply(foreign)
            memory.apply(foreign)
            steps: list[Step] = []
            for gid, version, offsets, evict_ago in batch:
                n += 1
                now = (n + 10) * 1_000
                facts = tuple(Fact(FactKind.ORDER, now + o * 500, f"g{gid}:{j}",
                                   {Entity.SKU: "s", Entity.DEVICE: "d" if j % 2 else "e"}, {"v": version})
                              for j, o in enumerate(offsets))
                steps.append(Step(FactGroup(f"g{gid}", version, facts) if facts else None,
                                  [RangeQuery(Entity.SKU, "s", FactKind.ORDER, now - 7_000, now),
                                   RangeQuery(Entity.DEVICE, "d", FactKind.ORDER, now - 4_000, now + 2_000)],
                                  None if evict_ago is None else now - evict_ago * 1_000))
            got = mine.apply_and_fetch_many(steps)
            want = each_step(memory, steps)
            assert len(got) == len(want) == len(steps)
            for i, ((changed, g_ranges), (w_changed, w_ranges)) in enumerate(zip(got, want, strict=True)):
                assert changed == w_changed, (b, i)
                for g_range, w_range in zip(g_ranges, w_ranges, strict=True):
                    assert _same(g_range, w_range), (b, i)
        assert mine.size() == memory.size()
    finally:
        mine.clear()
        mine.close()
        other.close()


def test_a_batch_whose_eviction_is_cut_at_the_batch_size_reads_as_one_step_at_a_time(redis_url: str) -> None:
    """An eviction the script cuts at its batch size is finished, and its step read again, before any later
    step of the batch runs: neither reads a group the eviction should have dropped."""
    store, memory = RedisStore(redis_url, prefix=f"og:test:evict-batch:{uuid.uuid4().hex}"), MemoryStore()
    old = [Step(FactGroup(f"old{i}", 1, (Fact(FactKind.ORDER, 1_000 + i, f"old{i}", {Entity.SKU: "s"}, {}),)), ())
           for i in range(_EVICT_BATCH + 80)]
    query = [RangeQuery(Entity.SKU, "s", FactKind.ORDER, 0, 10**9)]
    later = [Step(FactGroup("new", 1, (Fact(FactKind.ORDER, 10**6, "new", {Entity.SKU: "s"}, {}),)), query,
                  evict_before_us=500_000),
             Step(None, query),
             Step(FactGroup("newer", 1, (Fact(FactKind.ORDER, 10**6 + 1, "newer", {Entity.SKU: "s"}, {}),)), query)]
    try:
        store.apply_and_fetch_many(old)
        each_step(memory, old)
        assert store.size() == memory.size() == len(old)
        got, want = store.apply_and_fetch_many(later), each_step(memory, later)
        assert [[f.fact_id for f in r[0].facts] for _, r in got] == [["new"], ["new"], ["new", "newer"]]
        assert [[f.fact_id for f in r[0].facts] for _, r in want] == [["new"], ["new"], ["new", "newer"]]
        assert store.size() == memory.size() == 2
    finally:
        store.clear()
        store.close()


def test_a_batch_sent_to_a_server_that_forgot_the_script_loads_it_and_runs_once(redis_url: str) -> None:
    """A server restarted or flushed since the script was loaded answers every call of the batch with
    NOSCRIPT: nothing ran, so the batch is sent again after loading it, and each group is applied once."""
    store = RedisStore(redis_url, prefix=f"og:test:noscript:{uuid.uuid4().hex}")
    query = [RangeQuery(Entity.SKU, "s", FactKind.ORDER, 0, 10**9)]
    steps = [Step(FactGroup(f"g{i}", 1, (Fact(FactKind.ORDER, 1_000 * i, f"g{i}", {Entity.SKU: "s"}, {}),)), query)
             for i in range(1, 4)]
    try:
        store.apply(group("warm"))  # the script is loaded
        redis.Redis.from_url(redis_url).script_flush()
        got = store.apply_and_fetch_many(steps)
        assert [changed for changed, _ in got] == [True, True, True]
        assert [[f.fact_id for f in r[0].facts] for _, r in got] == [["g1"], ["g1", "g2"], ["g1", "g2", "g3"]]
    finally:
        store.clear()
        store.close()
