"""The JSON codec of events and orders: lossless, canonical, strict on input."""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from enum import Enum
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orderguard.errors import InvalidInputError
from orderguard.ingest import codec
from orderguard.ingest.state import derive_order
from orderguard.schema import EventKind, OrderEvent, OrderKey, OrderStatus, Party
from tests.factories import BASE_TIME, event_streams, make_event, order_events

BEIJING = timezone(timedelta(hours=8))


@settings(max_examples=150)
@given(order_events())
def test_event_round_trip_is_lossless(event: OrderEvent) -> None:
    encoded = codec.event_to_dict(event)
    through_text = codec.loads(codec.dumps(encoded))
    decoded = codec.event_from_dict(through_text)
    assert decoded == event
    assert decoded.raw == event.raw  # raw is excluded from OrderEvent equality
    assert decoded.event_time.utcoffset() == timedelta(0)
    assert codec.event_to_dict(decoded) == encoded


@settings(max_examples=40)
@given(event_streams())
def test_order_round_trip_is_lossless(events: list[OrderEvent]) -> None:
    keys = {e.key for e in events}
    for key in keys:
        order = derive_order(e for e in events if e.key == key)
        if order is not None:
            assert codec.order_from_dict(codec.loads(codec.dumps(codec.order_to_dict(order)))) == order


# Extras are any valid JSON object: text keys without NUL (NUL is refused on every backend,
# see test_nul_characters_are_refused) and integers of any size.
_VALID_KEYS = st.text(st.characters(exclude_characters="\x00"), max_size=5)


@given(order_events(), st.integers(min_value=1, max_value=10**6),
       st.dictionaries(_VALID_KEYS, st.integers(), max_size=2))
def test_hash_ignores_receive_time_and_raw(event: OrderEvent, delay_s: int, raw: dict[str, int]) -> None:
    resent = replace(event, received_at=event.received_at + timedelta(seconds=delay_s), raw=raw)
    assert codec.content_hash(resent) == codec.content_hash(event)


@given(order_events())
def test_hash_changes_with_content(event: OrderEvent) -> None:
    amended = replace(event, channel_status=event.channel_status + "x")
    later = replace(event, event_time=event.event_time + timedelta(microseconds=1))
    assert codec.content_hash(amended) != codec.content_hash(event)
    assert codec.content_hash(later) != codec.content_hash(event)


def test_same_instant_in_another_offset_encodes_and_hashes_identically() -> None:
    utc_event = make_event(event_time=BASE_TIME)
    beijing_event = make_event(event_time=BASE_TIME.astimezone(BEIJING),
                               received_at=utc_event.received_at, details=utc_event.details)
    assert codec.event_to_dict(beijing_event)["event_time"] == "2024-11-11T02:00:00.000000+00:00"
    assert codec.content_hash(beijing_event) == codec.content_hash(utc_event)


def test_defaults_are_left_out_so_new_optional_fields_keep_hashes_stable() -> None:
    encoded = codec.event_to_dict(make_event())
    assert "raw" not in encoded
    assert "refund" not in encoded
    assert "shipping_fen" not in encoded["details"]["amounts"]
    assert "id_card_hash" not in encoded["details"]["buyer"]
    assert encoded["status"] == "paid"
    assert encoded["key"] == {"channel": "site", "channel_order_id": "SO20241111000001"}


def test_zero_and_empty_values_that_differ_from_defaults_are_kept() -> None:
    buyer = Party(account_id="", member_level=0)
    event = make_event(buyer=buyer)
    encoded = codec.event_to_dict(event)
    assert encoded["details"]["buyer"] == {"account_id": "", "member_level": 0}
    assert codec.event_from_dict(encoded).details == event.details


def test_naive_datetime_is_refused_with_its_path() -> None:
    event = make_event()
    assert event.details is not None
    naive = replace(event, details=replace(event.details, paid_at=datetime(2024, 11, 11, 10, 0)))
    with pytest.raises(InvalidInputError) as info:
        codec.event_to_dict(naive)
    assert info.value.field == "event.details.paid_at"


def test_non_json_raw_is_refused() -> None:
    with pytest.raises(InvalidInputError) as info:
        codec.event_to_dict(make_event(raw={"when": object()}))
    assert info.value.field == "event.raw.when"


@pytest.mark.parametrize(("mutate", "field"), [
    (lambda d: d.update(status="teleported"), "event.status"),
    (lambda d: d["details"]["lines"][0].update(qty="2"), "event.details.lines[0].qty"),
    (lambda d: d["details"]["lines"][0].update(qty=True), "event.details.lines[0].qty"),
    (lambda d: d.update(event_time="2024-11-11T10:00:00"), "event.event_time"),
    (lambda d: d.update(event_time="11/11/2024"), "event.event_time"),
    (lambda d: d.update(colour="red"), "event.colour"),
    (lambda d: d.pop("event_version"), "event.event_version"),
    (lambda d: d["details"].update(lines={"sku_id": "x"}), "event.details.lines"),
])
def test_decode_errors_name_the_field(mutate: Callable[[dict[str, Any]], object], field: str) -> None:
    data = codec.event_to_dict(make_event())
    mutate(data)
    with pytest.raises(InvalidInputError) as info:
        codec.event_from_dict(data)
    assert info.value.field == field


def test_domain_invariants_are_checked_on_decode() -> None:
    data = codec.event_to_dict(make_event(kind=EventKind.AFTER_SALE))
    data["kind"] = EventKind.ORDER.value  # an order document without its snapshot
    with pytest.raises(InvalidInputError) as info:
        codec.event_from_dict(data)
    assert info.value.field == "event"


def test_integers_beyond_64_bits_survive_in_raw() -> None:
    event = make_event(raw={"big": 2**70, "nested": [{"x": -(2**65)}]})
    decoded = codec.event_from_dict(codec.loads(codec.dumps(codec.event_to_dict(event))))
    assert decoded.raw == {"big": 2**70, "nested": [{"x": -(2**65)}]}


def test_canonical_json_is_independent_of_key_order() -> None:
    assert codec.canonical_json({"b": 1, "a": {"d": 2, "c": 3}}) == codec.canonical_json(
        {"a": {"c": 3, "d": 2}, "b": 1})


def test_order_from_dict_rejects_an_event() -> None:
    with pytest.raises(InvalidInputError):
        codec.order_from_dict(codec.event_to_dict(make_event()))


def test_hash_is_sha256_hex() -> None:
    digest = codec.content_hash(make_event(status=OrderStatus.SHIPPED))
    assert len(digest) == 64
    assert set(digest) <= set("0123456789abcdef")
    assert digest != codec.content_hash(make_event(status=OrderStatus.PAID))


def test_key_round_trips_through_its_text_form() -> None:
    event = make_event(order_id="a:b")
    assert codec.event_from_dict(codec.event_to_dict(event)).key == OrderKey.parse(str(event.key))


@pytest.mark.parametrize(("event", "field"), [
    (make_event(channel_status="WAIT\x00"), "event.channel_status"),
    (make_event(raw={"note": ["ok", "a\x00b"]}), "event.raw.note[1]"),
    (make_event(raw={"k\x00": 1, "big": 2**70}), "event.raw"),
])
def test_nul_characters_are_refused(event: OrderEvent, field: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        codec.event_to_dict(event)
    assert info.value.field == field


def _as_documented(value: Any) -> Any:
    """The stored form as the module docstring states it, written out plainly: the oracle of the generated
    encoders (a change of form would change the content hash of every stored event)."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(value):
            item = getattr(value, f.name)
            if f.default is not dataclasses.MISSING:
                default: Any = f.default
            elif f.default_factory is not dataclasses.MISSING:
                default = f.default_factory()
            else:
                out[f.name] = _as_documented(item)
                continue
            if not (item is default or item == default):
                out[f.name] = _as_documented(item)
        return out
    if isinstance(value, Enum):
        return value.value
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat(timespec="microseconds")
    if isinstance(value, tuple | list):
        return [_as_documented(item) for item in value]
    if isinstance(value, Mapping):
        return {key: _as_documented(item) for key, item in value.items()}
    return value


@settings(max_examples=150)
@given(event_streams())
def test_events_and_orders_encode_exactly_as_documented(events: list[OrderEvent]) -> None:
    for event in events:
        assert codec.event_to_dict(event) == _as_documented(event)
        assert codec.content_hash(event) == codec.content_hash_of(_as_documented(event))
    for key in {e.key for e in events}:
        order = derive_order(e for e in events if e.key == key)
        if order is not None:
            assert codec.order_to_dict(order) == _as_documented(order)


def test_a_wrong_type_deep_in_an_event_is_refused_with_its_path() -> None:
    event = make_event()
    assert event.details is not None
    bad = replace(event, details=replace(event.details, lines=(replace(event.details.lines[0], qty="2"),)))  # type: ignore[arg-type]
    with pytest.raises(InvalidInputError) as caught:
        codec.event_to_dict(bad)
    assert caught.value.field == "event.details.lines[0].qty"
