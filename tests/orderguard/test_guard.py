"""The bounds every payload and event keeps: each case here was once accepted or crashed the service."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from orderguard.errors import InvalidInputError, excerpt
from orderguard.ingest.guard import MAX_INT64, check_event, check_payload
from orderguard.ingest.normalize import PiiHasher, fen, parse_time, phone_from, yuan_to_fen
from orderguard.schema import Amounts, OrderKey, OrderLine
from orderguard.settings import IngestLimits
from tests.factories import BASE_TIME, make_event

LIMITS = IngestLimits()


@pytest.mark.parametrize(("payload", "field", "reason"), [
    ({"buyer_message": "好\ud800"}, "buyer_message", "valid Unicode text"),
    ({"\udfff": 1}, "\udfff", "valid Unicode text"),
    ({"items": [{"title": "x" * 5000}]}, "items[0].title", "text of at most 4,000 characters"),
    ({"paid_fen": 2**64}, "paid_fen", "an integer that fits 64 bits"),
    ({"paid_fen": -(2**63) - 5}, "paid_fen", "an integer that fits 64 bits"),
    ({"price": float("nan")}, "price", "a finite number"),
    ({"price": float("inf")}, "price", "a finite number"),
    ({"items": [{}] * 1001}, "items", "a list of at most 1000 items"),
])
def test_payloads_the_system_cannot_keep_are_refused_with_the_field(payload: dict[str, Any], field: str,
                                                                     reason: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        check_payload(payload, LIMITS)
    assert info.value.field == field
    assert reason in info.value.message
    assert len(info.value.message) < 300  # a short excerpt, never the whole value


def test_nesting_is_bounded() -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["a"] = {}
        node = node["a"]
    with pytest.raises(InvalidInputError, match="nested at most 16 levels"):
        check_payload(deep, LIMITS)


def test_ordinary_payloads_pass() -> None:
    check_payload({"order_id": "S1", "items": [{"qty": 2, "price": "19.90", "title": "猫砂 🐱"}], "paid": 3980,
                   "flag": True, "none": None, "ratio": 0.5}, LIMITS)


@pytest.mark.parametrize(("change", "field"), [
    (lambda e: replace(e, key=OrderKey(e.key.channel, "")), "order_id"),
    (lambda e: replace(e, key=OrderKey(e.key.channel, "  ")), "order_id"),
    (lambda e: replace(e, key=OrderKey(e.key.channel, "a\nb")), "order_id"),
    (lambda e: replace(e, key=OrderKey(e.key.channel, "9" * 200)), "order_id"),
    (lambda e: replace(e, event_version=MAX_INT64 + 1), "version"),
    (lambda e: replace(e, event_time=datetime(1970, 1, 1, tzinfo=UTC)), "event_time"),
    (lambda e: replace(e, event_time=e.received_at + timedelta(days=3)), "event_time"),
    (lambda e: replace(e, details=replace(e.details, created_at=datetime(9999, 12, 31, tzinfo=UTC))),
     "details.created_at"),
    (lambda e: replace(e, details=replace(e.details, amounts=Amounts(goods_fen=10**30, paid_fen=10**30))),
     "details.amounts.goods_fen"),  # beyond 64 bits
    (lambda e: replace(e, details=replace(e.details, amounts=Amounts(goods_fen=100, paid_fen=10**15))),
     "details.amounts.paid_fen"),  # beyond any order
    (lambda e: replace(e, details=replace(e.details, buyer=replace(e.details.buyer, member_level=10**30))),
     "details.buyer.member_level"),
    (lambda e: replace(e, details=replace(e.details, lines=())), "details.lines"),
    (lambda e: replace(e, details=replace(e.details, lines=(OrderLine("s", 0, 100),))), "details.lines[0].qty"),
    (lambda e: replace(e, details=replace(e.details, lines=(OrderLine("s", 1, 10**13),))),
     "details.lines[0].unit_price_fen"),
])
def test_events_the_shop_cannot_have_had_are_refused(change: Any, field: str) -> None:
    event = make_event(received_at=BASE_TIME + timedelta(minutes=1))
    check_event(event, LIMITS)  # the unchanged event is fine
    with pytest.raises(InvalidInputError) as info:
        check_event(change(event), LIMITS)
    assert info.value.field == field


def test_history_is_welcome_and_the_skew_is_a_setting() -> None:
    old = datetime(2012, 6, 18, 4, tzinfo=UTC)
    check_event(make_event(event_time=old, created_at=old, received_at=BASE_TIME), LIMITS)
    ahead = make_event(event_time=BASE_TIME + timedelta(minutes=30), received_at=BASE_TIME)
    check_event(ahead, LIMITS)
    with pytest.raises(InvalidInputError, match="10 minutes after receipt"):
        check_event(ahead, LIMITS.model_copy(update={"future_skew": timedelta(minutes=10)}))


@pytest.mark.parametrize("value", ["0001-01-01T00:00+08:00", "9999-12-31T23:59:59-12:00", 10**20, "9" * 19,
                                   float("nan"), float("inf"), "١٢٣٤٥٦٧٨٩٠", "²"])
def test_times_out_of_the_calendar_are_input_errors(value: object) -> None:
    with pytest.raises(InvalidInputError) as info:
        parse_time(value, field="created")
    assert info.value.field == "created"


@pytest.mark.parametrize("value", ["1e400", "1E+30", 10**30, "9" * 400])
def test_huge_yuan_amounts_are_input_errors(value: object) -> None:
    with pytest.raises(InvalidInputError, match="`price` must be"):
        yuan_to_fen(value, field="price")


@pytest.mark.parametrize("value", ["9" * 5000, "٣", "1" * 31])
def test_fen_strings_beyond_any_amount_are_input_errors(value: str) -> None:
    with pytest.raises(InvalidInputError, match="`paid` must be an integer amount in fen"):
        fen(value, field="paid")


def test_error_excerpts_are_short_and_mask_numbers() -> None:
    assert excerpt("x" * 50_000_000).endswith("(50000002 characters)")
    assert len(excerpt("x" * 50_000_000)) < 100
    assert "13800138000" not in excerpt({"phone": "13800138000"})
    assert "110101199003077777" not in excerpt("110101199003077777")
    error = InvalidInputError.must("buyer.phone", "a mobile number", "13800138000" * 3)
    assert "13800138000" not in error.message and "138" in error.message


@pytest.mark.parametrize("text", ["abc", "1380013800O", "12345", "1" * 16, "138-0013-8000; DROP"])
def test_clear_text_that_is_not_a_phone_is_a_field_error(text: str) -> None:
    with pytest.raises(InvalidInputError) as info:
        phone_from(text, hasher=PiiHasher(b"k"), field="receiver_phone")
    assert info.value.field == "receiver_phone"


def test_a_stored_phone_never_holds_the_whole_number() -> None:
    phone = phone_from("13800138000", hasher=PiiHasher(b"k"))
    assert phone is not None and phone.prefix == "1380013" and phone.masked == "138******00"
    masked = phone_from("138****8000", hasher=PiiHasher(b"k"), encrypted_token="~tok~")
    assert masked is not None and (masked.prefix, masked.masked) == ("138", "138****8000")


@pytest.mark.parametrize(("payload", "field", "reason"), [
    (["ok", "好\ud800"], "[1]", "valid Unicode text"),
    ([1, 2**63], "[1]", "an integer that fits 64 bits"),
    ([-(2**63)], "[0]", "an integer that fits 64 bits"),
    ({"a": {"b": ["x", "y" * 4001]}}, "a.b[1]", "text of at most 4,000 characters"),
    ({"k" * 4001: 1}, "k" * 4001, "text of at most 4,000 characters"),
    ({"a": [None, True, 1.5, float("nan")]}, "a[3]", "a finite number"),
])
def test_leaves_inside_objects_and_lists_are_checked_like_any_value(payload: Any, field: str,
                                                                    reason: str) -> None:
    """Plain leaves skip the recursive walk; a bad one among them is still refused, with its path."""
    with pytest.raises(InvalidInputError) as info:
        check_payload({"p": payload} if isinstance(payload, list) else payload, LIMITS)
    assert info.value.field == (f"p{field}" if isinstance(payload, list) else field)
    assert reason in info.value.message


def test_a_leaf_one_level_too_deep_is_refused_even_when_plain() -> None:
    limits = IngestLimits(max_depth=4)
    check_payload({"a": {"b": {"c": {"d": "ok"}}}}, limits)
    check_payload({"a": [[["ok", 1, None]]]}, limits)
    for payload in ({"a": {"b": {"c": {"d": {"e": "x"}}}}}, {"a": {"b": {"c": {"d": ["x"]}}}},
                    {"a": [[[[1]]]]}, {"a": [[[{"k": None}]]]}):
        with pytest.raises(InvalidInputError, match="nested at most 4 levels"):
            check_payload(payload, limits)


def test_a_big_integer_deep_in_an_event_is_found_with_its_path() -> None:
    event = make_event()
    assert event.details is not None
    line = replace(event.details.lines[0], qty=2**63)
    big = replace(event, details=replace(event.details, lines=(*event.details.lines, line)))
    with pytest.raises(InvalidInputError) as info:
        check_event(big, LIMITS)
    assert info.value.field == f"details.lines[{len(event.details.lines)}].qty"
