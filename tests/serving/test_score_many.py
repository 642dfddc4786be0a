"""The score route scores a batch of orders at once (``Scorer.score_many``: one round trip to a remote feature
store for the batch); every answer is the one scoring the orders one at a time gives, on every store."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st

from features.settings import Settings
from features.stores import RedisStore, RedisStoreConfig
from scoring.records import ScoreRecord
from serving.engine import Engine, build_engine
from tests.factories import BASE_TIME, FixedClock, OrderFactory

#: Per order: device, account, minutes after the start, quantity, coupon; then where the batches are cut.
streams = st.tuples(st.lists(st.tuples(st.integers(0, 3), st.integers(0, 3), st.integers(0, 40), st.integers(1, 3),
                                       st.booleans()), min_size=1, max_size=16),
                    st.lists(st.integers(1, 6), min_size=1, max_size=16))


@pytest.fixture(params=["memory", "redis"])
def twin_engines(request: pytest.FixtureRequest, settings: Settings) -> Iterator[tuple[Engine, Engine]]:
    """Two engines on two empty stores of one kind: one scores batches, the other one order at a time."""
    engines: list[Engine] = []
    for name in ("batched", "single"):
        store_settings = settings.model_copy(update={"data_dir": settings.data_dir / name})
        if request.param == "redis":
            url = request.getfixturevalue("redis_url")
            store_settings = store_settings.model_copy(update={"features": store_settings.features.model_copy(
                update={"store": RedisStoreConfig(url=url, prefix=f"og:test:many:{uuid.uuid4().hex}")})})
        engines.append(build_engine(store_settings, clock=FixedClock(BASE_TIME + timedelta(hours=1))))
    try:
        yield engines[0], engines[1]
    finally:
        for engine in engines:
            if isinstance(engine.store, RedisStore):
                engine.store.clear()
            engine.close()


def answered(record: ScoreRecord) -> ScoreRecord:
    """Everything the caller is answered and audited with, but the timing and the settings' hash (the two
    engines' settings differ in their data folders)."""
    return replace(record, latency_ms=0.0, settings_hash="")


def test_a_batch_is_scored_as_its_orders_one_at_a_time(twin_engines: tuple[Engine, Engine]) -> None:
    batched, single = twin_engines
    factory = OrderFactory(prefix=f"many-{uuid.uuid4().hex[:6]}-")
    seen = {"orders": 0, "hits": 0}

    @hypothesis_settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(streams)
    def check(stream: tuple[list[tuple[int, int, int, int, bool]], list[int]]) -> None:
        wanted, cuts = stream
        orders = [factory(device=f"d{device}", account=f"u{account}", ip=f"10.0.0.{device}",
                          created_at=BASE_TIME + timedelta(minutes=minutes), lines=(("sku1", qty, 1990),),
                          coupon_fen=500 if coupon else 0)
                  for device, account, minutes, qty, coupon in wanted]
        orders += orders[:2]  # a repeat of an order already scored: applied again, changes nothing
        start = 0
        for size in [*cuts, len(orders)]:
            batch = orders[start:start + size]
            start += size
            got = batched.scorer.score_many(batch)
            for order, record in zip(batch, got, strict=True):
                assert isinstance(record, ScoreRecord), record
                assert answered(record) == answered(single.scorer.score(order)), order.key
                seen["orders"] += 1
                seen["hits"] += bool(record.hits)
        assert batched.store.size() == single.store.size()

    check()
    assert seen["orders"] > 50 and seen["hits"] > 0, seen  # the bursts fired rules: the features mattered
